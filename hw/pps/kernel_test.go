package pps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/pps/internal/ppsabi"
)

const goodCaps = ppsabi.CaptureAssert | ppsabi.CaptureClear | ppsabi.OffsetAssert | ppsabi.CanWait | ppsabi.TSFmtTSpec

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		caps     int32
		opts     KernelOptions
		wantErr  error
		wantMsg  string
		wantMode int32
		wantOff  time.Duration
	}{
		{name: "assert timespec", caps: goodCaps,
			wantMode: ppsabi.CaptureAssert | ppsabi.TSFmtTSpec | ppsabi.CanWait},
		{name: "no canwait bit", caps: ppsabi.CaptureAssert | ppsabi.TSFmtTSpec,
			wantMode: ppsabi.CaptureAssert | ppsabi.TSFmtTSpec},
		{name: "cable delay", caps: goodCaps, opts: KernelOptions{AssertOffset: -150 * time.Nanosecond},
			wantMode: ppsabi.CaptureAssert | ppsabi.TSFmtTSpec | ppsabi.CanWait | ppsabi.OffsetAssert,
			wantOff:  -150 * time.Nanosecond},
		{name: "clear only", caps: ppsabi.CaptureClear | ppsabi.TSFmtTSpec,
			wantErr: ErrNoAssertCapture, wantMsg: "pps: getcap /dev/ppsX: device cannot capture assert edges (capabilities 0x1002)"},
		{name: "no timespec", caps: ppsabi.CaptureAssert,
			wantErr: ErrUnsupportedMode, wantMsg: "no timespec timestamps"},
		{name: "offset unsupported", caps: ppsabi.CaptureAssert | ppsabi.TSFmtTSpec, opts: KernelOptions{AssertOffset: time.Microsecond},
			wantErr: ErrUnsupportedMode, wantMsg: "no assert offset compensation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := &fakeDevice{capsVal: tt.caps, initial: params{apiVersion: 1, mode: 0x1001, assertOff: time.Second}}
			k, err := configure("/dev/ppsX", dev, tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("configure error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("configure error = %q, want it to contain %q", err, tt.wantMsg)
				}
				if len(dev.set) != 0 {
					t.Errorf("setParams called %d times on a rejected device", len(dev.set))
				}
				return
			}
			if err != nil {
				t.Fatalf("configure: %v", err)
			}
			if len(dev.set) != 1 {
				t.Fatalf("setParams called %d times, want 1", len(dev.set))
			}
			got := dev.set[0]
			want := params{apiVersion: ppsabi.APIVersion, mode: tt.wantMode, assertOff: tt.wantOff}
			if got != want {
				t.Errorf("setParams(%+v), want %+v", got, want)
			}
			if k.timeout != DefaultKernelTimeout {
				t.Errorf("timeout = %v, want %v", k.timeout, DefaultKernelTimeout)
			}
		})
	}
}

func TestConfigureErrorsNameDevice(t *testing.T) {
	ioErr := errors.New("input/output error")
	tests := []struct {
		name string
		dev  *fakeDevice
		want string
	}{
		{"getcap", &fakeDevice{capsErr: ioErr}, "pps: getcap /dev/pps7: input/output error"},
		{"setparams", &fakeDevice{capsVal: goodCaps, setErr: ioErr}, "pps: setparams /dev/pps7: input/output error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configure("/dev/pps7", tt.dev, KernelOptions{})
			if !errors.Is(err, ioErr) || err.Error() != tt.want {
				t.Errorf("configure error = %v, want %q wrapping the device error", err, tt.want)
			}
		})
	}
}

// fetchStep is one Fetch call: edges captured before it, outcomes of the
// blocking waits it may do, and what it must return.
type fetchStep struct {
	pending *event
	waits   []wait
	wantSeq uint64
	wantErr error
}

