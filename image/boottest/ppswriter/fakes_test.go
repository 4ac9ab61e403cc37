package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a raw clock that moves only when read (by tick, so that
// sleepUntil's spin loop ends) or slept on (by the time asked plus any
// oversleep given for that Sleep call).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Duration
	tick   time.Duration
	over   map[int]time.Duration // extra time slept by the n-th Sleep (from 0)
	sleeps []time.Duration       // what was asked
	// throttle really sleeps this long in each Sleep, to keep tests
	// that run until stopped from spinning flat out.
	throttle time.Duration
}

func (c *fakeClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.now
	c.now += c.tick
	return v
}

// peek reads the clock without moving it.
func (c *fakeClock) peek() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.throttle > 0 {
		time.Sleep(c.throttle)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d + c.over[len(c.sleeps)]
	c.sleeps = append(c.sleeps, d)
	return nil
}

// write is one byte written to one port, and when.
type write struct {
	at  time.Duration
	off int64
	b   byte
}

// recPort records the writes (and passes them on to next, if any); the
// failAt-th write (from 1) fails with failErr, or writes nothing when
// failErr is nil.
type recPort struct {
	clock   *fakeClock
	next    Port
	failAt  int
	failErr error

	mu     sync.Mutex
	writes []write
}

func (p *recPort) WriteAt(b []byte, off int64) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var at time.Duration
	if p.clock != nil {
		at = p.clock.peek()
	}
	if len(p.writes)+1 == p.failAt {
		if p.failErr != nil {
			return 0, p.failErr
		}
		return 0, nil
	}
	for i, c := range b {
		p.writes = append(p.writes, write{at: at, off: off + int64(i), b: c})
	}
	if p.next != nil {
		return p.next.WriteAt(b, off)
	}
	return len(b), nil
}

func (p *recPort) recorded() []write {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]write(nil), p.writes...)
}

// fakeSysfs makes a sysfs tree with a DMI vendor (none when vendor is
// "-") and PPS devices (device → name).
func fakeSysfs(t *testing.T, vendor string, pps map[string]string) string {
	t.Helper()
	root := t.TempDir()
	put := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if vendor != "-" {
		put("class/dmi/id/sys_vendor", vendor)
	}
	for dev, name := range pps {
		put(filepath.Join("class/pps", dev, "name"), name)
	}
	return root
}

// qemuSysfs is the sysfs of the boot test's guest.
func qemuSysfs(t *testing.T) string {
	return fakeSysfs(t, "QEMU\n", map[string]string{"pps0": "pps_parport\n"})
}

// tempPort is an empty file standing in for /dev/port.
func tempPort(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "port")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkPortFile checks a stand-in for /dev/port after pulses: the data
// and control registers hold the last bytes written, nothing else was
// touched.
func checkPortFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, ctrlReg+1)
	want[dataReg] = 0x55
	want[ctrlReg] = 0x1c
	if !bytes.Equal(b, want) {
		t.Fatalf("port file: %d bytes, [0x378]=%#x [0x37a]=%#x; want %d bytes, only those two set to 0x55 and 0x1c",
			len(b), at(b, dataReg), at(b, ctrlReg), len(want))
	}
}

func at(b []byte, i int) int {
	if i < len(b) {
		return int(b[i])
	}
	return -1
}

// logBuf is a goroutine-safe log that can wait for a line.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the log contains s.
func (l *logBuf) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, l.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
