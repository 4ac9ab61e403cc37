package roughtime

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// interopDir is Cloudflare's Roughtime, kept beside the repository only
// for this test (see ../shared/interop/README.md from the repository root).
const interopDir = "../../../shared/interop/roughtime"

// buildGetroughtime builds the third-party client into a temporary
// directory. Without the folder the test skips, except under CI=true,
// where a missing peer must not pass silently.
func buildGetroughtime(t *testing.T) string {
	t.Helper()
	return buildInterop(t, "getroughtime")
}

// buildInterop builds the peer's ./cmd/<name> as buildGetroughtime does.
func buildInterop(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(interopDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", name)); err != nil {
		msg := "interop peer missing: " + dir + " (Cloudflare Roughtime, see shared/interop/README.md): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/"+name)
	cmd.Dir = dir
	// Its own module with no dependencies: never reach for the network.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s in %s: %v\n%s", name, dir, err, b)
	}
	return out
}

// TestInteropGetroughtime runs Cloudflare's getroughtime against the
// server for both protocols it speaks: it must accept replies certified
// by the key its configuration names, print the source's time within the
// radius, and reject a server whose long-term key is another one.
func TestInteropGetroughtime(t *testing.T) {
	bin := buildGetroughtime(t)
	src := &fakeSource{}
	src.set(epoch.Add(123456789*time.Nanosecond), 5*time.Millisecond, true)
	right := testLongTerm(t, 1)
	wrong := testLongTerm(t, 2)
	s := startServer(t, Config{TimeSource: src, LongTermKey: right})

	// getroughtime -config prints "<name>: <midpoint> ±<radius> (in …)"
	// for a verified reply and "skipped <name>: <error>" otherwise.
	line := regexp.MustCompile(`(?m)^timenode: (.+ UTC) ±(\S+) \(in `)
	tests := []struct {
		name      string
		version   string // the client's config value
		v         Version
		configKey []byte
		accept    bool
		// rejection is what the client must print for a wrong key. A
		// Google client checks the delegation signature; an IETF client
		// names the key it expects in SRV, so the server stays silent.
		rejection string
		dropped   DropReason
	}{
		{"google", "Google-Roughtime", VersionGoogle, right.Public(), true, "", ""},
		{"ietf", "IETF-Roughtime", VersionDraft11, right.Public(), true, "", ""},
		{"google wrong key", "Google-Roughtime", VersionGoogle, wrong.Public(), false, "invalid delegation signature", ""},
		{"ietf wrong key", "IETF-Roughtime", VersionDraft11, wrong.Public(), false, "no reply", DropWrongServer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := map[string]any{"servers": []any{map[string]any{
				"name":          "timenode",
				"version":       tc.version,
				"publicKeyType": "ed25519",
				"publicKey":     tc.configKey, // []byte marshals as base64
				"addresses":     []any{map[string]string{"protocol": "udp", "address": s.Addr().String()}},
			}}}
			b, err := json.Marshal(conf)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "servers.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			before := s.Stats()
			// The client's wait is only a hang bound; when no reply is
			// expected it is kept short.
			wait := hang
			if tc.dropped != "" {
				wait = time.Second
			}
			cmd := exec.Command(bin, "-config", path, "-attempts", "1", "-timeout", wait.String())
			cmd.Env = append(os.Environ(), "TZ=UTC")
			out, err := cmd.CombinedOutput()
			t.Logf("getroughtime: %s", strings.TrimSpace(string(out)))
			after := s.Stats()
			if tc.dropped != "" {
				if after.Dropped[tc.dropped] != before.Dropped[tc.dropped]+1 || after.Replies != before.Replies {
					t.Fatalf("server did not drop the request as %s", tc.dropped)
				}
			} else {
				// Counted just after the send; bounded wait, no timing claim.
				waitFor(t, "the reply counted", func() bool { return s.Stats().Replies == before.Replies+1 })
			}
			if !tc.accept {
				if err == nil || !strings.Contains(string(out), "skipped timenode") || !strings.Contains(string(out), tc.rejection) {
					t.Fatalf("client did not reject the wrong key (err %v)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("getroughtime failed: %v", err)
			}
			m := line.FindStringSubmatch(string(out))
			if m == nil {
				t.Fatal("no verified reply in the output")
			}
			mid, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 UTC", m[1])
			if err != nil {
				t.Fatal(err)
			}
			rad, err := time.ParseDuration(m[2])
			if err != nil {
				t.Fatal(err)
			}
			tm, bound, _ := src.Now()
			if rad < bound || tm.Before(mid.Add(-rad)) || tm.After(mid.Add(rad)) {
				t.Fatalf("client saw %v ±%v; source %v ±%v", mid, rad, tm, bound)
			}
			// RADI is the bound plus MIDP's rounding, rounded up: at most
			// one unit above the bound (5ms → 5.001ms here, or 1s).
			if rad > bound+tc.v.unit() {
				t.Fatalf("radius %v more than one %v above the bound %v", rad, tc.v.unit(), bound)
			}
		})
	}
}

// TestInteropTestserver queries Cloudflare's testserver with Query in
// each version both speak: its replies must verify under the key its seed
// gives, and fail the delegation check under another key.
func TestInteropTestserver(t *testing.T) {
	bin := buildInterop(t, "testserver")
	seed := bytes.Repeat([]byte{0x42}, ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	// The testserver does not print its address, so it gets a port that
	// was free a moment ago.
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.LocalAddr().String()
	_ = probe.Close()
	var logs strings.Builder
	cmd := exec.Command(bin, "-addr", addr, "-root-key", hex.EncodeToString(seed))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Logf("testserver: %s", strings.TrimSpace(logs.String()))
	})
	// Ask until it listens (a refused port fails a Query at once).
	var first *Result
	deadline := time.Now().Add(hang)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		first, err = Query(ctx, addr, pub, VersionDraft11, QueryOptions{Attempts: 1, Wait: 200 * time.Millisecond})
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testserver never answered: %v", err)
	}
	t.Logf("draft 11: %v ±%v", first.Midpoint, first.Radius)

	wrong := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x43}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	tests := []struct {
		name string
		v    Version
		pub  ed25519.PublicKey
		want string // error; "" for a verified reply
		radi time.Duration
	}{
		{"draft11", VersionDraft11, pub, "", time.Second},
		{"google", VersionGoogle, pub, "", time.Second},
		{"google wrong key", VersionGoogle, wrong, "delegation signature invalid", 0},
		{"draft11 wrong key without SRV", VersionDraft11, wrong, "delegation signature invalid", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			// A wrong key goes without SRV: the testserver exits on a
			// request naming another key, and without SRV it answers, so
			// the delegation check is what refuses it.
			res, err := Query(ctx, addr, tc.pub, tc.v, QueryOptions{NoSRV: tc.want != ""})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The testserver signs its own clock with a 1 s radius and a
			// delegation from a day before to a day after it started.
			if res.Version != tc.v || res.Radius != tc.radi || res.NotAfter.Sub(res.NotBefore) != 48*time.Hour {
				t.Fatalf("version %v radius %v delegation [%v, %v]", res.Version, res.Radius, res.NotBefore, res.NotAfter)
			}
			if _, err := VerifyReply(res.Request, res.Reply, wrong); err == nil {
				t.Fatal("its reply verifies under another key")
			}
		})
	}
}
