package pps

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenKernel opens a Linux PPS device such as /dev/pps0, checks that it can
// timestamp assert edges in timespec format, and configures it for assert
// capture. PPS_SETPARAMS needs CAP_SYS_TIME and changes the device for every
// reader (chrony, gpsd) at once.
func OpenKernel(path string, opts KernelOptions) (*Kernel, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	dev := &ioctlDevice{fd: fd}
	if _, err := dev.caps(); errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		err = notPPSError(path, fd, err)
		dev.close()
		return nil, err
	}
	k, err := configure(path, dev, opts)
	if err != nil {
		dev.close()
		return nil, err
	}
	return k, nil
}

// openError explains a failed open(2).
func openError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("pps: open %s: %w: %s (%w)", path, ErrNoDevice, hintCreate, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("pps: open %s: %w: run as root or give the service user read-write access to the device", path, err)
	default:
		return fmt.Errorf("pps: open %s: %w", path, err)
	}
}

// notPPSError explains a device that rejected the PPS ioctls; a serial
// port gets the ldattach command for itself.
func notPPSError(path string, fd int, err error) error {
	if _, terr := unix.IoctlGetTermios(fd, unix.TCGETS); terr == nil {
		return fmt.Errorf("pps: getcap %s: %w: "+hintSerial+" (%w)", path, ErrNotPPS, path, err)
	}
	return fmt.Errorf("pps: getcap %s: %w: open /dev/ppsN instead; to create one, %s (%w)", path, ErrNotPPS, hintCreate, err)
}

// ioctlDevice is an open PPS character device.
type ioctlDevice struct {
	fd int
}

func (d *ioctlDevice) ioctl(req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(d.fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func (d *ioctlDevice) caps() (int32, error) {
	// The kernel writes a C int; unix.IoctlGetInt would read a Go int,
	// which is wrong on 64-bit big-endian machines.
	var caps int32
	if err := d.ioctl(unix.PPS_GETCAP, unsafe.Pointer(&caps)); err != nil {
		return 0, err
	}
	return caps, nil
}

func (d *ioctlDevice) params() (params, error) {
	var kp unix.PPSKParams
	if err := d.ioctl(unix.PPS_GETPARAMS, unsafe.Pointer(&kp)); err != nil {
		return params{}, err
	}
	return params{
		apiVersion: kp.Api_version,
		mode:       kp.Mode,
		assertOff:  time.Duration(kp.Assert_off_tu.Sec)*time.Second + time.Duration(kp.Assert_off_tu.Nsec),
	}, nil
}

func (d *ioctlDevice) setParams(p params) error {
	kp := unix.PPSKParams{
		Api_version:   p.apiVersion,
		Mode:          p.mode,
		Assert_off_tu: ktime(p.assertOff),
	}
	err := d.ioctl(unix.PPS_SETPARAMS, unsafe.Pointer(&kp))
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: setting PPS parameters needs CAP_SYS_TIME", err)
	}
	return err
}

func (d *ioctlDevice) fetch(timeout time.Duration) (event, error) {
	fd := unix.PPSFData{Timeout: ktime(timeout)}
	err := d.ioctl(unix.PPS_FETCH, unsafe.Pointer(&fd))
	switch {
	case err == nil:
		return event{
			seq:  fd.Info.Assert_sequence,
			sec:  fd.Info.Assert_tu.Sec,
			nsec: fd.Info.Assert_tu.Nsec,
		}, nil
	case errors.Is(err, unix.ETIMEDOUT):
		return event{}, errFetchTimedOut
	case errors.Is(err, unix.EINTR):
		return event{}, errFetchInterrupted
	default:
		return event{}, err
	}
}

func (d *ioctlDevice) close() error {
	return unix.Close(d.fd)
}

// ktime converts a duration to struct pps_ktime; the kernel normalises
// negative nanoseconds.
func ktime(d time.Duration) unix.PPSKTime {
	return unix.PPSKTime{
		Sec:  int64(d / time.Second),
		Nsec: int32(d % time.Second),
	}
}
