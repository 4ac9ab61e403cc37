package signer

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)

func testSigner(t testing.TB) *Signer {
	t.Helper()
	k, err := GenerateDevelopment(rand.Reader, t0.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return NewSigner(k, func() time.Time { return t0 })
}

func claims() Claims {
	return Claims{AuthorityID: "ntp.prod.aunsorm", Stratum: 1, TimestampUnixNs: t0.UnixNano(),
		ErrorBoundNs: 4200, ClockState: "LOCKED", Leap: "none",
		Integrity: &Integrity{State: IntegritySuspect, Enforced: true, Reasons: []string{"receiver/cn0_uniform"}}}
}

func TestAttestVerifyBatch(t *testing.T) {
	s := testSigner(t)
	for _, n := range []int{1, 2, 3, 7, 16} {
		t.Run(fmt.Sprintf("batch of %d", n), func(t *testing.T) {
			nonces := make([][]byte, n)
			for i := range nonces {
				nonces[i] = []byte{byte(i), 0xaa, byte(n)}
			}
			atts, err := s.Attest(claims(), nonces)
			if err != nil {
				t.Fatal(err)
			}
			v := NewVerifier(s.Keys())
			for i, a := range atts {
				if err := v.Verify(a, t0.Add(time.Second), nonces[i]); err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				// Each response proves only its own nonce.
				other := nonces[(i+1)%n]
				if n > 1 {
					a2 := *a
					a2.Nonce = fmt.Sprintf("%x", other)
					if err := v.Verify(&a2, t0, other); !errors.Is(err, ErrSignature) {
						t.Fatalf("response %d with nonce %d: err %v, want ErrSignature", i, (i+1)%n, err)
					}
				}
			}
		})
	}
}

func TestTamperedFieldsFail(t *testing.T) {
	s := testSigner(t)
	atts, err := s.Attest(claims(), [][]byte{[]byte("nonce-1")})
	if err != nil {
		t.Fatal(err)
	}
	good := atts[0]
	v := NewVerifier(s.Keys())
	flipB64 := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)/2] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name string
		mut  func(a *Attestation)
		want error
	}{
		{"authority", func(a *Attestation) { a.AuthorityID = "ntp.prod.aunsorN" }, ErrSignature},
		{"stratum", func(a *Attestation) { a.Stratum = 2 }, ErrSignature},
		{"timestamp", func(a *Attestation) {
			a.TimestampUnixNs++
			a.Timestamp = time.Unix(0, a.TimestampUnixNs).UTC().Format(time.RFC3339Nano)
		}, ErrSignature},
		{"timestamp text only", func(a *Attestation) { a.Timestamp = "2026-11-23T12:00:01.123456789Z" }, ErrMalformed},
		{"bound", func(a *Attestation) { a.ErrorBoundNs = 1 }, ErrSignature},
		{"state", func(a *Attestation) { a.ClockState = "HOLDOVER" }, ErrSignature},
		{"leap", func(a *Attestation) { a.Leap = "insert" }, ErrSignature},
		{"sequence", func(a *Attestation) { a.Sequence++ }, ErrSignature},
		{"nonce", func(a *Attestation) { a.Nonce = "00" }, ErrNonce},
		{"development flag", func(a *Attestation) { a.Development = false }, ErrMalformed},
		{"key id", func(a *Attestation) { a.KeyID = "dev-0000000000000000" }, ErrUnknownKey},
		{"ed25519 signature", func(a *Attestation) { a.Signatures.Ed25519 = flipB64(a.Signatures.Ed25519) }, ErrSignature},
		{"ml-dsa-65 signature", func(a *Attestation) { a.Signatures.MLDSA65 = flipB64(a.Signatures.MLDSA65) }, ErrSignature},
		{"ml-dsa-65 missing", func(a *Attestation) { a.Signatures.MLDSA65 = "" }, ErrSignature},
		{"version", func(a *Attestation) { a.Version = FormatVersion + 1 }, ErrMalformed},
		// The version byte is signed.
		{"version 1 relabelled", func(a *Attestation) { a.Version, a.Integrity = 1, nil }, ErrSignature},
		{"version 2 relabelled", func(a *Attestation) { a.Version, a.Integrity = 2, nil }, ErrSignature},
		// An old version cannot carry the integrity field at all.
		{"version 2 relabelled with integrity", func(a *Attestation) { a.Version = 2 }, ErrMalformed},
		{"integrity state suspect -> trusted", func(a *Attestation) { a.Integrity.State = IntegrityTrusted }, ErrSignature},
		{"integrity state suspect -> untrusted", func(a *Attestation) { a.Integrity.State = IntegrityUntrusted }, ErrSignature},
		{"integrity reasons dropped", func(a *Attestation) { a.Integrity.Reasons = nil }, ErrSignature},
		{"integrity reason added", func(a *Attestation) { a.Integrity.Reasons = append(a.Integrity.Reasons, "pps/phase_step") }, ErrSignature},
		{"integrity not enforced", func(a *Attestation) { a.Integrity.Enforced = false }, ErrSignature},
		{"integrity removed", func(a *Attestation) { a.Integrity = nil }, ErrSignature},
		{"integrity state unknown", func(a *Attestation) { a.Integrity.State = "ok" }, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := *good
			a.Integrity = good.Integrity.Clone()
			tc.mut(&a)
			err := v.Verify(&a, t0, []byte("nonce-1"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if err := v.Verify(good, t0, []byte("nonce-1")); err != nil {
		t.Fatalf("untampered: %v", err)
	}
}

// TestRequireTrusted checks the relying party's integrity policy: off, a
// valid attestation is accepted whatever its signed integrity state; on,
// only a signed "trusted" is.
func TestRequireTrusted(t *testing.T) {
	s := testSigner(t)
	for _, tc := range []struct {
		name      string
		integrity *Integrity
		trusted   bool
	}{
		{"trusted", &Integrity{State: IntegrityTrusted, Enforced: true}, true},
		{"trusted, monitored", &Integrity{State: IntegrityTrusted}, true},
		{"suspect", &Integrity{State: IntegritySuspect, Enforced: true, Reasons: []string{"receiver/cn0_uniform"}}, false},
		{"untrusted", &Integrity{State: IntegrityUntrusted, Enforced: true, Reasons: []string{"pps/phase_step"}}, false},
		{"no integrity checks", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			c.Integrity = tc.integrity
			atts, err := s.Attest(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := NewVerifier(s.Keys())
			if err := v.Verify(atts[0], t0, nil); err != nil {
				t.Fatalf("default policy: %v", err)
			}
			v.RequireTrusted = true
			err = v.Verify(atts[0], t0, nil)
			if tc.trusted && err != nil {
				t.Fatalf("RequireTrusted: %v", err)
			}
			if !tc.trusted && !errors.Is(err, ErrIntegrityNotTrusted) {
				t.Fatalf("RequireTrusted: %v, want ErrIntegrityNotTrusted", err)
			}
			// A stale attestation is refused as stale first.
			var stale *StaleAttestation
			if err := v.Verify(atts[0], t0.Add(time.Minute), nil); !errors.As(err, &stale) {
				t.Fatalf("stale with RequireTrusted: %v", err)
			}
		})
	}
}

func TestAgeDevelopmentAndModes(t *testing.T) {
	s := testSigner(t)
	atts, err := s.Attest(claims(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := atts[0]
	v := NewVerifier(s.Keys())
	var stale *StaleAttestation
	if err := v.Verify(a, t0.Add(31*time.Second), nil); !errors.As(err, &stale) || stale.MaxAge != 30*time.Second || stale.Age != 31*time.Second {
		t.Fatalf("31 s old: err %v, want StaleAttestation{31s, 30s}", err)
	}
	if err := v.Verify(a, t0.Add(29*time.Second), nil); err != nil {
		t.Fatalf("29 s old: %v", err)
	}
	if err := v.Verify(a, t0.Add(-time.Minute), nil); !errors.Is(err, ErrFuture) {
		t.Fatalf("from the future: %v", err)
	}
	v.Production = true
	if err := v.Verify(a, t0, nil); !errors.Is(err, ErrDevelopmentKey) {
		t.Fatalf("production mode, dev key: %v", err)
	}
	v.Production = false
	v.Ed25519Only = true
	b := *a
	b.Signatures.MLDSA65 = ""
	if err := v.Verify(&b, t0, nil); err != nil {
		t.Fatalf("ed25519-only mode: %v", err)
	}
	if _, err := s.Attest(Claims{AuthorityID: "x", TimestampUnixNs: t0.Add(48 * time.Hour).UnixNano(), ClockState: "LOCKED", Leap: "none"}, nil); !errors.Is(err, ErrNoKey) {
		t.Fatalf("signing after the key's window: %v, want ErrNoKey", err)
	}
	// A verifier that knows the key's window ended before the attestation.
	retired := s.Keys()
	retired[0].NotAfter = t0.Add(-time.Second)
	if err := NewVerifier(retired).Verify(a, t0, nil); !errors.Is(err, ErrKeyWindow) {
		t.Fatalf("after the key's window: %v", err)
	}
}

func TestKeysDocumentRoundTrip(t *testing.T) {
	s := testSigner(t)
	doc := NewKeysDocument("a", s.Keys())
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var back KeysDocument
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	keys, err := back.PublicKeys()
	if err != nil {
		t.Fatal(err)
	}
	want := s.Keys()[0]
	if len(keys) != 1 || keys[0].ID != want.ID || !bytes.Equal(keys[0].Ed25519, want.Ed25519) || !keys[0].MLDSA65.Equal(want.MLDSA65) || !keys[0].NotAfter.Equal(want.NotAfter) {
		t.Fatalf("round trip changed the key: %+v", keys)
	}
	back.Keys[0].KeyID = "dev-ffffffffffffffff"
	if _, err := back.PublicKeys(); err == nil {
		t.Fatal("a key id that does not match its keys was accepted")
	}
}

func TestSignedBytesLayout(t *testing.T) {
	c := Claims{AuthorityID: "ab", Stratum: 1, TimestampUnixNs: 2, ErrorBoundNs: 3, ClockState: "L", Leap: "", Sequence: 4, KeyID: "k", Development: true}
	got, err := c.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte(Domain)
	want = append(want, FormatVersion, 0, 2, 'a', 'b', 1)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3)
	want = append(want, 0, 1, 'L', 0, 0)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 'k', 1)
	want = append(want, make([]byte, 32)...)
	want = append(want, 0) // no integrity checks
	if !bytes.Equal(got, want) {
		t.Fatalf("signed bytes\n got %x\nwant %x", got, want)
	}
	c.Integrity = &Integrity{State: "suspect", Enforced: true, Reasons: []string{"a/b", "c"}}
	withIntegrity := append(bytes.Clone(want[:len(want)-1]), 1, 0, 7, 's', 'u', 's', 'p', 'e', 'c', 't', 1, 2, 0, 3, 'a', '/', 'b', 0, 1, 'c')
	if got, err := c.SignedBytes(); err != nil || !bytes.Equal(got, withIntegrity) {
		t.Fatalf("signed bytes with integrity\n got %x\nwant %x (%v)", got, withIntegrity, err)
	}
	// Versions 1 and 2 have no integrity block; their bytes differ from
	// each other in the version byte only.
	c.Integrity = nil
	want = want[:len(want)-1]
	c.Version, want[len(Domain)] = 2, 2
	if got, err := c.SignedBytes(); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("version 2 signed bytes\n got %x\nwant %x (%v)", got, want, err)
	}
	c.Version = 1
	want[len(Domain)] = 1
	if got, err := c.SignedBytes(); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("version 1 signed bytes\n got %x\nwant %x (%v)", got, want, err)
	}
	c.ErrorBoundNs = -1
	if _, err := c.SignedBytes(); !errors.Is(err, ErrEncoding) {
		t.Fatalf("negative bound: %v", err)
	}
}

func BenchmarkAttest(b *testing.B) {
	s := testSigner(b)
	c := claims()
	for _, n := range []int{1, 64} {
		nonces := make([][]byte, n)
		for i := range nonces {
			nonces[i] = []byte{byte(i), 1, 2, 3}
		}
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Attest(c, nonces); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "attestations/s")
		})
	}
}

