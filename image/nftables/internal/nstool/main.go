// Command nstool is the network fixture of the nftables tests. The test
// runs it inside the network namespaces it creates (`ip netns exec NS
// nstool ...`); it is not part of the appliance.
//
//	nstool serve -tcp 22,5443 -udp 123,161
//	    listen on every listed port of every address; accept and close TCP
//	    connections, echo UDP datagrams; print "ready" once all are bound.
//	nstool udpprobe -timeout 1s ADDR PORT...
//	    send one datagram to each port at once and print "PORT reply" or
//	    "PORT silent" for each, by whether the echo came back.
//	nstool tcpconnect -timeout 500ms -n 1 ADDR PORT
//	    dial ADDR:PORT n times in a row and print how many connected.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nstool serve|udpprobe|tcpconnect ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:], os.Stdout)
	case "udpprobe":
		err = udpProbe(os.Args[2:], os.Stdout)
	case "tcpconnect":
		err = tcpConnect(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nstool:", err)
		os.Exit(1)
	}
}

// ports parses a comma-separated port list; empty means none.
func ports(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("bad port %q", f)
		}
		out = append(out, p)
	}
	return out, nil
}

// serve binds every port before announcing readiness, then serves forever.
func serve(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	tcpList := fs.String("tcp", "", "TCP ports to accept on")
	udpList := fs.String("udp", "", "UDP ports to echo on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tcpPorts, err := ports(*tcpList)
	if err != nil {
		return err
	}
	udpPorts, err := ports(*udpList)
	if err != nil {
		return err
	}
	for _, p := range tcpPorts {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			return fmt.Errorf("listen tcp %d: %w", p, err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	for _, p := range udpPorts {
		pc, err := net.ListenPacket("udp", ":"+strconv.Itoa(p))
		if err != nil {
			return fmt.Errorf("listen udp %d: %w", p, err)
		}
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], from)
			}
		}()
	}
	fmt.Fprintln(stdout, "ready")
	select {}
}

// udpProbe reports, per port, whether an echo of a unique payload came back
// within the timeout. All ports are probed concurrently.
func udpProbe(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("udpprobe", flag.ContinueOnError)
	timeout := fs.Duration("timeout", time.Second, "how long to wait for each echo")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return fmt.Errorf("udpprobe: want ADDR PORT...")
	}
	addr := fs.Arg(0)
	results := make([]string, fs.NArg()-1)
	var wg sync.WaitGroup
	for i, ps := range fs.Args()[1:] {
		p, err := strconv.Atoi(ps)
		if err != nil {
			return fmt.Errorf("bad port %q", ps)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			verdict := "silent"
			if echoed(net.JoinHostPort(addr, strconv.Itoa(p)), *timeout) {
				verdict = "reply"
			}
			results[i] = fmt.Sprintf("%d %s", p, verdict)
		}()
	}
	wg.Wait()
	for _, r := range results {
		fmt.Fprintln(stdout, r)
	}
	return nil
}

// echoed sends one datagram to target and reports whether the same bytes
// came back before the deadline.
func echoed(target string, timeout time.Duration) bool {
	c, err := net.Dial("udp", target)
	if err != nil {
		return false
	}
	defer c.Close()
	msg := []byte("nstool probe " + target + " " + strconv.FormatInt(time.Now().UnixNano(), 10))
	if _, err := c.Write(msg); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return err == nil && bytes.Equal(buf[:n], msg)
}

// tcpConnect dials n times in a row and prints the number of successes.
func tcpConnect(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tcpconnect", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 500*time.Millisecond, "per-dial timeout")
	n := fs.Int("n", 1, "number of connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("tcpconnect: want ADDR PORT")
	}
	target := net.JoinHostPort(fs.Arg(0), fs.Arg(1))
	ok := 0
	for range *n {
		c, err := net.DialTimeout("tcp", target, *timeout)
		if err == nil {
			ok++
			c.Close()
		}
	}
	fmt.Fprintln(stdout, ok)
	return nil
}
