package gnss

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tarm/serial"
)

// readTimeout bounds each read so that closing the port (which waits for a
// read in progress) never hangs; VTIME's granularity is 100 ms.
const readTimeout = 100 * time.Millisecond

// hangupEOFs is how many zero-byte reads in a row, each returning well
// before readTimeout, mean the tty was hung up (USB unplug) rather than
// quiet.
const hangupEOFs = 3

// errHangup reports a hung-up tty.
var errHangup = errors.New("device hung up")

// chunk is one read: bytes, the clock reading when the read returned, or
// the error that ended the port.
type chunk struct {
	data []byte
	at   time.Time
	err  error
}

// openPort opens the device through tarm/serial, 8 data bits, 1 stop bit.
func openPort(cfg Config) (*serial.Port, error) {
	p, err := serial.OpenPort(&serial.Config{
		Name:        cfg.Device,
		Baud:        cfg.Baud,
		Size:        8,
		Parity:      serial.Parity(cfg.Parity),
		StopBits:    serial.Stop1,
		ReadTimeout: readTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("gnss: open %s: %w", cfg.Device, err)
	}
	return p, nil
}

// readLoop reads port until an error or until quit is closed, sending each
// read on out. Reads that time out are not sent; a run of instant empty
// reads is reported as errHangup.
func (r *Receiver) readLoop(port io.Reader, out chan<- chunk, quit <-chan struct{}) {
	buf := make([]byte, 4096)
	fastEOFs := 0
	for {
		t0 := time.Now()
		n, err := port.Read(buf)
		at := r.clk.Now()
		if n > 0 {
			fastEOFs = 0
			c := chunk{data: append([]byte(nil), buf[:n]...), at: at}
			select {
			case out <- c:
			case <-quit:
				return
			}
		}
		switch {
		case err == nil || (errors.Is(err, io.EOF) && n > 0):
		case errors.Is(err, io.EOF):
			if time.Since(t0) < readTimeout/2 {
				fastEOFs++
			} else {
				fastEOFs = 0
			}
			if fastEOFs < hangupEOFs {
				break
			}
			err = errHangup
			fallthrough
		default:
			select {
			case out <- chunk{err: fmt.Errorf("gnss: read %s: %w", r.cfg.Device, err), at: at}:
			case <-quit:
			}
			return
		}
		select {
		case <-quit:
			return
		default:
		}
	}
}
