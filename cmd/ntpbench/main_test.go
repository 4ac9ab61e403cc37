package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/ntp"
	"github.com/aunsorm/timenode/netsvc/nts"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(envServe); spec != "" {
		os.Exit(serveMain(spec))
	}
	os.Exit(m.Run())
}

// rowRE matches a result row: mode, server, replies/s, CPU s/s,
// replies/CPU-s, then the rest.
var rowRE = regexp.MustCompile(`(?m)^(\S+)\s+(timenode|chronyd)\s+(\d+)\s+([0-9.]+)\s+(\d+)\s`)

// TestBenchRuns runs the whole benchmark briefly in every mode: both
// servers must answer the generator, with CPU time measured, no NAK or
// unauthentic reply (the run would fail), and chronyd must be gone
// afterwards.
func TestBenchRuns(t *testing.T) {
	short := []string{"-warmup", "100ms", "-duration", "300ms", "-inflight", "16", "-rounds", "1"}
	tests := []struct {
		name      string
		args      []string
		wantRows  int
		needChron bool
	}{
		{"ours only", append([]string{"-skip-chrony", "-modes", "batch,nts"}, short...), 2, false},
		{"ours and chronyd, all modes", short, 8, true},
		{"not pinned", append([]string{"-modes", "batch", "-server-cpu", "-1", "-load-cpu", "-1"}, short...), 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needChron {
				testbin.NeedTool(t, "chronyd", "chrony")
			}
			var out bytes.Buffer
			if code := run(tc.args, &out); code != 0 {
				t.Fatalf("run exit %d; output:\n%s", code, out.String())
			}
			rows := rowRE.FindAllStringSubmatch(out.String(), -1)
			if len(rows) != tc.wantRows {
				t.Fatalf("%d result rows, want %d; output:\n%s", len(rows), tc.wantRows, out.String())
			}
			for _, r := range rows {
				rate, _ := strconv.Atoi(r[3])
				perCPU, _ := strconv.Atoi(r[5])
				if rate < 1000 || perCPU == 0 {
					t.Errorf("%s %s: %d replies/s, %d per CPU-second; want >= 1000 and a CPU figure; output:\n%s",
						r[1], r[2], rate, perCPU, out.String())
				}
			}
			if tc.needChron && !regexp.MustCompile(`ratio timenode/chronyd: replies/s [0-9.]+x, replies/CPU-s [0-9.]+x`).MatchString(out.String()) {
				t.Errorf("no ratio line in output:\n%s", out.String())
			}
			if pids := benchChronyds(t); len(pids) != 0 {
				t.Errorf("chronyd still running after the bench: pids %v", pids)
			}
			t.Logf("\n%s", out.String())
		})
	}
}

