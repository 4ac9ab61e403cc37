package netsvc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrBadQuery is wrapped by every refusal of parseAttestationQuery.
var ErrBadQuery = errors.New("netsvc: bad query")

// errBadNonce marks a refusal of the nonce's value (not of the query's
// shape), answered as bad_nonce.
var errBadNonce = errors.New("nonce must be hex, at most 64 bytes (128 hex digits)")

// parseAttestationQuery reads the raw query of GET /attestation. The only
// parameter is nonce, at most once, an even number of hex digits (1 to 64
// bytes). Anything else is refused rather than guessed at: Go's
// url.ParseQuery drops a pair it cannot parse ("nonce=aa;x") and
// Query().Get picks the first of two nonces, and either way a client that
// asked for a nonce-bound attestation was served the cached snapshot,
// which its verifier then rejects for the missing nonce. No
// percent-decoding: hex digits need none, and an encoded name or value is
// a second spelling of the same request.
func parseAttestationQuery(raw string) ([]byte, error) {
	if raw == "" {
		return nil, nil
	}
	if i := strings.IndexByte(raw, ';'); i >= 0 {
		return nil, fmt.Errorf(`%w: ";" at byte %d: separate parameters with "&" (the only parameter is nonce)`, ErrBadQuery, i)
	}
	var nonce []byte
	seen := false
	for pair := range strings.SplitSeq(raw, "&") {
		name, value, ok := strings.Cut(pair, "=")
		switch {
		case pair == "":
			return nil, fmt.Errorf(`%w: empty parameter (a stray "&")`, ErrBadQuery)
		case name != "nonce":
			return nil, fmt.Errorf("%w: unknown parameter %q: /attestation takes only nonce", ErrBadQuery, truncate(name, 32))
		case !ok:
			return nil, fmt.Errorf(`%w: nonce without "=": give nonce=HEX, or no query for the cached snapshot`, ErrBadQuery)
		case seen:
			return nil, fmt.Errorf("%w: nonce given more than once", ErrBadQuery)
		case value == "":
			return nil, fmt.Errorf("%w: empty nonce: omit the query for the cached snapshot", ErrBadQuery)
		}
		seen = true
		if len(value) > 2*MaxNonceBytes {
			return nil, fmt.Errorf("%w: %w", ErrBadQuery, errBadNonce)
		}
		n, err := hex.DecodeString(value)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadQuery, errBadNonce)
		}
		nonce = n
	}
	return nonce, nil
}

// truncate shortens s for an error message a client can make long.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
