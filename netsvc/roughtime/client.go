package roughtime

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"
)

// The client half of the package: Query asks a Roughtime server for the
// time and VerifyReply checks what it answered. The checks are written
// from the protocol texts (draft-ietf-ntp-roughtime-11, Google's
// PROTOCOL.md), not from the code that builds replies in reply.go: only
// the message codec (ParseMessage, NewMessage) and the tag constants are
// shared, so that a bug in the server's signing or hashing does not pass
// unnoticed because the client makes the same one.

// ErrInvalidReply is wrapped by every error of VerifyReply: the server
// answered, but not with a reply that proves a time.
var ErrInvalidReply = errors.New("roughtime: invalid reply")

// ErrNoReply wraps the error of a Query that had no reply in time: the
// server or the path to it is down, or (draft 11) the server has another
// long-term key and ignores a request naming this one.
var ErrNoReply = errors.New("no reply")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidReply, fmt.Sprintf(format, args...))
}

// Signature contexts as the drafts spell them, written out again rather
// than shared with the server's constants: a typo in either then shows as
// a test failure between the two instead of passing in both.
const (
	clientResponseContext   = "RoughTime v1 response signature\x00"
	clientDelegationContext = "RoughTime v1 delegation signature--\x00"
)

// wire is what a version fixes on the wire, per its text.
type wire struct {
	framed   bool          // "ROUGHTIM" + length before the message
	hashLen  int           // NONC, Merkle nodes and ROOT
	unit     time.Duration // MIDP, RADI, MINT, MAXT
	padTag   Tag           // the request's padding tag
	offerVER bool          // the request lists versions in VER
}

func wireOf(v Version) (wire, error) {
	switch v {
	case VersionDraft11:
		return wire{framed: true, hashLen: 32, unit: time.Second, padTag: TagZZZZ, offerVER: true}, nil
	case VersionGoogle:
		return wire{hashLen: 64, unit: time.Microsecond, padTag: TagPAD}, nil
	}
	return wire{}, fmt.Errorf("roughtime: client does not speak version %v", v)
}

// Result is a verified reply.
type Result struct {
	// Version is the protocol the reply used.
	Version Version
	// Midpoint and Radius are MIDP and RADI: the server says the true
	// time was within Midpoint±Radius when it signed.
	Midpoint time.Time
	Radius   time.Duration
	// OnlineKey signed the reply; the long-term key delegated it for
	// [NotBefore, NotAfter] (MINT, MAXT).
	OnlineKey ed25519.PublicKey
	NotBefore time.Time
	NotAfter  time.Time
	// Index is INDX, the reply's leaf in the batch the server signed.
	Index uint32

	// Sent and Received are the local clock's readings (QueryOptions.Now)
	// around the exchange that was answered, RTT their difference. The
	// server signed between the two, so the local clock's offset from the
	// server lies within Offset() ± (Radius + RTT/2). Zero from
	// VerifyReply.
	Sent, Received time.Time
	RTT            time.Duration

	// Request and Reply are the datagrams, the evidence to keep if the
	// server is later shown to have lied.
	Request, Reply []byte
}

// Offset estimates the local clock's error against the server: Midpoint
// minus the local midpoint of Sent and Received. A positive offset means
// the local clock is behind.
func (r *Result) Offset() time.Duration {
	local := r.Sent.Add(r.RTT / 2)
	return r.Midpoint.Sub(local)
}

// newRequest builds a request of exactly MinRequestSize bytes carrying
// nonce. For draft 11 it offers that version alone in VER and, when srv is
// not nil, names the expected long-term key in SRV.
func newRequest(v Version, nonce, srv []byte) ([]byte, error) {
	w, err := wireOf(v)
	if err != nil {
		return nil, err
	}
	if len(nonce) != w.hashLen {
		return nil, fmt.Errorf("roughtime: %d-byte nonce for %v, want %d", len(nonce), v, w.hashLen)
	}
	fields := []Field{{TagNONC, nonce}}
	if w.offerVER {
		fields = append(fields, Field{TagVER, binary.LittleEndian.AppendUint32(nil, uint32(v))})
		if srv != nil {
			fields = append(fields, Field{TagSRV, srv})
		}
	}
	frame := 0
	if w.framed {
		frame = 12
	}
	// Size the padding from the message without it; every value is a
	// multiple of four bytes, so the padding is too.
	bare, err := NewMessage(append(fields, Field{w.padTag, nil})...)
	if err != nil {
		return nil, err
	}
	pad := MinRequestSize - frame - bare.Size()
	msg, err := NewMessage(append(fields, Field{w.padTag, make([]byte, pad)})...)
	if err != nil {
		return nil, err
	}
	body, err := msg.Encode()
	if err != nil {
		return nil, err
	}
	if !w.framed {
		return body, nil
	}
	out := make([]byte, 0, frame+len(body))
	out = append(out, "ROUGHTIM"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...), nil
}