// benchChronyds lists processes whose command line names a configuration
// in one of the bench's temporary directories.
func benchChronyds(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && bytes.Contains(b, []byte("ntpbench-chrony-")) {
			pids = append(pids, filepath.Base(filepath.Dir(d)))
		}
	}
	return pids
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-modes", "batch,nope"},
		{"-inflight", "0"},
		{"-inflight", "5000"},
		{"-batch", "2000"},
	} {
		if code := run(args, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestServeSpec(t *testing.T) {
	for _, s := range []serveSpec{{workers: 1, batch: 32, sendBatch: 4}, {workers: 2, batch: 1, sendBatch: 1, rateLimit: true, cert: "/a/c.pem", key: "/a/k.pem"}} {
		got, err := parseServeSpec(s.String())
		if err != nil || got != s {
			t.Errorf("%+v -> %q -> %+v, %v", s, s.String(), got, err)
		}
	}
	for _, bad := range []string{"", "1,2", "1,x,0", "1,2,0,only-cert"} {
		if _, err := parseServeSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// keRecords builds an NTS-KE response body from records.
func keRecords(recs ...[]byte) []byte { return bytes.Join(recs, nil) }

func TestParseKEResponse(t *testing.T) {
	proto := nts.AppendRecord(nil, true, nts.RecordNextProtocol, []byte{0, 0})
	aead := nts.AppendRecord(nil, false, nts.RecordAEADAlgorithm, []byte{0, 15})
	cookie := nts.AppendRecord(nil, false, nts.RecordNewCookie, []byte("cookie-1"))
	port := nts.AppendRecord(nil, true, nts.RecordNTPv4Port, []byte{0x12, 0x34})
	eom := nts.AppendRecord(nil, true, nts.RecordEndOfMessage, nil)
	tests := []struct {
		name    string
		b       []byte
		cookies int
		port    int
		ok      bool
	}{
		{"good", keRecords(proto, aead, cookie, cookie, port, eom), 2, 0x1234, true},
		{"unknown non-critical ignored", keRecords(proto, aead, nts.AppendRecord(nil, false, 99, []byte{1}), cookie, eom), 1, 0, true},
		{"unknown critical", keRecords(proto, aead, nts.AppendRecord(nil, true, 99, nil), cookie, eom), 0, 0, false},
		{"no end", keRecords(proto, aead, cookie), 0, 0, false},
		{"no cookies", keRecords(proto, aead, eom), 0, 0, false},
		{"no AEAD", keRecords(proto, cookie, eom), 0, 0, false},
		{"other AEAD", keRecords(proto, nts.AppendRecord(nil, false, nts.RecordAEADAlgorithm, []byte{0, 16}), cookie, eom), 0, 0, false},
		{"error record", keRecords(proto, aead, nts.AppendRecord(nil, true, nts.RecordError, []byte{0, 1}), eom), 0, 0, false},
		{"truncated record", keRecords(proto, aead, cookie[:6]), 0, 0, false},
	}
	for _, tc := range tests {
		r, err := parseKEResponse(tc.b)
		if (err == nil) != tc.ok || len(r.cookies) != tc.cookies || (tc.ok && r.port != tc.port) {
			t.Errorf("%s: %d cookies, port %d, %v; want %d, %d, ok %v", tc.name, len(r.cookies), r.port, err, tc.cookies, tc.port, tc.ok)
		}
	}
}

func FuzzParseKEResponse(f *testing.F) {
	f.Add(keRecords(nts.AppendRecord(nil, true, nts.RecordNextProtocol, []byte{0, 0}),
		nts.AppendRecord(nil, false, nts.RecordAEADAlgorithm, []byte{0, 15}),
		nts.AppendRecord(nil, false, nts.RecordNewCookie, []byte("c")),
		nts.AppendRecord(nil, true, nts.RecordEndOfMessage, nil)))
	f.Add([]byte{0x80, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseKEResponse(b)
		if err == nil && len(r.cookies) == 0 {
			t.Fatal("accepted without cookies")
		}
	})
}

// TestNTSClientAgainstOurServer: the generator's NTS client gets cookies
// from our NTS-KE, its requests are answered with replies it
// authenticates, and a reply changed in any byte after the header is
// refused; a request with a cookie the server never issued gets a NAK.
func TestNTSClientAgainstOurServer(t *testing.T) {
	dir := t.TempDir()
	pki, err := newBenchPKI(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pki.certPEM, pki.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ke, err := nts.NewKEServer(nts.Config{Addr: "127.0.0.1:0", Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ke.Listen(); err != nil {
		t.Fatal(err)
	}
	srv, err := ntp.NewServer(ntp.Config{Addr: "127.0.0.1:0", NTS: ke.Processor()}, hostClock{},
		func() ntp.Status { return ntp.Status{Synchronized: true, Stratum: 1} }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = ke.Serve(ctx); done <- struct{}{} }()
	go func() { _ = srv.Serve(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	s, err := keExchange(ke.Addr().String(), pki.roots, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := newNTSNTP(s)
	addr := netip.MustParseAddrPort(srv.Addr().String())
	exchange := func(tx uint64) []byte {
		t.Helper()
		fd, err := openSocket(addr, true)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		b := make([]byte, bufLen)
		n := p.request(b, tx)
		if _, err := unix.Write(fd, b[:n]); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if n, err := unix.Read(fd, b); err == nil {
				return b[:n]
			}
		}
		t.Fatal("no reply")
		return nil
	}
	reply := exchange(0x1234)
	if org, kind := p.reply(reply); kind != replyOK || org != 0x1234 {
		t.Fatalf("reply: origin %x, kind %d", org, kind)
	}
	for i := ntp.HeaderLen; i < len(reply); i++ {
		bad := bytes.Clone(reply)
		bad[i] ^= 0x40
		if _, kind := p.reply(bad); kind != replyBad {
			t.Fatalf("byte %d changed: kind %d, want bad", i, kind)
		}
	}
	// A forged cookie: the server NAKs, and the client counts a NAK.
	for i := range s.cookies {
		s.cookies[i] = bytes.Repeat([]byte{7}, len(s.cookies[i]))
	}
	if _, kind := p.reply(exchange(0x5678)); kind != replyNAK {
		t.Fatalf("forged cookie: kind %d, want NAK", kind)
	}
}
