package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks the sd_notify protocol: datagrams of KEY=VALUE lines to
// $NOTIFY_SOCKET. Without the variable (not under systemd) it is a no-op.
type notifier struct {
	addr *net.UnixAddr
}

func newNotifier(getenv func(string) string) *notifier {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return &notifier{}
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	return &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// send delivers one notification; errors are returned for logging only.
func (n *notifier) send(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// reloading tells systemd a reload started, with the monotonic timestamp
// systemd 253+ requires and older versions ignore.
func (n *notifier) reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return err
	}
	usec := ts.Nano() / 1000
	return n.send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// watchdogInterval is half of $WATCHDOG_USEC when the watchdog is meant
// for this process, else 0.
func watchdogInterval(getenv func(string) string) time.Duration {
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}