// SRVValue is what a draft-11 client sends in SRV to name the long-term
// key it expects: SHA-512(0xff || key) truncated to 32 bytes. A server
// with another key does not answer such a request.
func SRVValue(longTerm ed25519.PublicKey) []byte {
	h := sha512.Sum512(append([]byte{0xff}, longTerm...))
	return h[:32]
}

// field returns the value of tag in m, which must be size bytes long
// (size < 0: any length).
func field(m Message, where string, tag Tag, size int) ([]byte, error) {
	b, ok := m.Get(tag)
	if !ok {
		return nil, invalid("%s has no %v", where, tag)
	}
	if size >= 0 && len(b) != size {
		return nil, invalid("%s %v is %d bytes, want %d", where, tag, len(b), size)
	}
	return b, nil
}

func submessage(m Message, where string, tag Tag) (Message, []byte, error) {
	b, err := field(m, where, tag, -1)
	if err != nil {
		return nil, nil, err
	}
	sub, err := ParseMessage(b)
	if err != nil {
		return nil, nil, invalid("%s %v does not parse: %v", where, tag, err)
	}
	return sub, b, nil
}

// VerifyReply checks that reply answers request (a request this package
// built, or any well-formed one) and is signed, through the delegation in
// CERT, by the long-term key pub. It is a pure function of its arguments;
// every error wraps ErrInvalidReply and says which check failed. The
// Result has no local times (see Query).
func VerifyReply(request, reply []byte, pub ed25519.PublicKey) (*Result, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("roughtime: long-term public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	req, err := ParseRequest(request)
	if err != nil {
		return nil, fmt.Errorf("roughtime: not a request: %w", err)
	}
	v := req.Version
	w, err := wireOf(v)
	if err != nil {
		return nil, err
	}
	// A server never answers with more than it was sent (amplification).
	if len(reply) > len(request) {
		return nil, invalid("reply of %d bytes is larger than the %d-byte request", len(reply), len(request))
	}
	body := reply
	if w.framed {
		if len(reply) < 12 || string(reply[:8]) != "ROUGHTIM" {
			return nil, invalid("reply is not framed with ROUGHTIM")
		}
		if n := binary.LittleEndian.Uint32(reply[8:12]); uint64(n) != uint64(len(reply)-12) {
			return nil, invalid("frame says %d bytes, %d follow", n, len(reply)-12)
		}
		body = reply[12:]
	}
	top, err := ParseMessage(body)
	if err != nil {
		return nil, invalid("reply does not parse: %v", err)
	}

	if w.offerVER {
		ver, err := field(top, "reply", TagVER, 4)
		if err != nil {
			return nil, err
		}
		// The server must pick the version we verify (Query offers only
		// that one).
		if got := Version(binary.LittleEndian.Uint32(ver)); got != v {
			return nil, invalid("reply is version %v; this client verifies %v", got, v)
		}
	}
	// Draft 11 echoes the nonce; some Google servers do too, and then it
	// must be ours. The Merkle path below binds it either way.
	if nonc, ok := top.Get(TagNONC); ok || w.framed {
		if !bytes.Equal(nonc, req.Nonce) {
			return nil, invalid("NONC is not the request's nonce: a reply to another request?")
		}
	}

	// CERT: the long-term key signs DELE, with the delegation context.
	cert, _, err := submessage(top, "reply", TagCERT)
	if err != nil {
		return nil, err
	}
	deleSig, err := field(cert, "CERT", TagSIG, ed25519.SignatureSize)
	if err != nil {
		return nil, err
	}
	deleBytes, err := field(cert, "CERT", TagDELE, -1)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(pub, append([]byte(clientDelegationContext), deleBytes...), deleSig) {
		return nil, invalid("delegation signature invalid: wrong long-term key?")
	}
	dele, err := ParseMessage(deleBytes)
	if err != nil {
		return nil, invalid("DELE does not parse: %v", err)
	}
	online, err := field(dele, "DELE", TagPUBK, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	mintB, err := field(dele, "DELE", TagMINT, 8)
	if err != nil {
		return nil, err
	}
	maxtB, err := field(dele, "DELE", TagMAXT, 8)
	if err != nil {
		return nil, err
	}
	mint, maxt := binary.LittleEndian.Uint64(mintB), binary.LittleEndian.Uint64(maxtB)
	if mint > maxt {
		return nil, invalid("delegation MINT %d is after MAXT %d", mint, maxt)
	}

	// SREP: the online key signs it, with the response context.
	sig, err := field(top, "reply", TagSIG, ed25519.SignatureSize)
	if err != nil {
		return nil, err
	}
	srepBytes, err := field(top, "reply", TagSREP, -1)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(ed25519.PublicKey(online), append([]byte(clientResponseContext), srepBytes...), sig) {
		return nil, invalid("response signature invalid: SREP not signed by the delegated online key")
	}
	srep, err := ParseMessage(srepBytes)
	if err != nil {
		return nil, invalid("SREP does not parse: %v", err)
	}
	root, err := field(srep, "SREP", TagROOT, w.hashLen)
	if err != nil {
		return nil, err
	}
	midpB, err := field(srep, "SREP", TagMIDP, 8)
	if err != nil {
		return nil, err
	}
	radiB, err := field(srep, "SREP", TagRADI, 4)
	if err != nil {
		return nil, err
	}
	midp, radi := binary.LittleEndian.Uint64(midpB), binary.LittleEndian.Uint32(radiB)
	if midp < mint || midp > maxt {
		return nil, invalid("MIDP %d outside the online key's validity [%d, %d]", midp, mint, maxt)
	}

	// The Merkle path from the leaf of our nonce must reach ROOT: each
	// bit of INDX, lowest first, says whether our node is the right (1)
	// or left (0) child; bits beyond the path must be zero.
	indxB, err := field(top, "reply", TagINDX, 4)
	if err != nil {
		return nil, err
	}
	path, err := field(top, "reply", TagPATH, -1)
	if err != nil {
		return nil, err
	}
	if len(path)%w.hashLen != 0 {
		return nil, invalid("PATH of %d bytes is not a whole number of %d-byte hashes", len(path), w.hashLen)
	}
	if len(path)/w.hashLen > 32 {
		return nil, invalid("PATH of %d hashes is deeper than a 32-bit INDX can address", len(path)/w.hashLen)
	}
	indx := binary.LittleEndian.Uint32(indxB)
	node := merkleHash(w.hashLen, []byte{0x00}, req.Nonce)
	bits := indx
	for p := path; len(p) > 0; p = p[w.hashLen:] {
		sibling := p[:w.hashLen]
		if bits&1 == 0 {
			node = merkleHash(w.hashLen, []byte{0x01}, node, sibling)
		} else {
			node = merkleHash(w.hashLen, []byte{0x01}, sibling, node)
		}
		bits >>= 1
	}
	if bits != 0 {
		return nil, invalid("INDX %d is beyond a PATH of %d hashes", indx, len(path)/w.hashLen)
	}
	if !bytes.Equal(node, root) {
		return nil, invalid("Merkle PATH from our nonce does not lead to the signed ROOT: a reply from another batch?")
	}

	toTime := func(x uint64) (time.Time, bool) {
		if x > math.MaxInt64 {
			return time.Time{}, false
		}
		if w.unit == time.Second {
			return time.Unix(int64(x), 0).UTC(), true
		}
		return time.UnixMicro(int64(x)).UTC(), true
	}
	res := &Result{
		Version:   v,
		Radius:    time.Duration(radi) * w.unit, // at most 2^32 s, within a Duration
		OnlineKey: bytes.Clone(online),
		Index:     indx,
		Request:   bytes.Clone(request),
		Reply:     bytes.Clone(reply),
	}
	var ok1, ok2, ok3 bool
	res.Midpoint, ok1 = toTime(midp)
	res.NotBefore, ok2 = toTime(mint)
	res.NotAfter, ok3 = toTime(maxt)
	if !ok1 || !ok2 || !ok3 {
		return nil, invalid("MIDP/MINT/MAXT beyond the representable time")
	}
	return res, nil
}

// merkleHash is SHA-512 of the concatenated parts, truncated to size.
func merkleHash(size int, parts ...[]byte) []byte {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)[:size]
}

// QueryOptions tunes Query; the zero value is ready to use.
type QueryOptions struct {
	// Rand is the nonce source (default crypto/rand.Reader).
	Rand io.Reader
	// Now is the local clock read around the exchange (default
	// time.Now).
	Now func() time.Time
	// Attempts is how many requests are sent before giving up (default
	// 3), each with a fresh nonce.
	Attempts int
	// Wait is how long each attempt waits for a reply (default: what is
	// left of ctx's deadline shared among the remaining attempts, or 1s
	// without a deadline).
	Wait time.Duration
	// NoSRV leaves SRV out of draft-11 requests. With SRV (the default)
	// a server holding another long-term key stays silent; without it,
	// it answers and the delegation check names the mismatch.
	NoSRV bool
}

// Query asks the Roughtime server at addr (host:port, UDP) for the time in
// version v and verifies the reply against its long-term key pub (see
// VerifyReply). Unanswered requests are retried with new nonces; a reply
// to any of them is accepted, and timed from its own request. A reply that
// fails verification ends the query with that error. ctx bounds the whole
// exchange.
func Query(ctx context.Context, addr string, pub ed25519.PublicKey, v Version, opts QueryOptions) (*Result, error) {
	w, err := wireOf(v)
	if err != nil {
		return nil, err
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("roughtime: long-term public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	var srv []byte
	if w.offerVER && !opts.NoSRV {
		srv = SRVValue(pub)
	}
	noReply := func(err error) error {
		hint := ""
		if srv != nil {
			hint = " (a draft-11 server with another long-term key does not answer a request naming this one in SRV)"
		}
		return fmt.Errorf("roughtime: %s: %w%s", addr, err, hint)
	}

	conn, err := (&net.Dialer{}).DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("roughtime: %w", err)
	}
	defer conn.Close()
	// Cancelling ctx unblocks a pending read at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	type attempt struct {
		req  []byte
		sent time.Time
	}
	var sent []attempt
	buf := make([]byte, 65536)
	for i := range opts.Attempts {
		nonce := make([]byte, w.hashLen)
		if _, err := io.ReadFull(opts.Rand, nonce); err != nil {
			return nil, fmt.Errorf("roughtime: nonce: %w", err)
		}
		req, err := newRequest(v, nonce, srv)
		if err != nil {
			return nil, err
		}
		wait := opts.Wait
		if wait <= 0 {
			wait = time.Second
			if dl, ok := ctx.Deadline(); ok {
				wait = time.Until(dl) / time.Duration(opts.Attempts-i)
			}
		}
		deadline := time.Now().Add(wait)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("roughtime: %w", err)
		}
		// Checked after setting the deadline, which would otherwise undo
		// the cancellation's deadline set in between.
		if err := ctx.Err(); err != nil {
			return nil, noReply(fmt.Errorf("%w: %w", ErrNoReply, err))
		}
		t0 := opts.Now()
		if _, err := conn.Write(req); err != nil {
			return nil, fmt.Errorf("roughtime: send to %s: %w", addr, err)
		}
		sent = append(sent, attempt{req, t0})

		n, err := conn.Read(buf)
		t1 := opts.Now()
		if err != nil {
			var ne net.Error
			if ctx.Err() != nil {
				return nil, noReply(fmt.Errorf("%w: %w", ErrNoReply, ctx.Err()))
			}
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// A refused port (ICMP) shows here on a connected socket.
			return nil, fmt.Errorf("roughtime: %s: %w", addr, err)
		}
		reply := buf[:n]
		// Newest first: a late reply to an earlier attempt is as good,
		// timed from that attempt's send.
		var firstErr error
		for j := len(sent) - 1; j >= 0; j-- {
			res, err := VerifyReply(sent[j].req, reply, pub)
			if err == nil {
				res.Sent, res.Received, res.RTT = sent[j].sent, t1, t1.Sub(sent[j].sent)
				return res, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		return nil, firstErr
	}
	return nil, noReply(fmt.Errorf("%w after %d attempts", ErrNoReply, opts.Attempts))
}
