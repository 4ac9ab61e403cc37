package signer

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// maxSafeInt is 2^53-1, the largest integer every I-JSON (RFC 7493)
// reader represents exactly: JavaScript, jq 1.6 and any decoder into
// float64 round anything larger.
const maxSafeInt = 1<<53 - 1

// signedDoc returns one freshly signed attestation as served (its
// timestamp, t0 in 2026, is about 1.8e18 ns, far beyond 2^53) and the
// verifier that accepts it.
func signedDoc(t *testing.T) ([]byte, *Verifier) {
	t.Helper()
	s := testSigner(t)
	atts, err := s.Attest(claims(), [][]byte{[]byte("nonce")})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := atts[0].AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	return doc, NewVerifier(s.Keys())
}

func verifyDoc(t *testing.T, v *Verifier, doc []byte) {
	t.Helper()
	var a Attestation
	if err := json.Unmarshal(doc, &a); err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	if err := v.Verify(&a, t0.Add(time.Second), []byte("nonce")); err != nil {
		t.Fatalf("re-saved attestation no longer verifies: %v\n%s", err, doc)
	}
}

// TestAttestationNumbersAreIJSON checks that every number in a served
// attestation is an integer a float64 holds exactly.
func TestAttestationNumbersAreIJSON(t *testing.T) {
	doc, _ := signedDoc(t)
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		case json.Number:
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n > maxSafeInt || n < -maxSafeInt {
				t.Errorf("%s = %s: not an integer within ±(2^53-1); I-JSON readers round it", path, v)
			}
		}
	}
	walk("", v)
}

// TestAttestationSurvivesFloat64Decoder re-saves an attestation the way
// JavaScript (JSON.parse, JSON.stringify) or any decoder into float64
// does, and checks it still verifies.
func TestAttestationSurvivesFloat64Decoder(t *testing.T) {
	doc, v := signedDoc(t)
	var m map[string]any // numbers become float64
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for k, x := range m {
		if f, ok := x.(float64); ok && math.Abs(f) > maxSafeInt {
			t.Errorf("%s = %v decodes to a float64 beyond 2^53", k, f)
		}
	}
	resaved, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	verifyDoc(t, v, resaved)
}

// TestAttestationSurvivesJQ re-saves an attestation through the real
// `jq .` (jq 1.6 rounds integers beyond 2^53) and checks it still
// verifies. CI must install jq (Debian package jq); elsewhere the test is
// skipped without it.
func TestAttestationSurvivesJQ(t *testing.T) {
	jq, err := exec.LookPath("jq")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("jq not installed (Debian package jq); CI must install it")
		}
		t.Skip("jq not installed: apt-get install jq")
	}
	doc, v := signedDoc(t)
	cmd := exec.Command(jq, ".")
	cmd.Stdin = bytes.NewReader(doc)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jq: %v", err)
	}
	verifyDoc(t, v, out)
}

// TestTimestampFormFollowsVersion checks that timestamp_unix_ns must be
// in its version's form, a canonical decimal string in version 2 and a
// number in version 1, and that each version re-encodes in its own form.
func TestTimestampFormFollowsVersion(t *testing.T) {
	const ns = "1795435200123456789"
	for _, tc := range []struct {
		doc  string
		ok   bool
		want string // the re-encoded field, when ok
	}{
		{`{"version":2,"timestamp_unix_ns":"` + ns + `"}`, true, `"timestamp_unix_ns":"` + ns + `"`},
		{`{"version":1,"timestamp_unix_ns":` + ns + `}`, true, `"timestamp_unix_ns":` + ns + `,`},
		{`{"timestamp_unix_ns":` + ns + `,"version":1}`, true, `"timestamp_unix_ns":` + ns + `,`},
		{`{"version":2,"timestamp_unix_ns":` + ns + `}`, false, ""},
		{`{"version":1,"timestamp_unix_ns":"` + ns + `"}`, false, ""},
		{`{"version":1,"timestamp_unix_ns":1.7954352001234568e+18}`, false, ""},
		{`{"version":2,"timestamp_unix_ns":"+` + ns + `"}`, false, ""},
		{`{"version":2,"timestamp_unix_ns":"0` + ns + `"}`, false, ""},
		{`{"version":2,"timestamp_unix_ns":" ` + ns + `"}`, false, ""},
		{`{"version":2,"timestamp_unix_ns":"99999999999999999999"}`, false, ""},
	} {
		var a Attestation
		err := json.Unmarshal([]byte(tc.doc), &a)
		if !tc.ok {
			if err == nil {
				t.Errorf("%s decoded (timestamp_unix_ns %d), want an error", tc.doc, a.TimestampUnixNs)
			}
			continue
		}
		if err != nil || strconv.FormatInt(a.TimestampUnixNs, 10) != ns {
			t.Errorf("%s: %d, %v", tc.doc, a.TimestampUnixNs, err)
			continue
		}
		if b, err := json.Marshal(&a); err != nil || !bytes.Contains(b, []byte(tc.want)) {
			t.Errorf("%s re-encodes as %s (%v), want it to contain %s", tc.doc, b, err, tc.want)
		}
	}
}

// TestVersion2BoundsNumbers checks that a version 2 document's numbers
// stay within 2^53-1, on both sides: the encoder refuses to sign beyond
// it and the verifier refuses a document beyond it.
func TestVersion2BoundsNumbers(t *testing.T) {
	for _, c := range []Claims{
		{ErrorBoundNs: MaxJSONInt + 1},
		{Sequence: MaxJSONInt + 1},
		{Version: FormatVersion + 1},
		{Version: 2, Integrity: &Integrity{State: IntegrityTrusted}},
		{Integrity: &Integrity{State: "fine"}},
		{Integrity: &Integrity{State: IntegritySuspect, Reasons: []string{"Receiver/CN0"}}},
	} {
		if _, err := c.SignedBytes(); !errors.Is(err, ErrEncoding) {
			t.Errorf("%+v: %v, want ErrEncoding", c, err)
		}
	}
	if _, err := (&Claims{Version: 1, Sequence: 1 << 63, ErrorBoundNs: 1 << 62}).SignedBytes(); err != nil {
		t.Errorf("version 1 had no such bound: %v", err)
	}
	s := testSigner(t)
	atts, err := s.Attest(claims(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(s.Keys())
	for name, change := range map[string]func(*Attestation){
		"error bound": func(a *Attestation) { a.ErrorBoundNs = MaxJSONInt + 1 },
		"sequence":    func(a *Attestation) { a.Sequence = MaxJSONInt + 1 },
		"index":       func(a *Attestation) { a.Merkle.Index = MaxJSONInt + 1 },
	} {
		a := *atts[0]
		change(&a)
		if err := v.Verify(&a, t0, nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s beyond 2^53-1: %v, want ErrMalformed", name, err)
		}
	}
}
