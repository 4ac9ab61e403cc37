package pps

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aunsorm/timenode/hw/pps/internal/ppsabi"
)

// DefaultKernelTimeout is how long Kernel.Fetch waits for an edge when
// KernelOptions.Timeout is zero: one and a half pulse periods, so a single
// missing pulse is reported as a timeout rather than waited out silently.
const DefaultKernelTimeout = 1500 * time.Millisecond

// KernelOptions configure a kernel PPS source.
type KernelOptions struct {
	// Timeout bounds each Fetch; zero means DefaultKernelTimeout.
	Timeout time.Duration
	// AssertOffset is added by the kernel to every assert timestamp
	// (PPS_OFFSETASSERT), e.g. minus the antenna cable delay. Zero leaves the
	// device's offset compensation off.
	AssertOffset time.Duration
}

// Errors of OpenKernel, for errors.Is. The returned errors also name the
// device and the likely fix.
var (
	// ErrNoDevice: the path does not exist.
	ErrNoDevice = errors.New("no such PPS device")
	// ErrNotPPS: the path exists but does not answer the PPS ioctls.
	ErrNotPPS = errors.New("not a PPS device")
	// ErrNoAssertCapture: the driver cannot timestamp assert edges.
	ErrNoAssertCapture = errors.New("device cannot capture assert edges")
	// ErrUnsupportedMode: the driver lacks timespec timestamps, or offset
	// compensation when KernelOptions.AssertOffset asks for it.
	ErrUnsupportedMode = errors.New("device does not support the requested mode")
)

// Hints appended to open errors.
const (
	hintCreate = "load the pps-gpio overlay or run `ldattach PPS /dev/ttyS0`"
	hintSerial = "it is a serial port: run `ldattach PPS %s` and open the /dev/ppsN it creates"
)

// event is one PPS_FETCH answer: the latest assert edge the kernel holds.
type event struct {
	seq  uint32
	sec  int64
	nsec int32
}

// params is the part of struct pps_kparams this package sets.
type params struct {
	apiVersion int32
	mode       int32
	assertOff  time.Duration
}

// Errors a device returns from fetch for ETIMEDOUT and EINTR.
var (
	errFetchTimedOut    = errors.New("fetch timed out")
	errFetchInterrupted = errors.New("fetch interrupted")
)

// device is the ioctl interface of an open /dev/ppsN. fetch with a zero
// timeout returns the latest edge at once.
type device interface {
	caps() (int32, error)
	params() (params, error)
	setParams(params) error
	fetch(timeout time.Duration) (event, error)
	close() error
}

// Kernel is a Source reading assert edges from a Linux PPS device. Its
// timestamps are taken by the kernel on CLOCK_REALTIME at interrupt time.
//
// Pulse.Seq is the kernel's assert sequence number (extended past 32 bits);
// a gap in it means the kernel saw edges Fetch did not return, which Stats
// counts as Missed. Fetch must not be called concurrently; Stats may be.
type Kernel struct {
	path    string
	timeout time.Duration

	mu      sync.Mutex // serialises Fetch and Close
	dev     device
	lastSeq uint32 // kernel sequence of the last edge returned or seen at open
	seq     uint64 // lastSeq extended past 32 bits

	counters counters
}