// TestSequenceIsUniqueAcrossRestarts: a signer made again with the same key
// (a daemon restart) must not reuse a sequence number of the earlier one;
// a counter from 1 did. Within one signer numbers increase strictly even
// when the clock stands still or steps back.
func TestSequenceIsUniqueAcrossRestarts(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	key, err := GenerateDevelopment(rand.Reader, t0.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	sign := func(s *Signer) uint64 {
		t.Helper()
		atts, err := s.Attest(Claims{AuthorityID: "a", Stratum: 1, TimestampUnixNs: now.UnixNano()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		seq := atts[0].Sequence
		if seen[seq] {
			t.Fatalf("sequence %d issued twice for key %s", seq, key.ID())
		}
		seen[seq] = true
		return seq
	}
	first := NewSigner(key, clock)
	var last uint64
	for i := range 5 {
		seq := sign(first)
		if seq <= last {
			t.Fatalf("batch %d: sequence %d after %d, want an increase", i, seq, last)
		}
		last = seq
		if i == 2 {
			now = now.Add(-time.Second) // a step back within the process
		}
	}
	now = now.Add(2 * time.Second) // the restart takes a moment
	second := NewSigner(key, clock)
	for range 5 {
		sign(second)
	}
	if got := sign(second); got > MaxJSONInt {
		t.Fatalf("sequence %d beyond 2^53-1", got)
	}
}

// TestRemovedKeyStaysPublished: a key that a reload removes stays on /keys
// for the retention, so an attestation it signed just before verifies for
// a client that refreshes its keys afterwards; then it goes. Before, it
// vanished at the swap ("unknown key id" for attestations in flight).
func TestRemovedKeyStaysPublished(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	oldKey, err := GenerateDevelopment(rand.Reader, t0.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := GenerateDevelopment(rand.Reader, t0.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSigner(oldKey, clock)
	s.RetainRemoved(time.Minute)
	atts, err := s.Attest(claims(), [][]byte{{1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Swap(&KeySet{keys: []*KeyPair{newKey}}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := func() []string {
		var out []string
		for _, k := range s.Keys() {
			out = append(out, k.ID)
		}
		return out
	}
	now = t0.Add(59 * time.Second)
	if got := ids(); len(got) != 2 || got[0] != newKey.ID() || got[1] != oldKey.ID() {
		t.Fatalf("keys within the retention %v, want the new key then the removed one", got)
	}
	if err := NewVerifier(s.Keys()).Verify(atts[0], t0.Add(time.Second), []byte{1}); err != nil {
		t.Fatalf("an attestation of the removed key, checked against the keys after the swap: %v", err)
	}
	if a, err := s.Attest(claims(), nil); err != nil || a[0].KeyID != newKey.ID() {
		t.Fatalf("signed with %v (%v), want the new key only", a, err)
	}
	now = t0.Add(time.Minute)
	if got := ids(); len(got) != 1 || got[0] != newKey.ID() {
		t.Fatalf("keys after the retention %v, want the new key alone", got)
	}
}
