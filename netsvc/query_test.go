package netsvc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseAttestationQuery checks the parser against net/url: whatever
// it accepts, url.ParseQuery parses without error to exactly one nonce
// parameter whose value decodes to the same bytes; and every refusal
// wraps ErrBadQuery.
func FuzzParseAttestationQuery(f *testing.F) {
	for _, s := range []string{"", "nonce=00", "nonce=aa;x", "nonce=aa&nonce=bb", "nonce=", "nonce",
		"x=1", "&", "nonce=%61%61", "nonce=" + strings.Repeat("ab", 65), "NONCE=aa", "nonce=aa&", "nonce==aa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		nonce, err := parseAttestationQuery(raw)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("%q: error %v does not wrap ErrBadQuery", raw, err)
			}
			return
		}
		if raw == "" {
			if nonce != nil {
				t.Fatalf("empty query gave nonce %x", nonce)
			}
			return
		}
		q, perr := url.ParseQuery(raw)
		if perr != nil || len(q) != 1 || len(q["nonce"]) != 1 {
			t.Fatalf("%q accepted, but net/url reads %v (%v)", raw, q, perr)
		}
		want, derr := hex.DecodeString(q.Get("nonce"))
		if derr != nil || !bytes.Equal(want, nonce) || len(nonce) == 0 || len(nonce) > MaxNonceBytes {
			t.Fatalf("%q: nonce %x, net/url's value %q", raw, nonce, q.Get("nonce"))
		}
	})
}
