//go:build !linux

package clock

import (
	"errors"
	"fmt"
	"time"
)

// Kernel is the system clock. Steering it needs Linux's clock_adjtime; on
// other systems it only tells time and every other method returns an error
// wrapping errors.ErrUnsupported.
type Kernel struct{}

var _ Steerable = (*Kernel)(nil)

// errNoAdjtime is wrapped by every method that needs clock_adjtime.
var errNoAdjtime = fmt.Errorf("clock: clock_adjtime needs Linux: %w", errors.ErrUnsupported)

// NewKernel returns the system clock.
func NewKernel() *Kernel { return &Kernel{} }

// Now reads the system clock.
func (k *Kernel) Now() time.Time { return time.Now() }

// ReadStatus is unsupported outside Linux.
func (k *Kernel) ReadStatus() (KernelStatus, error) { return KernelStatus{}, errNoAdjtime }

// Frequency is unsupported outside Linux.
func (k *Kernel) Frequency() (float64, error) { return 0, errNoAdjtime }

// TakeOver is unsupported outside Linux.
func (k *Kernel) TakeOver() error { return errNoAdjtime }

// SetFrequency is unsupported outside Linux.
func (k *Kernel) SetFrequency(float64) error { return errNoAdjtime }

// Step is unsupported outside Linux.
func (k *Kernel) Step(time.Duration) error { return errNoAdjtime }

// SetSync is unsupported outside Linux.
func (k *Kernel) SetSync(SyncStatus) error { return errNoAdjtime }
