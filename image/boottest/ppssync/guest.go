package ppssync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is how long the guest waits for each answer unless
// Guest.Timeout says otherwise.
const DefaultTimeout = 2 * time.Second

// ErrTimeout is wrapped by Estimate's error when the host did not answer a
// request in time.
var ErrTimeout = errors.New("ppssync: no answer from the host")

// Guest is the guest side of one stream. It reads the stream from
// NewGuest until the stream ends, so that Estimate can be called again on
// the same stream (resynchronisation) and Done reports the end of the
// stream (the host went away) even between estimates.
type Guest struct {
	// Timeout bounds the wait for each answer; zero means
	// DefaultTimeout. Set it before the first Estimate.
	Timeout time.Duration

	w   io.Writer
	raw func() time.Duration

	mu  sync.Mutex // one estimate at a time; guards seq
	seq uint64

	stamp   atomic.Pointer[func() time.Duration] // stamps arrivals
	answers chan arrival
	ignored atomic.Uint64
	done    chan struct{}
	err     error // why the stream ended; written before done is closed
}

// arrival is a response and the raw-clock reading when it was read.
type arrival struct {
	m  Message
	t4 time.Duration
}

// NewGuest starts reading r for answers; requests go to w; raw reads the
// guest's raw clock (CLOCK_MONOTONIC_RAW). From now on r belongs to the
// Guest: nothing else may read it.
func NewGuest(r io.Reader, w io.Writer, raw func() time.Duration) *Guest {
	g := &Guest{
		w:       w,
		raw:     raw,
		answers: make(chan arrival, 16),
		done:    make(chan struct{}),
	}
	g.stamp.Store(&raw)
	go g.read(r)
	return g
}

// read turns the stream's lines into stamped answers until it ends. It
// never blocks on a slow consumer: answers beyond the buffer are dropped
// (only stale or unsolicited ones can pile up), so the end of the stream
// is always seen.
func (g *Guest) read(r io.Reader) {
	lr := newLineReader(r)
	for {
		line, ok, err := lr.next()
		if err != nil {
			g.err = err
			close(g.done)
			return
		}
		t4 := (*g.stamp.Load())()
		if !ok {
			g.ignored.Add(1)
			continue
		}
		m, err := ParseLine(line)
		if err != nil || m.Kind != Response {
			g.ignored.Add(1)
			continue
		}
		select {
		case g.answers <- arrival{m: m, t4: t4}:
		default:
			g.ignored.Add(1)
		}
	}
}

// Done is closed when the stream has ended (EOF or a read error).
func (g *Guest) Done() <-chan struct{} { return g.done }

// Err returns why the stream ended (io.EOF for its end), or nil while it
// is still open.
func (g *Guest) Err() error {
	select {
	case <-g.done:
		return g.err
	default:
		return nil
	}
}

// Ignored returns how many lines so far were not answers to this guest
// (noise, other messages, stale answers).
func (g *Guest) Ignored() uint64 { return g.ignored.Load() }

// Estimate makes rounds exchanges with the host and returns the anchor of
// the one with the smallest round trip. It fails if the stream ends, ctx
// is done, a write fails, or an answer does not come within the timeout
// (an error wrapping ErrTimeout).
func (g *Guest) Estimate(ctx context.Context, rounds int) (Anchor, error) {
	return g.estimate(ctx, g.w, g.raw, rounds)
}

