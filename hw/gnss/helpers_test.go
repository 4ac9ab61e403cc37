package gnss

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/hw/pty"
)

// burst is what a simple receiver sends for one second: RMC, GGA and ZDA
// from talker GP with correct checksums and CRLF.
func burst(utc time.Time, valid bool) []byte {
	status, quality, mode := "A", "1", "A"
	if !valid {
		status, quality, mode = "V", "0", "N"
	}
	hms := utc.Format("150405") + fmt.Sprintf(".%02d", utc.Nanosecond()/1e7)
	var b []byte
	b = AppendSentence(b, fmt.Sprintf("GPRMC,%s,%s,4807.038,N,01131.000,E,0.0,0.0,%s,,,%s",
		hms, status, utc.Format("020106"), mode))
	b = AppendSentence(b, fmt.Sprintf("GPGGA,%s,4807.038,N,01131.000,E,%s,08,0.9,545.4,M,46.9,M,,", hms, quality))
	b = AppendSentence(b, fmt.Sprintf("GPZDA,%s,%02d,%02d,%04d,00,00", hms, utc.Day(), int(utc.Month()), utc.Year()))
	return b
}

// testLogger collects log lines so tests can assert on them.
type testLogger struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *testLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// running is a Receiver started by startReceiver.
type running struct {
	r     *Receiver
	fixes chan Fix
	log   *testLogger
	stop  func()
}

// startReceiver runs a Receiver on cfg until the test ends.
func startReceiver(t *testing.T, cfg Config, clk *clocktest.Manual) *running {
	t.Helper()
	lg := &testLogger{}
	r := NewReceiver(cfg, clk, slog.New(slog.NewTextHandler(lg, nil)))
	fixes := make(chan Fix, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, fixes) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5 s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &running{r: r, fixes: fixes, log: lg, stop: stop}
}

// openPTY opens a pty whose slave is reachable through a symlink in a temp
// dir, so a test can "replug" a new pty under the same device name.
func openPTY(t *testing.T, link string) *os.File {
	t.Helper()
	m, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if link != "" {
		tmp := link + ".tmp"
		if err := os.Symlink(slave, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func deviceLink(t *testing.T) string {
	return filepath.Join(t.TempDir(), "ttyGPS0")
}

// waitFix returns the next Fix or fails after d.
func waitFix(t *testing.T, fixes <-chan Fix, d time.Duration) Fix {
	t.Helper()
	select {
	case f := <-fixes:
		return f
	case <-time.After(d):
		t.Fatalf("no Fix within %v", d)
		return Fix{}
	}
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
