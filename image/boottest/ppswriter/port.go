package main

import (
	"fmt"
	"io"
)

// Port writes bytes at I/O port addresses. *os.File on /dev/port is one:
// its WriteAt is pwrite(2), and the file offset is the port address.
type Port interface {
	WriteAt(b []byte, off int64) (int, error)
}

// The emulated parallel port at its ISA address (parport_pc io=0x378).
const (
	dataReg = 0x378 // data register
	ctrlReg = 0x37a // control register
)

// portWrite is one byte written to one port.
type portWrite struct {
	off int64
	b   byte
}

// pulseWrites raise one interrupt, which pps_parport timestamps as an
// assert event: a data byte, then the strobe pulsed with the interrupt
// enabled (INTEN|SELECT|INIT|STROBE, then strobe released).
var pulseWrites = [...]portWrite{
	{dataReg, 0x55},
	{ctrlReg, 0x1d},
	{ctrlReg, 0x1c},
}

// pulse writes pulseWrites to p, one pwrite each, in order.
func pulse(p Port) error {
	for _, w := range pulseWrites {
		n, err := p.WriteAt([]byte{w.b}, w.off)
		if err == nil && n != 1 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fmt.Errorf("write 0x%02x to port 0x%x: %w", w.b, w.off, err)
		}
	}
	return nil
}
