package netsvc

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/aunsorm/timenode/timing"
)

func TestAgentReply(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		st   timing.Status
		want string
	}{
		{"locked, tight bound", timing.Status{State: timing.Locked, ErrorBound: 3 * time.Microsecond, BoundAsOf: now}, "up 100%\n"},
		{"locked, 40 µs bound", timing.Status{State: timing.Locked, ErrorBound: 40 * time.Microsecond, BoundAsOf: now}, "up 56%\n"},
		{"locked, 10 ms bound", timing.Status{State: timing.Locked, ErrorBound: 10 * time.Millisecond, BoundAsOf: now}, "up 6%\n"},
		{"holdover within bound", timing.Status{State: timing.Holdover, ErrorBound: 50 * time.Microsecond, BoundAsOf: now, MaxBound: time.Millisecond}, "drain\n"},
		{"holdover past bound", timing.Status{State: timing.Holdover, ErrorBound: 2 * time.Millisecond, BoundAsOf: now, MaxBound: time.Millisecond}, "down\n"},
		{"unsynchronized", timing.Status{State: timing.Unsynchronized}, "down\n"},
		{"acquiring", timing.Status{State: timing.Acquiring}, "down\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			if got := AgentReply(fixedClock{now}, lockedTiming{&st}); got != tc.want {
				t.Fatalf("reply %q, want %q", got, tc.want)
			}
		})
	}
}

type fixedClock struct{ t time.Time }

func (f fixedClock) Now() time.Time { return f.t }

func TestServeAgent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	st := &timing.Status{State: timing.Locked, ErrorBound: time.Microsecond, BoundAsOf: time.Now()}
	go func() { done <- ServeAgent(ctx, ln, wallClock{}, lockedTiming{st}) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(b) != "up 100%\n" {
		t.Fatalf("agent said %q, %v", b, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeAgent after cancel: %v", err)
	}
}