// configure checks the device's capabilities, sets the assert-edge timespec
// mode and records the sequence number of any edge already captured, so
// that the first Fetch waits for a fresh one.
func configure(path string, dev device, opts KernelOptions) (*Kernel, error) {
	caps, err := dev.caps()
	if err != nil {
		return nil, fmt.Errorf("pps: getcap %s: %w", path, err)
	}
	if err := checkCaps(path, caps, opts); err != nil {
		return nil, err
	}
	p, err := dev.params()
	if err != nil {
		return nil, fmt.Errorf("pps: getparams %s: %w", path, err)
	}
	p.apiVersion = ppsabi.APIVersion
	p.mode = ppsabi.CaptureAssert | ppsabi.TSFmtTSpec
	if caps&ppsabi.CanWait != 0 {
		p.mode |= ppsabi.CanWait
	}
	p.assertOff = 0
	if opts.AssertOffset != 0 {
		p.mode |= ppsabi.OffsetAssert
		p.assertOff = opts.AssertOffset
	}
	if err := dev.setParams(p); err != nil {
		return nil, fmt.Errorf("pps: setparams %s: %w", path, err)
	}
	ev, err := dev.fetch(0)
	if err != nil {
		return nil, fmt.Errorf("pps: fetch %s: %w", path, err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultKernelTimeout
	}
	return &Kernel{
		path:    path,
		timeout: timeout,
		dev:     dev,
		lastSeq: ev.seq,
		seq:     uint64(ev.seq),
	}, nil
}

// checkCaps turns the PPS_GETCAP bits into an error naming what is missing.
func checkCaps(path string, caps int32, opts KernelOptions) error {
	if caps&ppsabi.CaptureAssert == 0 {
		return fmt.Errorf("pps: getcap %s: %w (capabilities %#x): the driver only reports clear edges; "+
			"configure the driver for the receiver's pulse polarity (pps-gpio: assert-falling-edge)",
			path, ErrNoAssertCapture, caps)
	}
	if caps&ppsabi.TSFmtTSpec == 0 {
		return fmt.Errorf("pps: getcap %s: %w: no timespec timestamps (capabilities %#x)",
			path, ErrUnsupportedMode, caps)
	}
	if opts.AssertOffset != 0 && caps&ppsabi.OffsetAssert == 0 {
		return fmt.Errorf("pps: getcap %s: %w: no assert offset compensation (capabilities %#x); "+
			"set the assert offset to zero and correct the delay in software", path, ErrUnsupportedMode, caps)
	}
	return nil
}

// Path is the device the source reads.
func (k *Kernel) Path() string { return k.path }

// Stats returns the source's counters.
func (k *Kernel) Stats() Stats { return k.counters.snapshot() }

// Fetch returns the next assert edge. An edge captured since the previous
// Fetch is returned at once; otherwise Fetch blocks in PPS_FETCH for up to the
// configured timeout and returns an error wrapping ErrTimeout when none came.
// ctx is checked before waiting and whenever the wait is interrupted; an
// ioctl in progress is not cut short by it.
func (k *Kernel) Fetch(ctx context.Context) (Pulse, error) {
	if err := ctx.Err(); err != nil {
		return Pulse{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dev == nil {
		return Pulse{}, fmt.Errorf("pps: fetch %s: %w", k.path, errClosed)
	}
	if ev, fresh, err := k.poll(); err != nil || fresh {
		return k.acceptOrFail(ev, err)
	}
	deadline := time.Now().Add(k.timeout)
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return k.timedOut()
		}
		ev, err := k.dev.fetch(remaining)
		switch {
		case err == nil:
			if ev.seq != k.lastSeq {
				return k.accept(ev), nil
			}
		case errors.Is(err, errFetchTimedOut):
			// An edge may have landed between the wake-up and the
			// return; the sequence number tells.
			if ev, fresh, err := k.poll(); err != nil || fresh {
				return k.acceptOrFail(ev, err)
			}
			return k.timedOut()
		case errors.Is(err, errFetchInterrupted):
			if err := ctx.Err(); err != nil {
				return Pulse{}, err
			}
		default:
			return Pulse{}, fmt.Errorf("pps: fetch %s: %w", k.path, err)
		}
	}
}

// poll reads the latest edge without waiting and reports whether it is one
// Fetch has not returned yet.
func (k *Kernel) poll() (event, bool, error) {
	for {
		ev, err := k.dev.fetch(0)
		switch {
		case err == nil:
			return ev, ev.seq != k.lastSeq, nil
		case errors.Is(err, errFetchInterrupted):
			continue
		default:
			return event{}, false, fmt.Errorf("pps: fetch %s: %w", k.path, err)
		}
	}
}

// acceptOrFail returns err if there is one, else the accepted ev.
func (k *Kernel) acceptOrFail(ev event, err error) (Pulse, error) {
	if err != nil {
		return Pulse{}, err
	}
	return k.accept(ev), nil
}

// accept records ev, whose sequence differs from the last one returned, as
// returned and converts it to a Pulse.
func (k *Kernel) accept(ev event) Pulse {
	delta := ev.seq - k.lastSeq // modulo 2^32
	k.lastSeq = ev.seq
	k.seq += uint64(delta)
	k.counters.pulses.Add(1)
	k.counters.missed.Add(uint64(delta - 1))
	return Pulse{
		Local:   time.Unix(ev.sec, int64(ev.nsec)),
		Seq:     k.seq,
		Quality: QualityKernel,
	}
}

func (k *Kernel) timedOut() (Pulse, error) {
	k.counters.timeouts.Add(1)
	return Pulse{}, fmt.Errorf("pps: fetch %s: %w", k.path, ErrTimeout)
}

// Close releases the device. It waits for a Fetch in progress, which ends
// within the timeout.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dev == nil {
		return nil
	}
	err := k.dev.close()
	k.dev = nil
	if err != nil {
		return fmt.Errorf("pps: close %s: %w", k.path, err)
	}
	return nil
}

var errClosed = errors.New("source closed")

var _ Source = (*Kernel)(nil)
