package gnss

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
)

// eofReader is a fake port whose reads return no data after delay, as a
// tty with VMIN=0 does on timeout (delay about VTIME) or once hung up
// (delay zero).
type eofReader struct {
	delay time.Duration
}

func (e *eofReader) Read([]byte) (int, error) {
	time.Sleep(e.delay)
	return 0, io.EOF
}

// TestReadLoopHangup: instant empty reads (USB unplug hangs the tty up)
// end the port with errHangup; empty reads that took the read timeout are
// a quiet line and do not.
func TestReadLoopHangup(t *testing.T) {
	tests := []struct {
		name       string
		delay      time.Duration
		wantHangup bool
	}{
		{"hung up", 0, true},
		{"quiet", readTimeout, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReceiver(Config{Device: "fake"}, clocktest.NewManual(time.Unix(0, 0)), nil)
			out := make(chan chunk, 1)
			quit := make(chan struct{})
			done := make(chan struct{})
			port := &eofReader{delay: tc.delay}
			go func() {
				defer close(done)
				r.readLoop(port, out, quit)
			}()
			select {
			case c := <-out:
				if !tc.wantHangup || !errors.Is(c.err, errHangup) {
					t.Errorf("got chunk %+v, want hangup %v", c, tc.wantHangup)
				}
			case <-time.After(5 * readTimeout):
				if tc.wantHangup {
					t.Errorf("no hangup after instant empty reads")
				}
			}
			close(quit)
			<-done
		})
	}
}
