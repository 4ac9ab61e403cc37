package testbin

import (
	"context"
	"testing"
	"time"
)

// Serve runs serve (a server's Serve method) in the background until the
// test ends, then cancels it and fails the test if it does not return nil
// within ten seconds (scaled as Wait does): every server a test starts is
// stopped, and a shutdown that hangs or errs is a failure, not a leak.
func Serve(t testing.TB, what string, serve func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Serve returned %v on shutdown, want nil", what, err)
			}
		case <-time.After(Wait(10 * time.Second)):
			t.Errorf("%s: Serve did not return after cancel", what)
		}
	})
}
