//go:build !linux

package ntp

import (
	"errors"
	"fmt"
	"net"
)

// listenReusePort is Linux-only: the server relies on recvmmsg, sendmmsg,
// SO_REUSEPORT and SO_TIMESTAMPNS.
func listenReusePort(addr string, _ int) ([]*net.UDPConn, error) {
	return nil, fmt.Errorf("ntp: listen %s: %w", addr, errors.ErrUnsupported)
}

type worker struct{}

func newWorker(*Server, *net.UDPConn, *counters) (*worker, error) {
	return nil, fmt.Errorf("ntp: worker: %w", errors.ErrUnsupported)
}

func (*worker) run() error { return errors.ErrUnsupported }