func (g *Guest) estimate(ctx context.Context, w io.Writer, raw func() time.Duration, rounds int) (Anchor, error) {
	if rounds < 1 {
		return Anchor{}, fmt.Errorf("ppssync: %d rounds: need at least 1", rounds)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stamp.Store(&raw)
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := g.Err(); err != nil {
		return Anchor{}, fmt.Errorf("ppssync: stream from the host has ended: %w", err)
	}
	g.drain()
	var best Anchor
	valid := 0
	for i := 0; i < rounds; i++ {
		g.seq++
		seq := g.seq
		t1 := raw()
		req := Message{Kind: Request, Seq: seq, T1: int64(t1)}
		if _, err := io.WriteString(w, req.String()+"\n"); err != nil {
			return Anchor{}, fmt.Errorf("ppssync: send request %d: %w", seq, err)
		}
		a, err := g.await(ctx, seq, int64(t1), timeout)
		if err != nil {
			return Anchor{}, err
		}
		s, ok := sample(a.m, t1, a.t4)
		if !ok {
			continue // clocks went backwards: no information
		}
		valid++
		if valid == 1 || s.RTT <= best.RTT {
			best = s
		}
	}
	if valid == 0 {
		return Anchor{}, fmt.Errorf("ppssync: none of %d exchanges was consistent (a clock went backwards)", rounds)
	}
	best.Exchanges = valid
	return best, nil
}

// drain drops answers left over from earlier estimates.
func (g *Guest) drain() {
	for {
		select {
		case <-g.answers:
			g.ignored.Add(1)
		default:
			return
		}
	}
}

// await waits for the answer to request seq sent at t1.
func (g *Guest) await(ctx context.Context, seq uint64, t1 int64, timeout time.Duration) (arrival, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	match := func(a arrival) bool {
		if a.m.Seq == seq && a.m.T1 == t1 {
			return true
		}
		g.ignored.Add(1)
		return false
	}
	for {
		select {
		case a := <-g.answers:
			if match(a) {
				return a, nil
			}
		case <-g.done:
			for { // answers read before the end still count
				select {
				case a := <-g.answers:
					if match(a) {
						return a, nil
					}
				default:
					return arrival{}, fmt.Errorf("ppssync: stream from the host ended before the answer to request %d: %w", seq, g.err)
				}
			}
		case <-timer.C:
			return arrival{}, fmt.Errorf("%w to request %d within %v (%d other lines ignored so far; is the host serving this stream?)",
				ErrTimeout, seq, timeout, g.ignored.Load())
		case <-ctx.Done():
			return arrival{}, ctx.Err()
		}
	}
}

// sample turns one exchange into an anchor at its midpoint; ok is false
// when the stamps are inconsistent (negative round trip or turnaround).
func sample(m Message, t1, t4 time.Duration) (Anchor, bool) {
	up := m.T2 - int64(t1)   // host receive minus guest send
	down := m.T3 - int64(t4) // host send minus guest receive
	turnaround := m.T3 - m.T2
	rtt := int64(t4-t1) - turnaround
	if t4 < t1 || turnaround < 0 || rtt < 0 {
		return Anchor{}, false
	}
	// (up+down)/2 without overflow: both are near the Unix time in ns.
	offset := up + (down-up)/2
	mid := t1 + (t4-t1)/2
	return Anchor{
		Raw:         mid,
		Host:        time.Unix(0, int64(mid)+offset).UTC(),
		Uncertainty: time.Duration((rtt + 1) / 2),
		RTT:         time.Duration(rtt),
	}, true
}

// shared holds the Guest of each stream that Estimate was called on, so
// that calls on the same stream share one reader.
var shared = struct {
	sync.Mutex
	m map[io.Reader]*Guest
}{m: map[io.Reader]*Guest{}}

// Estimate makes rounds exchanges over r and w with raw as the guest's
// clock and returns the anchor of the one with the smallest round trip,
// waiting at most DefaultTimeout for each answer.
//
// The first call on a stream starts a reader that owns r until r ends:
// nothing else may read r. When r is a pointer (an *os.File, an
// *io.PipeReader, ...), later calls on the same r share that reader, so
// Estimate can be called again to resynchronise; other readers get a new
// one each call and so suit a single estimate only. The reader and its
// Guest stay known for the life of the process. Use a Guest to choose
// the timeout, to cancel, or to learn when the stream ends.
func Estimate(r io.Reader, w io.Writer, raw func() time.Duration, rounds int) (Anchor, error) {
	if r == nil || w == nil || raw == nil {
		return Anchor{}, errors.New("ppssync: Estimate needs a reader, a writer and a raw clock")
	}
	return sharedGuest(r, w, raw).estimate(context.Background(), w, raw, rounds)
}

func sharedGuest(r io.Reader, w io.Writer, raw func() time.Duration) *Guest {
	if v := reflect.ValueOf(r); v.Kind() != reflect.Pointer || v.IsNil() {
		return NewGuest(r, w, raw)
	}
	shared.Lock()
	defer shared.Unlock()
	if g, ok := shared.m[r]; ok {
		return g
	}
	g := NewGuest(r, w, raw)
	shared.m[r] = g // kept after the end too: an ended stream stays ended
	return g
}