func TestKernelFetch(t *testing.T) {
	tests := []struct {
		name      string
		open      event
		steps     []fetchStep
		wantStats Stats
		wantWaits int
	}{
		{
			name: "consecutive edges",
			open: *edge(10),
			steps: []fetchStep{
				{waits: []wait{{edge: edge(11)}}, wantSeq: 11},
				{waits: []wait{{edge: edge(12)}}, wantSeq: 12},
			},
			wantStats: Stats{Pulses: 2},
			wantWaits: 2,
		},
		{
			name: "gap in sequence counts missed pulses",
			open: *edge(10),
			steps: []fetchStep{
				{waits: []wait{{edge: edge(11)}}, wantSeq: 11},
				{waits: []wait{{edge: edge(14)}}, wantSeq: 14},
			},
			wantStats: Stats{Pulses: 2, Missed: 2},
			wantWaits: 2,
		},
		{
			name: "edge captured between fetches is returned without waiting",
			open: *edge(10),
			steps: []fetchStep{
				{pending: edge(11), wantSeq: 11},
				{pending: edge(13), wantSeq: 13},
			},
			wantStats: Stats{Pulses: 2, Missed: 1},
			wantWaits: 0,
		},
		{
			name: "edge captured before open is not returned",
			open: *edge(10),
			steps: []fetchStep{
				{wantErr: ErrTimeout},
			},
			wantStats: Stats{Timeouts: 1},
			wantWaits: 1,
		},
		{
			name: "timeout then edge",
			open: *edge(3),
			steps: []fetchStep{
				{waits: []wait{{err: errFetchTimedOut}}, wantErr: ErrTimeout},
				{waits: []wait{{edge: edge(5)}}, wantSeq: 5},
			},
			wantStats: Stats{Pulses: 1, Missed: 1, Timeouts: 1},
			wantWaits: 2,
		},
		{
			name: "edge landing as the wait times out",
			open: *edge(3),
			steps: []fetchStep{
				{waits: []wait{{err: errFetchTimedOut, after: edge(4)}}, wantSeq: 4},
			},
			wantStats: Stats{Pulses: 1},
			wantWaits: 1,
		},
		{
			name: "interrupted wait is resumed",
			open: *edge(3),
			steps: []fetchStep{
				{waits: []wait{{err: errFetchInterrupted}, {err: errFetchInterrupted}, {edge: edge(4)}}, wantSeq: 4},
			},
			wantStats: Stats{Pulses: 1},
			wantWaits: 3,
		},
		{
			name: "sequence wraps past 32 bits",
			open: *edge(0xffff_fffe),
			steps: []fetchStep{
				{waits: []wait{{edge: edge(0xffff_ffff)}}, wantSeq: 0xffff_ffff},
				{waits: []wait{{edge: edge(0)}}, wantSeq: 0x1_0000_0000},
				{waits: []wait{{edge: edge(2)}}, wantSeq: 0x1_0000_0002},
			},
			wantStats: Stats{Pulses: 3, Missed: 1},
			wantWaits: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := &fakeDevice{capsVal: goodCaps, cur: tt.open}
			k, err := configure("/dev/pps0", dev, KernelOptions{Timeout: time.Second})
			if err != nil {
				t.Fatalf("configure: %v", err)
			}
			for i, st := range tt.steps {
				if st.pending != nil {
					dev.cur = *st.pending
				}
				dev.waits = st.waits
				p, err := k.Fetch(context.Background())
				if st.wantErr != nil {
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: Fetch error = %v, want %v", i, err, st.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: Fetch: %v", i, err)
				}
				want := Pulse{
					Local:   time.Unix(1_000_000_000+int64(uint32(st.wantSeq)), 250),
					Seq:     st.wantSeq,
					Quality: QualityKernel,
				}
				if !p.Local.Equal(want.Local) || p.Seq != want.Seq || p.Quality != want.Quality {
					t.Errorf("step %d: Fetch = %+v, want %+v", i, p, want)
				}
			}
			if got := k.Stats(); got != tt.wantStats {
				t.Errorf("Stats = %+v, want %+v", got, tt.wantStats)
			}
			if len(dev.blocking) != tt.wantWaits {
				t.Errorf("blocking fetches = %d, want %d", len(dev.blocking), tt.wantWaits)
			}
			for _, d := range dev.blocking {
				if d <= 0 || d > time.Second {
					t.Errorf("blocking fetch timeout %v outside (0, 1s]", d)
				}
			}
		})
	}
}

func TestKernelFetchHonoursContext(t *testing.T) {
	dev := &fakeDevice{capsVal: goodCaps, cur: *edge(1)}
	k, err := configure("/dev/pps0", dev, KernelOptions{})
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dev.waits = []wait{{err: errFetchInterrupted, onWait: cancel}, {edge: edge(2)}}
	if _, err := k.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch after cancel during wait = %v, want context.Canceled", err)
	}
	if len(dev.waits) != 1 {
		t.Errorf("Fetch kept waiting after cancellation: %d waits left, want 1", len(dev.waits))
	}
	if _, err := k.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with cancelled ctx = %v, want context.Canceled", err)
	}
	if len(dev.blocking) != 1 {
		t.Errorf("blocking fetches = %d, want 1 (none with a cancelled ctx)", len(dev.blocking))
	}
}

func TestKernelFetchDeviceErrorAndClose(t *testing.T) {
	dev := &fakeDevice{capsVal: goodCaps}
	k, err := configure("/dev/pps2", dev, KernelOptions{})
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	ioErr := errors.New("no such device")
	dev.waits = []wait{{err: ioErr}}
	_, err = k.Fetch(context.Background())
	if !errors.Is(err, ioErr) || err.Error() != "pps: fetch /dev/pps2: no such device" {
		t.Errorf("Fetch = %v, want wrapped %q", err, ioErr)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !dev.closed {
		t.Error("Close did not close the device")
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := k.Fetch(context.Background()); !errors.Is(err, errClosed) {
		t.Errorf("Fetch after Close = %v, want %v", err, errClosed)
	}
}
