package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/aunsorm/timenode/netsvc/roughtime"
)

// benchSeed is the long-term key of every server in the bench, ours and
// the testserver (its -root-key), so one public key verifies all replies.
var benchSeed = bytes.Repeat([]byte{0x42}, ed25519.SeedSize)

// benchPublic is benchSeed's public key.
func benchPublic() ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(benchSeed).Public().(ed25519.PublicKey)
}

// parseVersions turns the -versions list into the versions requests use,
// in turn.
func parseVersions(list string) ([]roughtime.Version, error) {
	var vs []roughtime.Version
	for _, f := range strings.Split(list, ",") {
		switch strings.TrimSpace(f) {
		case "draft11":
			vs = append(vs, roughtime.VersionDraft11)
		case "google":
			vs = append(vs, roughtime.VersionGoogle)
		default:
			return nil, fmt.Errorf("unknown version %q (want draft11, google or both, comma-separated)", f)
		}
	}
	return vs, nil
}

// versionName is the -versions spelling of v.
func versionName(v roughtime.Version) string {
	if v == roughtime.VersionGoogle {
		return "google"
	}
	return "draft11"
}

// template is a request of one version, MinRequestSize bytes long, with
// the nonce at nonce[0]:nonce[1]; a request is the template with a fresh
// nonce written there.
type template struct {
	version roughtime.Version
	pkt     []byte
	nonce   [2]int
}

// newTemplate builds the request a Roughtime client sends: NONC, and for
// draft 11 VER offering that version alone and SRV naming srvKey's
// long-term key, in the ROUGHTIM frame; padded (ZZZZ for draft 11, PAD
// for Google) to exactly MinRequestSize bytes. The package's own request
// builder is not exported, so this is written from the same texts.
func newTemplate(v roughtime.Version, srvKey ed25519.PublicKey) (template, error) {
	hashLen, framed, pad := 64, false, roughtime.TagPAD
	if v == roughtime.VersionDraft11 {
		hashLen, framed, pad = 32, true, roughtime.TagZZZZ
	}
	// A random marker finds the nonce's place in the encoding.
	marker := make([]byte, hashLen)
	if _, err := rand.Read(marker); err != nil {
		return template{}, err
	}
	fields := []roughtime.Field{{Tag: roughtime.TagNONC, Value: marker}}
	frame := 0
	if framed {
		frame = 12
		fields = append(fields,
			roughtime.Field{Tag: roughtime.TagVER, Value: binary.LittleEndian.AppendUint32(nil, uint32(v))},
			roughtime.Field{Tag: roughtime.TagSRV, Value: roughtime.SRVValue(srvKey)})
	}
	bare, err := roughtime.NewMessage(append(fields, roughtime.Field{Tag: pad})...)
	if err != nil {
		return template{}, err
	}
	msg, err := roughtime.NewMessage(append(fields, roughtime.Field{Tag: pad, Value: make([]byte, roughtime.MinRequestSize-frame-bare.Size())})...)
	if err != nil {
		return template{}, err
	}
	body, err := msg.Encode()
	if err != nil {
		return template{}, err
	}
	pkt := body
	if framed {
		pkt = append([]byte("ROUGHTIM"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		pkt = append(pkt, body...)
	}
	i := bytes.Index(pkt, marker)
	if i < 0 || len(pkt) != roughtime.MinRequestSize {
		return template{}, fmt.Errorf("roughtimebench: %v request template of %d bytes, nonce at %d", v, len(pkt), i)
	}
	return template{version: v, pkt: pkt, nonce: [2]int{i, i + hashLen}}, nil
}
