package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/mtls/mtlstest"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
	"github.com/aunsorm/timenode/netsvc/nts/ntsclient"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
)

// TestParseNTSWitnessFlags: --witness-nts takes NTS-KE addresses,
// --witness-nts-ca the trust anchors; bad values are refused naming the
// flag and what was wanted.
func TestParseNTSWitnessFlags(t *testing.T) {
	pki := mtlstest.New(t)
	now := time.Now()
	caFile, _ := pki.Write("witness-ca", pki.CA("witness CA", now.Add(-time.Hour), now.Add(24*time.Hour)))
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, c *config)
		wantErr string // "" for success
	}{
		{"none", nil, func(t *testing.T, c *config) {
			if path, roots, err := witnessCA(c, ""); len(c.ntsWitnesses) != 0 || path != "" || roots != nil || err != nil {
				t.Errorf("witnesses %v CA %q roots %v err %v", c.ntsWitnesses, path, roots, err)
			}
		}, ""},
		{"two witnesses, system roots", []string{"--witness-nts", "nts.example:4460", "--witness-nts", "[2001:db8::1]:4460"},
			func(t *testing.T, c *config) {
				path, roots, err := witnessCA(c, "")
				if len(c.ntsWitnesses) != 2 || c.ntsWitnesses[0] != "nts.example:4460" || c.ntsWitnesses[1] != "[2001:db8::1]:4460" || path != "" || roots != nil || err != nil {
					t.Errorf("witnesses %v CA %q roots %v err %v", c.ntsWitnesses, path, roots, err)
				}
			}, ""},
		{"with a CA file", []string{"--witness-nts", "127.0.0.1:4460", "--witness-nts-ca", caFile},
			func(t *testing.T, c *config) {
				// The flag's file, not a generation's, even in site mode.
				if path, roots, err := witnessCA(c, t.TempDir()); path != caFile || roots == nil || err != nil {
					t.Errorf("CA %q roots %v err %v, want roots from %s", path, roots, err, caFile)
				}
			}, ""},
		{"mixed with Roughtime", []string{"--witness-nts", "nts.example:4460", "--witness-roughtime", "rt.example:2002=iBVjxg/1j7y1+kQUTBYdTabxCppesU/07D4PMDJk2WA="},
			func(t *testing.T, c *config) {
				if len(c.ntsWitnesses) != 1 || len(c.witnesses) != 1 {
					t.Errorf("nts %v roughtime %v", c.ntsWitnesses, c.witnesses)
				}
			}, ""},
		{"no port", []string{"--witness-nts", "nts.example"}, nil, `--witness-nts "nts.example": want HOST:PORT`},
		{"no host", []string{"--witness-nts", ":4460"}, nil, `--witness-nts ":4460": want HOST:PORT: no host`},
		{"port not a number", []string{"--witness-nts", "nts.example:nts"}, nil, `port "nts" is not a number`},
		{"port out of range", []string{"--witness-nts", "nts.example:70000"}, nil, `port "70000" is not a number from 1 to 65535`},
		{"Roughtime syntax", []string{"--witness-nts", "nts.example:4460=AAAA"}, nil, `port "4460=AAAA"`},
		{"missing CA file", []string{"--witness-nts", "nts.example:4460", "--witness-nts-ca", filepath.Join(t.TempDir(), "none.pem")}, nil, "--witness-nts-ca: keyfile: open"},
		{"CA file without a certificate", []string{"--witness-nts", "nts.example:4460", "--witness-nts-ca", notPEM}, nil, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(string) string { return "" }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			tt.check(t, c)
		})
	}
}

// hostTime is the NTS witness's time source: the host clock, only read
// (the simulation's true time).
type hostTime struct{}

func (hostTime) Now() time.Time { return time.Now() }

