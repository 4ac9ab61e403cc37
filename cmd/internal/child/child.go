// Package child stops the helper processes the benchmarks start (chronyd,
// timenoded, the hello server): ask politely, wait a grace period, kill.
package child

import (
	"os"
	"time"
)

// Stop asks the process to exit (ask sends SIGTERM, SIGINT or closes its
// stdin), waits up to grace for exited to close, and then kills it and
// waits for exited. exited must be closed by whoever calls Wait.
func Stop(p *os.Process, exited <-chan struct{}, ask func(), grace time.Duration) {
	select {
	case <-exited:
		return
	default:
	}
	ask()
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
