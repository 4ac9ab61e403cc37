package netsvc

import (
	"net"
	"testing"
	"time"
)

func TestLimitConns(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitConns(raw, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	got := []net.Conn{<-accepted, <-accepted}
	select {
	case <-accepted:
		t.Fatal("third connection accepted above the cap of 2")
	case <-time.After(200 * time.Millisecond):
	}
	got[0].Close()
	got[0].Close() // a double close must not free two slots
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("closing a connection did not free its slot")
	}
}
