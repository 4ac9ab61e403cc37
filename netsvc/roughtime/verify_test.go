package roughtime

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// This file is the test's own client: it builds requests and verifies
// replies from the specification, with the reference decoder of
// message_test.go and its own hashing, sharing no code with the server
// beyond the tag constants.

// makeRequest builds a request of exactly size bytes for version v.
func makeRequest(t testing.TB, v Version, nonce, srv []byte, size int, versions ...uint32) []byte {
	t.Helper()
	fields := []Field{{TagNONC, nonce}}
	if v != VersionGoogle {
		if len(versions) == 0 {
			versions = []uint32{uint32(VersionDraft11), 0x80000008}
		}
		fields = append(fields, Field{TagVER, words(versions...)})
		if srv != nil {
			fields = append(fields, Field{TagSRV, srv})
		}
	}
	pad := TagPAD
	frame := 0
	if v != VersionGoogle {
		pad, frame = TagZZZZ, 12
	}
	base := enc(t, append(fields, Field{pad, nil})...)
	body := enc(t, append(fields, Field{pad, make([]byte, size-frame-len(base))})...)
	if v == VersionGoogle {
		return body
	}
	return append(append([]byte("ROUGHTIM"), words(uint32(len(body)))...), body...)
}

type verified struct {
	midp, radi  uint64
	mint, maxt  uint64
	online      ed25519.PublicKey
	index       uint32
	root, srep  []byte
	pathEntries int
}

func h512(parts ...[]byte) []byte {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func sub(m map[uint32][]byte, tag Tag, size int) ([]byte, error) {
	v, ok := m[uint32(tag)]
	if !ok {
		return nil, fmt.Errorf("missing %v", tag)
	}
	if size >= 0 && len(v) != size {
		return nil, fmt.Errorf("%v is %d bytes, want %d", tag, len(v), size)
	}
	return v, nil
}

// verifyReply checks reply against the long-term key and the nonce sent,
// the way a client must, and returns what it certifies.
func verifyReply(v Version, reply, longTerm, nonce []byte) (verified, error) {
	var out verified
	hs := 64
	if v != VersionGoogle {
		hs = 32
		if len(reply) < 12 || string(reply[:8]) != "ROUGHTIM" || int(binary.LittleEndian.Uint32(reply[8:])) != len(reply)-12 {
			return out, fmt.Errorf("bad IETF frame")
		}
		reply = reply[12:]
	}
	top, _, ok := refDecode(reply)
	if !ok {
		return out, fmt.Errorf("reply does not decode")
	}
	if v != VersionGoogle {
		ver, err := sub(top, TagVER, 4)
		if err != nil {
			return out, err
		}
		if Version(binary.LittleEndian.Uint32(ver)) != v {
			return out, fmt.Errorf("VER %x", ver)
		}
		nc, err := sub(top, TagNONC, hs)
		if err != nil || !bytes.Equal(nc, nonce) {
			return out, fmt.Errorf("NONC does not echo the nonce (%v)", err)
		}
	}
	certB, err := sub(top, TagCERT, -1)
	if err != nil {
		return out, err
	}
	cert, _, ok := refDecode(certB)
	if !ok {
		return out, fmt.Errorf("CERT does not decode")
	}
	dsig, err := sub(cert, TagSIG, 64)
	if err != nil {
		return out, err
	}
	deleB, err := sub(cert, TagDELE, -1)
	if err != nil {
		return out, err
	}
	if !ed25519.Verify(longTerm, append([]byte("RoughTime v1 delegation signature--\x00"), deleB...), dsig) {
		return out, fmt.Errorf("DELE not signed by the long-term key")
	}
	dele, _, ok := refDecode(deleB)
	if !ok {
		return out, fmt.Errorf("DELE does not decode")
	}
	pubk, err := sub(dele, TagPUBK, 32)
	if err != nil {
		return out, err
	}
	mint, err1 := sub(dele, TagMINT, 8)
	maxt, err2 := sub(dele, TagMAXT, 8)
	if err1 != nil || err2 != nil {
		return out, fmt.Errorf("MINT/MAXT: %v %v", err1, err2)
	}
	out.online, out.mint, out.maxt = pubk, binary.LittleEndian.Uint64(mint), binary.LittleEndian.Uint64(maxt)

	sig, err := sub(top, TagSIG, 64)
	if err != nil {
		return out, err
	}
	srepB, err := sub(top, TagSREP, -1)
	if err != nil {
		return out, err
	}
	if !ed25519.Verify(pubk, append([]byte("RoughTime v1 response signature\x00"), srepB...), sig) {
		return out, fmt.Errorf("SREP not signed by the online key")
	}
	srep, _, ok := refDecode(srepB)
	if !ok {
		return out, fmt.Errorf("SREP does not decode")
	}
	root, err := sub(srep, TagROOT, hs)
	if err != nil {
		return out, err
	}
	midp, err1 := sub(srep, TagMIDP, 8)
	radi, err2 := sub(srep, TagRADI, 4)
	if err1 != nil || err2 != nil {
		return out, fmt.Errorf("MIDP/RADI: %v %v", err1, err2)
	}
	out.midp, out.radi = binary.LittleEndian.Uint64(midp), uint64(binary.LittleEndian.Uint32(radi))
	if out.midp < out.mint || out.midp > out.maxt {
		return out, fmt.Errorf("MIDP %d outside delegation [%d, %d]", out.midp, out.mint, out.maxt)
	}
	indx, err := sub(top, TagINDX, 4)
	if err != nil {
		return out, err
	}
	path, err := sub(top, TagPATH, -1)
	if err != nil {
		return out, err
	}
	if len(path)%hs != 0 {
		return out, fmt.Errorf("PATH of %d bytes", len(path))
	}
	out.index = binary.LittleEndian.Uint32(indx)
	node := h512([]byte{0}, nonce)[:hs]
	idx := out.index
	for p := path; len(p) > 0; p = p[hs:] {
		if idx&1 == 0 {
			node = h512([]byte{1}, node, p[:hs])[:hs]
		} else {
			node = h512([]byte{1}, p[:hs], node)[:hs]
		}
		idx >>= 1
	}
	if idx != 0 {
		return out, fmt.Errorf("INDX %d beyond the PATH", out.index)
	}
	if !bytes.Equal(node, root) {
		return out, fmt.Errorf("PATH does not lead to ROOT")
	}
	out.root, out.srep, out.pathEntries = root, srepB, len(path)/hs
	return out, nil
}

// inRadius reports whether t lies within MIDP±RADI of a verified reply.
func (r verified) covers(v Version, t time.Time, bound time.Duration) bool {
	unit := time.Microsecond
	if v != VersionGoogle {
		unit = time.Second
	}
	mid := time.Unix(0, 0).Add(time.Duration(r.midp) * unit)
	rad := time.Duration(r.radi) * unit
	// Both ends of t±bound must be inside: RADI is never smaller than
	// the bound plus the rounding of MIDP.
	return !t.Add(-bound).Before(mid.Add(-rad)) && !t.Add(bound).After(mid.Add(rad))
}
