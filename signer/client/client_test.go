package client

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/signertest"
)

// node is a test key pair certified by ca for [nb, na].
func node(t *testing.T, ca *signer.CA, nb, na time.Time) *signer.KeyPair {
	t.Helper()
	kp, cp := signertest.CertifiedKey(t, ca, nb, na)
	copies[kp.ID()] = cp
	return kp
}

// copies makes independent copies of test keys (a key set owns and
// wipes its keys).
var copies = map[string]func() *signer.KeyPair{}

// newServer serves /attestation and /keys from set, as a node does.
func newServer(t *testing.T, set *signer.KeySet) *signertest.Node { return signertest.NewNode(t, set) }

func pool(ca *signer.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func TestFollowEndorsedRotation(t *testing.T) {
	now := time.Now()
	ca, _ := signer.NewCA("timenode production CA", false, now.Add(-time.Hour), 48*time.Hour)
	a := node(t, ca, now.Add(-time.Hour), now.Add(time.Hour))
	b := node(t, ca, now.Add(-time.Minute), now.Add(3*time.Hour))
	set, _ := signer.NewKeySet(a, nil)
	srv := newServer(t, set)
	var followed []string
	cl, err := New(Config{URL: srv.TS.URL + "/attestation", TLSCAFile: srv.TLSCAFile(t), Production: true,
		Roots: pool(ca), Pins: []string{signer.Fingerprint(a.Public().Chain[0])}, KeysTTL: time.Nanosecond,
		OnFollow: func(fp string) { followed = append(followed, fp) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cl.Refresh(ctx); err != nil {
		t.Fatalf("pinned key A: %v", err)
	}
	// Rotation: A and B published, B endorsed by A.
	set2, err := signer.NewKeySet(reload(t, a), reload(t, b))
	if err != nil {
		t.Fatal(err)
	}
	srv.Signer.Load().Swap(set2)
	if _, err := cl.Refresh(ctx); err != nil {
		t.Fatalf("during the overlap: %v", err)
	}
	if len(followed) != 1 || followed[0] != signer.Fingerprint(b.Public().Chain[0]) {
		t.Fatalf("followed %v, want B's fingerprint", followed)
	}
	// Promotion: only B, no endorsement any more; the client follows.
	set3, _ := signer.NewKeySet(reload(t, b), nil)
	srv.Signer.Load().Swap(set3)
	att, err := cl.Refresh(ctx)
	if err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
	if att.KeyID != b.ID() {
		t.Fatalf("signed by %s, want B %s", att.KeyID, b.ID())
	}

	// A fresh client pinned to A only, arriving after A retired: no trust.
	late, _ := New(Config{URL: srv.TS.URL + "/attestation", TLSCAFile: srv.TLSCAFile(t), Production: true,
		Roots: pool(ca), Pins: []string{signer.Fingerprint(a.Public().Chain[0])}})
	if _, err := late.Refresh(ctx); !errors.Is(err, signer.ErrUnknownKey) {
		t.Fatalf("client pinned to a retired key: %v, want ErrUnknownKey", err)
	}
}

// servedNode is a node serving one key, valid for the hour around now,
// certified by a new CA (a development one if dev).
func servedNode(t *testing.T, caName string, dev bool) (*signer.CA, *signer.KeyPair, *signertest.Node) {
	now := time.Now()
	ca, _ := signer.NewCA(caName, dev, now.Add(-time.Hour), 48*time.Hour)
	k := node(t, ca, now.Add(-time.Hour), now.Add(time.Hour))
	set, _ := signer.NewKeySet(k, nil)
	return ca, k, newServer(t, set)
}

func reload(t *testing.T, kp *signer.KeyPair) *signer.KeyPair { return copies[kp.ID()]() }

func TestDevelopmentRejectedInProduction(t *testing.T) {
	dev, k, srv := servedNode(t, "test", true)
	fp := signer.Fingerprint(k.Public().Chain[0])
	prod, _ := New(Config{URL: srv.TS.URL + "/attestation", TLSCAFile: srv.TLSCAFile(t), Production: true, Roots: pool(dev), Pins: []string{fp}})
	if _, err := prod.Refresh(context.Background()); !errors.Is(err, signer.ErrUnknownKey) {
		t.Fatalf("production client, development CA: %v, want rejection", err)
	}
	devc, _ := New(Config{URL: srv.TS.URL + "/attestation", TLSCAFile: srv.TLSCAFile(t), Roots: pool(dev), Pins: []string{fp}})
	if _, err := devc.Refresh(context.Background()); err != nil {
		t.Fatalf("development client: %v", err)
	}
}

func TestConfigAndStaleness(t *testing.T) {
	if _, err := New(Config{URL: "http://127.0.0.1:5000/attestation"}); !errors.Is(err, ErrInsecureURL) || !strings.Contains(err.Error(), `scheme "http"`) {
		t.Fatalf("http URL: %v", err)
	}
	if _, err := New(Config{URL: "https://x/attestation", Production: true}); err == nil {
		t.Fatal("production without pins accepted")
	}
	k, _ := signer.GenerateDevelopment(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	set, _ := signer.NewKeySet(k, nil)
	srv := newServer(t, set)
	clock := time.Now()
	cl, _ := New(Config{URL: srv.TS.URL + "/attestation", TLSCAFile: srv.TLSCAFile(t), MaxAge: 30 * time.Second,
		Now: func() time.Time { return clock }})
	var cu *ClockUnavailable
	if _, err := cl.Current(); !errors.As(err, &cu) {
		t.Fatalf("before any refresh: %v", err)
	}
	if _, err := cl.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h, ok := cl.Health(); !ok || h.Clock.Status != "ok" || !h.Clock.RefreshEnabled {
		t.Fatalf("health %+v", h)
	} else if h.Clock.SourceState != "LOCKED" || h.Clock.ErrorBoundNs != 1000 || h.Clock.Leap != "none" {
		t.Errorf("health %+v: want the source's state LOCKED, bound 1000 ns and leap none from the attestation", h.Clock)
	}
	clock = clock.Add(31 * time.Second)
	var stale *signer.StaleAttestation
	_, err := cl.Current()
	if !errors.As(err, &cu) || !errors.As(err, &stale) || stale.MaxAge != 30*time.Second || stale.Age < 30*time.Second {
		t.Fatalf("31 s later: %v, want ClockUnavailable caused by StaleAttestation", err)
	}
	if h, ok := cl.Health(); ok || h.Clock.Status == "ok" || !h.Clock.Stale {
		t.Fatalf("stale health %+v", h)
	}
}

// TestRequireTrusted: by default the client accepts a suspect node's
// attestation and shows its signed state; with RequireTrusted it refuses
// it (and a node without integrity checks) and keeps the last trusted
// one until that is too old.
func TestRequireTrusted(t *testing.T) {
	k, _ := signer.GenerateDevelopment(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	set, _ := signer.NewKeySet(k, nil)
	srv := newServer(t, set)
	trusted := &signer.Integrity{State: signer.IntegrityTrusted, Enforced: true}
	suspect := &signer.Integrity{State: signer.IntegritySuspect, Enforced: true, Reasons: []string{"receiver/cn0_uniform"}}
	ca := srv.TLSCAFile(t)
	for _, require := range []bool{false, true} {
		cl, err := New(Config{URL: srv.TS.URL + "/attestation", TLSCAFile: ca, RequireTrusted: require})
		if err != nil {
			t.Fatal(err)
		}
		srv.Integrity.Store(trusted)
		if _, err := cl.Refresh(context.Background()); err != nil {
			t.Fatalf("require %v, trusted: %v", require, err)
		}
		for _, in := range []*signer.Integrity{suspect, nil} {
			srv.Integrity.Store(in)
			att, err := cl.Refresh(context.Background())
			switch {
			case require && !errors.Is(err, signer.ErrIntegrityNotTrusted):
				t.Fatalf("RequireTrusted, %s: %v, want ErrIntegrityNotTrusted", in, err)
			case !require && (err != nil || IntegrityOf(att) != in.String()):
				t.Fatalf("default, %s: %v, integrity %q", in, err, IntegrityOf(att))
			}
		}
		h, ok := cl.Health()
		if !ok {
			t.Fatalf("require %v: health %+v", require, h)
		}
		if want := (*signer.Integrity)(nil); !require && h.Clock.Integrity != want {
			t.Errorf("default: health integrity %s, want the last one's (off)", h.Clock.Integrity)
		}
		if require && !h.Clock.Integrity.Equal(trusted) {
			t.Errorf("RequireTrusted: health integrity %s, want the last trusted one's", h.Clock.Integrity)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			if d := b.Delay(n); d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if b.Delay(200) > time.Second {
		t.Fatal("no cap for large n")
	}
}

// TestRetryOnLostConnection: a connection reset under a request is
// repeated once on a fresh connection; a server that resets every one
// fails the refresh, and so does one that answers with an error.
func TestRetryOnLostConnection(t *testing.T) {
	ca, a, srv := servedNode(t, "timenode production CA", false)
	for _, tc := range []struct {
		name        string
		resets      int32
		down        bool
		wantErr     bool
		wantRetries uint64
	}{
		{name: "no reset", wantRetries: 0},
		{name: "one reset", resets: 1, wantRetries: 1},
		{name: "every connection reset", resets: 2, wantErr: true, wantRetries: 1},
		{name: "an answer, not a lost connection", down: true, wantErr: true, wantRetries: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := New(Config{URL: srv.TS.URL + "/attestation", TLSCAFile: srv.TLSCAFile(t), Production: true,
				Roots: pool(ca), Pins: []string{signer.Fingerprint(a.Public().Chain[0])}})
			if err != nil {
				t.Fatal(err)
			}
			srv.Resets.Store(tc.resets)
			srv.Down.Store(tc.down)
			t.Cleanup(func() { srv.Resets.Store(0); srv.Down.Store(false) })
			_, err = cl.Refresh(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Refresh: %v, want error %v", err, tc.wantErr)
			}
			if tc.resets > 0 && tc.wantErr && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
				t.Errorf("error %v does not say the connection was reset", err)
			}
			if got := cl.Retries(); got != tc.wantRetries {
				t.Errorf("Retries() = %d, want %d", got, tc.wantRetries)
			}
			if left := srv.Resets.Load(); left != 0 {
				t.Errorf("%d resets not consumed: the client gave up early", left)
			}
		})
	}
}