// startNTSWitness runs the appliance's own NTS-KE and NTP servers on
// loopback as a witness serving true time, with a certificate from a test
// CA, and returns the NTS-KE address, the CA file and the KE server.
func startNTSWitness(t *testing.T) (string, string, *nts.KEServer) {
	t.Helper()
	pki := mtlstest.New(t)
	now := time.Now()
	ca := pki.CA("witness CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	caFile, _ := pki.Write("witness-ca", ca)
	leaf := pki.Leaf("witness", []string{"127.0.0.1"}, ca, x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	ke, err := nts.NewKEServer(nts.Config{Addr: "127.0.0.1:0", Certificates: []tls.Certificate{leaf.TLS()}, NTPPort: port})
	if err != nil {
		t.Fatal(err)
	}
	if err := ke.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "nts-ke witness", ke.Serve)
	status := func() ntp.Status {
		return ntp.Status{Synchronized: true, Stratum: 1, RefID: [4]byte{'G', 'P', 'S', 0}, RefTime: time.Now(), RootDispersion: 10 * time.Microsecond}
	}
	srv, err := ntp.NewServer(ntp.Config{Addr: "127.0.0.1:" + strconv.Itoa(port), Workers: 1, NTS: ke.Processor()}, hostTime{}, status, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	testbin.Serve(t, "ntp witness", srv.Serve)
	return ke.Addr().String(), caFile, ke
}

// TestEndToEndNTSWitness runs `timenoded --sim` with an NTS witness on
// loopback that serves true time: the daemon must run NTS-KE with it
// through the CA given, get authenticated replies, and export the
// witness's offset, near zero once the node is locked.
func TestEndToEndNTSWitness(t *testing.T) {
	addr, caFile, ke := startNTSWitness(t)
	d := startSim(t, simOptions{args: []string{"--witness-nts", addr, "--witness-nts-ca", caFile, "--witness-interval", "1s"}})
	d.waitHealthy(t, 60*time.Second)
	series := fmt.Sprintf(`timenode_integrity_witness_offset_seconds{witness="%s"}`, addr)
	deadline := time.Now().Add(testbin.Wait(20 * time.Second))
	for d.metric(t, series) == -1 {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20 s", series)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The first measurement may predate the lock; let a few more come.
	time.Sleep(testbin.Wait(3 * time.Second))
	off := d.metric(t, series)
	unc := d.metric(t, fmt.Sprintf(`timenode_integrity_witness_uncertainty_seconds{witness="%s"}`, addr))
	nodeBound := d.metric(t, "timenode_clock_error_bound_seconds")
	st := ke.Stats()
	t.Logf("witness offset %v s ± %v s, node bound %v s; witness server: %+v", off, unc, nodeBound, st)
	// Both are honest claims: true time lies within off ± unc of the node's
	// clock, and the node's clock within its bound of true time. So the
	// witness may disagree by at most the sum; a loaded machine widens
	// both (a CI run saw 1.8 ms ± 1.9 ms), never the check.
	if nodeBound < 0 || off < -(unc+nodeBound) || off > unc+nodeBound {
		t.Errorf("witness offset %v s ± %v s is outside the node's bound %v s: one of them is not honest", off, unc, nodeBound)
	}
	// The witness's own uncertainty is a loopback round trip plus its 10 µs.
	bound := 0.001
	if testbin.Emulated() {
		bound = 0.02
	}
	if unc <= 0 || unc > 10*bound {
		t.Errorf("witness uncertainty %v s, want a loopback round trip and the witness's 10 µs", unc)
	}
	if st.KEResponses != 1 || st.NTPAuthenticated < 3 || st.NTPBadAuth+st.NTPBadCookie+st.NTPMalformed != 0 {
		t.Errorf("witness server saw %+v, want one KE and authenticated requests only", st)
	}
}

// TestReloadRotatesTheWitnessCA: in site mode the NTS witnesses trust
// the generation's witness-ca.pem, and each reload hands them the new
// generation's: a CA that did not issue the witness's certificate (or
// none, the system roots) fails the next NTS-KE, the right one brings
// the witness back, and a generation whose CA file is bad is refused
// whole, keeping the session the current CA vouched for.
func TestReloadRotatesTheWitnessCA(t *testing.T) {
	addr, caFile, ke := startNTSWitness(t)
	witnessPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pki := mtlstest.New(t)
	otherPEM, _ := pki.Write("other-ca", pki.CA("other CA", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)))
	otherCA, err := os.ReadFile(otherPEM)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	n := sitetest.NewNode(t, t0)
	activate := func(gen string, ca []byte) {
		b := n.Bundle(t, t0, "kms.test.example")
		if ca != nil {
			if err := os.WriteFile(filepath.Join(b, site.WitnessCA), ca, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		n.Activate(t, b, gen)
	}
	activate("g0", nil)
	cfg, err := parseConfig([]string{"--production", "--state-dir", n.State, "--witness-nts", addr}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, metrics := startedDaemon(t, cfg, log)
	_, c, err := newNTSWitness(addr, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.witnesses = &witnessTrust{clients: []*ntsclient.Client{c}}
	// As the daemon does at start, with g0's anchors: the system roots.
	r.witnesses.use("", nil, log)
	if !strings.Contains(logs.String(), `msg="NTS witnesses trust" ca="the system roots" witnesses=1`) {
		t.Errorf("start: no trust line in %q", logs.String())
	}

	steps := []struct {
		gen      string
		ca       []byte
		status   string // reload's status line, by prefix
		log      string // the trust line, "" when the anchors stay
		verifies bool   // whether the next query verifies the witness
	}{
		{"g1", witnessPEM, "reloaded", "ca=" + filepath.Join(n.State, site.GensDir, "g1", site.WitnessCA), true},
		{"g2", []byte("not a certificate\n"), "reload refused: NTS witness CA", "", true},
		{"g3", otherCA, "reloaded", "ca=" + filepath.Join(n.State, site.GensDir, "g3", site.WitnessCA), false},
		{"g4", nil, "reloaded", `ca="the system roots"`, false},
		{"g5", witnessPEM, "reloaded", "ca=" + filepath.Join(n.State, site.GensDir, "g5", site.WitnessCA), true},
	}
	for _, s := range steps {
		logs.Reset()
		activate(s.gen, s.ca)
		if st := reload(cfg, r, t0, metrics, log); !strings.HasPrefix(st, s.status) {
			t.Fatalf("%s: reload %q, want %q", s.gen, st, s.status)
		}
		trustLine := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "NTS witnesses trust") {
				trustLine = l
			}
		}
		if (s.log == "") != (trustLine == "") || !strings.Contains(trustLine, s.log) {
			t.Errorf("%s: trust log %q, want one with %q", s.gen, trustLine, s.log)
		}
		_, err := c.Query(context.Background())
		var verr *tls.CertificateVerificationError
		switch {
		case s.verifies && err != nil:
			t.Errorf("%s: query: %v", s.gen, err)
		case !s.verifies && !errors.As(err, &verr):
			t.Errorf("%s: query: %v, want a certificate verification error", s.gen, err)
		case !s.verifies && witnessFailure(err) != failCertificate:
			t.Errorf("%s: query: %v classed %q, want %q", s.gen, err, witnessFailure(err), failCertificate)
		}
	}
	// g1 and g5 each ran NTS-KE; the refused g2 kept g1's session.
	if st := c.Stats(); st.KESessions != 2 || st.KEFailures != 2 {
		t.Errorf("client %+v, want 2 KE sessions and 2 failures", st)
	}
	if st := ke.Stats(); st.KEResponses != 2 {
		t.Errorf("witness answered %d NTS-KE sessions, want 2", st.KEResponses)
	}
}
