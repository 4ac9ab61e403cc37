// Package proccpu is what the serving benchmarks (cmd/ntpbench,
// cmd/roughtimebench) need from Linux to measure a server's CPU time and
// keep the server and the load generator on separate cores: the process's
// utime+stime from /proc, the calling thread's own CPU time, and CPU
// pinning that a child process inherits.
package proccpu

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const ClockTicks = 100

// Ticks returns the user plus system time, in clock ticks, of pid and of
// its children still running (chronyd's NTS-KE helper processes), read
// from /proc/PID/stat. Threads are included: the kernel sums them.
func Ticks(pid int) (uint64, error) {
	total, err := procTicks(pid)
	if err != nil {
		return 0, err
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(kids)) {
			if kid, err := strconv.Atoi(f); err == nil {
				if n, err := procTicks(kid); err == nil {
					total += n
				}
			}
		}
	}
	return total, nil
}

func procTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	return ParseStatTicks(b)
}

// ParseStatTicks returns utime+stime from the contents of /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func ParseStatTicks(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %.40q: no command name", b)
	}
	// After ")": state is field 3, utime field 14, stime field 15.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q stime %q", f[11], f[12])
	}
	return u + s, nil
}

// ThreadCPU returns the calling thread's CPU time (user plus system). A
// load generator that runs on one locked thread reads its own cost so.
func ThreadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PinThread binds the calling OS thread (locked by the caller) to cpu; a
// negative cpu leaves it alone. It returns a function that restores the
// thread's previous set.
func PinThread(cpu int) (restore func(), err error) {
	if cpu < 0 {
		return func() {}, nil
	}
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	return func() { _ = unix.SchedSetaffinity(0, &old) }, nil
}

// StartPinned starts cmd on cpu alone (cpu < 0: anywhere). The child
// inherits the affinity of the thread that forks it, so the thread is
// pinned for the fork and restored after: every thread the child ever
// makes (Go's runtime threads included) stays on cpu, which a
// sched_setaffinity on the child's pid after the start could not promise.
func StartPinned(cmd *exec.Cmd, cpu int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := PinThread(cpu)
	if err != nil {
		return err
	}
	defer restore()
	return cmd.Start()
}

// AllowedCPUs returns the Cpus_allowed_list of pid, to print what the
// pinning achieved ("?" when it cannot be read).
func AllowedCPUs(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
