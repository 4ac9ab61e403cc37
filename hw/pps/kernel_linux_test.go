package pps

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aunsorm/timenode/hw/pty"
)

// TestOpenKernelRejectsNonPPSDevices opens real files that are not PPS
// devices and checks the error a user would read.
func TestOpenKernelRejectsNonPPSDevices(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("pty.Open: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	dir := t.TempDir()
	missing := filepath.Join(dir, "pps0")
	regular := filepath.Join(dir, "pps.txt")
	if err := os.WriteFile(regular, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		wantIs  []error
		wantMsg string
	}{
		{
			name:   "missing path",
			path:   missing,
			wantIs: []error{ErrNoDevice, unix.ENOENT},
			wantMsg: "pps: open " + missing + ": no such PPS device: " +
				"load the pps-gpio overlay or run `ldattach PPS /dev/ttyS0` (no such file or directory)",
		},
		{
			name:   "dev null",
			path:   "/dev/null",
			wantIs: []error{ErrNotPPS, unix.ENOTTY},
			wantMsg: "pps: getcap /dev/null: not a PPS device: open /dev/ppsN instead; to create one, " +
				"load the pps-gpio overlay or run `ldattach PPS /dev/ttyS0` " +
				"(inappropriate ioctl for device)",
		},
		{
			name:   "regular file",
			path:   regular,
			wantIs: []error{ErrNotPPS, unix.ENOTTY},
			wantMsg: "pps: getcap " + regular + ": not a PPS device: open /dev/ppsN instead; to create one, " +
				"load the pps-gpio overlay or run `ldattach PPS /dev/ttyS0` (inappropriate ioctl for device)",
		},
		{
			name:   "pty is a serial port",
			path:   slave,
			wantIs: []error{ErrNotPPS, unix.ENOTTY},
			wantMsg: "pps: getcap " + slave + ": not a PPS device: it is a serial port: run `ldattach PPS " + slave +
				"` and open the /dev/ppsN it creates (inappropriate ioctl for device)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := OpenKernel(tt.path, KernelOptions{})
			if err == nil {
				k.Close()
				t.Fatalf("OpenKernel(%s) succeeded", tt.path)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("OpenKernel(%s) error %v does not wrap %v", tt.path, err, target)
				}
			}
			if got := err.Error(); got != tt.wantMsg {
				t.Errorf("OpenKernel(%s) error\n got: %s\nwant: %s", tt.path, got, tt.wantMsg)
			}
		})
	}
}

// TestOpenKernelDevice exercises a real /dev/pps0 when the machine has one
// (pps-gpio, or `ldattach PPS` on a serial port, e.g. in the qemu boot test):
// the open, capability and parameter paths and one fetch with a short
// timeout, which may legitimately see no edge.
func TestOpenKernelDevice(t *testing.T) {
	const path = "/dev/pps0"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s on this machine (a device, not a tool, so this skips on CI too): "+
			"as root, `modprobe pps_ldisc && ldattach PPS /dev/ttyS1` (Debian package util-linux) creates one", path)
	}
	k, err := OpenKernel(path, KernelOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("OpenKernel: %v", err)
	}
	defer k.Close()
	p, err := k.Fetch(t.Context())
	switch {
	case errors.Is(err, ErrTimeout):
		if got := k.Stats().Timeouts; got != 1 {
			t.Errorf("Stats().Timeouts = %d after a timeout, want 1", got)
		}
	case err != nil:
		t.Fatalf("Fetch: %v", err)
	case p.Quality != QualityKernel || p.Local.IsZero():
		t.Errorf("Fetch = %+v, want a kernel-quality pulse with a timestamp", p)
	}
}
