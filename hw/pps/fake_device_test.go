package pps

import (
	"errors"
	"time"
)

// fakeDevice models the PPS core of the kernel: cur is the latest captured
// edge, which a zero-timeout fetch returns; each blocking fetch consumes one
// wait. With no waits left, a blocking fetch times out.
type fakeDevice struct {
	capsVal int32
	capsErr error
	initial params
	setErr  error

	set      []params        // what setParams received
	cur      event           // latest edge the "kernel" holds
	waits    []wait          // outcomes of blocking fetches, in order
	blocking []time.Duration // timeouts passed to blocking fetches
	closed   bool
}

// wait is the outcome of one blocking PPS_FETCH.
type wait struct {
	edge   *event // an edge arrives: fetch returns it
	err    error  // otherwise the fetch fails with err
	after  *event // and this edge lands just after the failure
	onWait func() // runs while "blocked"
}

func (d *fakeDevice) caps() (int32, error) { return d.capsVal, d.capsErr }

func (d *fakeDevice) params() (params, error) { return d.initial, nil }

func (d *fakeDevice) setParams(p params) error {
	if d.setErr != nil {
		return d.setErr
	}
	d.set = append(d.set, p)
	return nil
}

func (d *fakeDevice) fetch(timeout time.Duration) (event, error) {
	if d.closed {
		return event{}, errors.New("bad file descriptor")
	}
	if timeout == 0 {
		return d.cur, nil
	}
	d.blocking = append(d.blocking, timeout)
	if len(d.waits) == 0 {
		return event{}, errFetchTimedOut
	}
	w := d.waits[0]
	d.waits = d.waits[1:]
	if w.onWait != nil {
		w.onWait()
	}
	if w.edge != nil {
		d.cur = *w.edge
		return d.cur, nil
	}
	if w.after != nil {
		d.cur = *w.after
	}
	return event{}, w.err
}

func (d *fakeDevice) close() error {
	d.closed = true
	return nil
}

// edge is an event with sequence seq at second 1e9+seq.
func edge(seq uint32) *event {
	return &event{seq: seq, sec: 1_000_000_000 + int64(seq), nsec: 250}
}
