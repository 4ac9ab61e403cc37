package netsvc

import (
	"net"
	"sync"
)

// MaxConns caps simultaneous connections per listener, so a flood of idle
// or slow clients cannot exhaust file descriptors and starve good ones;
// the timeouts in server.go then reclaim the slots they hold.
const MaxConns = 4096

// limitListener blocks Accept while n connections are open.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func limitConns(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
