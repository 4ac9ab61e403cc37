package certaudit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// writeTree lays out a certificate directory like an appliance's
// /etc/timenode/tls, with every kind of file the walker must survive.
func writeTree(t *testing.T) (string, *testCA, []byte) {
	t.Helper()
	ca := newTestCA(t, "timenode test CA")
	inter := newTestCA(t, "timenode intermediate")
	dir := t.TempDir()
	bundle := pemOf(ca.cert, inter.cert)
	files := map[string][]byte{
		"ca-bundle.pem":       bundle,
		"server.pem":          pemOf(ca.issue(t, "ntp.timenode", now.Add(-30*day), now.Add(60*day))),
		"soon.der":            ca.issue(t, "soon.timenode", now.Add(-80*day), now.Add(10*day)).Raw,
		"broken.pem":          []byte("-----BEGIN CERTIFICATE-----\nMIIB!!!not base64\n"),
		"key.pem":             pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"notes.txt":           []byte("rotate on the first monday\n"),
		"sub/old-and-new.pem": pemOf(ca.issue(t, "api.timenode", now.Add(-85*day), now.Add(5*day)), ca.issue(t, "api.timenode", now.Add(-2*day), now.Add(88*day))),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ca, bundle
}

func TestScanAndAudit(t *testing.T) {
	dir, _, bundle := writeTree(t)
	files, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]File{}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f.Path)
		byName[rel] = f
	}
	sum := sha256.Sum256(bundle)
	tests := []struct {
		file, format, problem, sha string
		certs                      int
	}{
		{"ca-bundle.pem", "pem", "", hex.EncodeToString(sum[:]), 2},
		{"server.pem", "pem", "", "", 1},
		{"soon.der", "der", "", "", 1},
		{"broken.pem", "pem", "broken PEM", "", 0},
		{"key.pem", "pem", "no certificate (PEM blocks: [PRIVATE KEY])", "", 0},
		{"notes.txt", "", "not a certificate", "", 0},
		{"sub/old-and-new.pem", "pem", "", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, ok := byName[tt.file]
			if !ok {
				t.Fatalf("%s not in scan: %v", tt.file, files)
			}
			if f.Format != tt.format || f.SHA256 != tt.sha || len(f.Certificates()) != tt.certs {
				t.Errorf("got format %q sha %q certs %d, want %q %q %d", f.Format, f.SHA256, len(f.Certificates()), tt.format, tt.sha, tt.certs)
			}
			if (tt.problem == "") != (f.Problem == "") || !strings.Contains(f.Problem, tt.problem) {
				t.Errorf("problem %q, want one containing %q", f.Problem, tt.problem)
			}
		})
	}

	r := Audit(dir, files, now, DefaultPolicy())
	if r.RotateNow != 1 {
		t.Errorf("rotate_now = %d, want 1 (soon.der)", r.RotateNow)
	}
	var js bytes.Buffer
	if err := json.NewEncoder(&js).Encode(r); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Certificates []struct {
			Path    string `json:"path"`
			KeyType string `json:"key_type"`
			KeyBits int    `json:"key_bits"`
		} `json:"certificates"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Certificates) != 6 {
		t.Fatalf("%d certificates in JSON, want 6", len(back.Certificates))
	}
	for _, c := range back.Certificates {
		if c.KeyType != "ECDSA" || c.KeyBits != 256 {
			t.Errorf("%s: key %s %d, want ECDSA 256", c.Path, c.KeyType, c.KeyBits)
		}
	}
	if !strings.Contains(js.String(), `"verdict":"rotate"`) || !strings.Contains(js.String(), `"sans":["DNS:soon.timenode"]`) {
		t.Errorf("JSON lacks the rotate verdict or the SANs:\n%s", js.String())
	}
	var tbl bytes.Buffer
	if err := r.WriteTable(&tbl); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ROTATE", "soon.timenode", "superseded", "CA bundle", "PROBLEM", "6 certificates, 1 to rotate now"} {
		if !strings.Contains(tbl.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tbl.String())
		}
	}
}

func TestScanMissingDir(t *testing.T) {
	if _, err := Scan(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Scan of a missing directory succeeded")
	}
}

func TestCollector(t *testing.T) {
	ca := newTestCA(t, "timenode test CA")
	https := ca.issue(t, "ntp.timenode", now.Add(-80*day), now.Add(10*day))
	long := ca.issue(t, "metrics.timenode", now.Add(-10*day), now.Add(110*day))
	c := NewCollector(func() []NamedCert {
		return []NamedCert{{Name: "https", Cert: https}, {Name: "metrics", Cert: long}, {Name: "client-ca", Cert: ca.cert}}
	}, func() time.Time { return now }, DefaultPolicy())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		MetricDaysRemaining + "/https":     10,
		MetricDaysRemaining + "/metrics":   110,
		MetricDaysRemaining + "/client-ca": 5 * 365,
		MetricPolicyViolations:             2, // rotate window + leaf lifetime
	}
	if len(got) != len(want) {
		t.Errorf("got series %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, w)
		}
	}
}
