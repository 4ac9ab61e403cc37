package ntp

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// recordingClock reads as base plus one microsecond per read, and logs
// each read, and each sendmmsg the server reports, in the order they
// happen. A reply's transmit timestamp then names the read it came from.
type recordingClock struct {
	mu     sync.Mutex
	reads  int
	events []sendEvent
}

// sendEvent is a clock read (read ≥ 0) or a sendmmsg of sent replies.
type sendEvent struct{ read, sent int }

var recordingBase = time.Unix(1_800_000_000, 0)

func (c *recordingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	c.events = append(c.events, sendEvent{read: c.reads, sent: -1})
	return recordingBase.Add(time.Duration(c.reads) * time.Microsecond)
}

func (c *recordingClock) sent(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, sendEvent{read: -1, sent: n})
}

// waitSent returns the events once sends of n replies are logged, or
// what is logged after within.
func (c *recordingClock) waitSent(n int, within time.Duration) []sendEvent {
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		sent := 0
		for _, e := range c.events {
			sent += max(e.sent, 0)
		}
		events := slices.Clone(c.events)
		c.mu.Unlock()
		if sent >= n || time.Now().After(deadline) {
			return events
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServeStampsEachSendGroup checks that the worker reads a reply's
// transmit time just before the sendmmsg that carries it, not before the
// whole batch is sent, and that a batch goes out in groups of SendBatch.
// Nothing is timed: the clock logs its reads and the server its sends, so
// each group of k replies must carry, in order, the k reads right before
// its sendmmsg. Reads that no reply carries are the worker's offset
// measurement at the start of each received batch; within a batch every
// group but the last has SendBatch replies.
func TestServeStampsEachSendGroup(t *testing.T) {
	const n = 12
	for _, sendBatch := range []int{1, 4, 5, 32} {
		t.Run(fmt.Sprint("send batch ", sendBatch), func(t *testing.T) {
			clk := &recordingClock{}
			s, err := NewServer(Config{Addr: "127.0.0.1:0", Workers: 1, Batch: 32, SendBatch: sendBatch},
				clk, lockedStatus, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Listen(); err != nil {
				t.Fatal(err)
			}
			clk.mu.Lock()
			clk.events = nil // NewServer's precision measurement
			clk.mu.Unlock()
			s.sent = clk.sent
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Queued before the worker starts, so that its first recvmmsg
			// usually takes them all; the check holds either way.
			for i := range n {
				req := make([]byte, HeaderLen)
				req[0] = 4<<3 | ModeClient
				binary.BigEndian.PutUint64(req[40:], uint64(i+1))
				if _, err := c.WriteTo(req, s.Addr()); err != nil {
					t.Fatal(err)
				}
			}
			testbin.Serve(t, "server", s.Serve)

			stamp := make([]int, n) // the read each reply's transmit time came from
			buf := make([]byte, 1500)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for range n {
				m, _, err := c.ReadFromUDP(buf)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if m < HeaderLen {
					t.Fatalf("reply of %d bytes", m)
				}
				i := int(binary.BigEndian.Uint64(buf[24:32])) - 1
				if i < 0 || i >= n {
					t.Fatalf("reply to request %d", i)
				}
				tx := Timestamp(binary.BigEndian.Uint64(buf[40:48])).Time(recordingBase)
				stamp[i] = int(tx.Sub(recordingBase).Round(time.Microsecond) / time.Microsecond)
			}
			// A reply arrives inside the sendmmsg that carries it, so the
			// worker reports the last send just after the client has it.
			events := clk.waitSent(n, 10*time.Second)

			carried := map[int]bool{}
			for _, r := range stamp {
				carried[r] = true
			}
			next := 0       // the next reply to be sent, in request order
			inBatch := 0    // replies sent since the last received batch began
			var sizes []int // group sizes of the current received batch
			var batches [][]int
			for p, e := range events {
				switch {
				case e.read >= 0 && !carried[e.read]:
					// The offset measurement of a new received batch.
					if inBatch > 0 {
						batches = append(batches, sizes)
						sizes, inBatch = nil, 0
					}
				case e.sent >= 0:
					k := e.sent
					if k > sendBatch || next+k > n || p < k {
						t.Fatalf("sendmmsg of %d replies after %d of %d sent (send batch %d); events %v", k, next, n, sendBatch, events)
					}
					var before []int
					for _, b := range events[p-k : p] {
						before = append(before, b.read)
					}
					if want := stamp[next : next+k]; !slices.Equal(before, want) {
						t.Fatalf("replies %d-%d carry reads %v; the %d events before their sendmmsg are reads %v (-1: a send)",
							next, next+k-1, want, k, before)
					}
					next += k
					inBatch += k
					sizes = append(sizes, k)
				}
			}
			if inBatch > 0 {
				batches = append(batches, sizes)
			}
			if next != n {
				t.Fatalf("%d of %d replies reported sent", next, n)
			}
			for _, sz := range batches {
				for i, k := range sz {
					if i < len(sz)-1 && k != sendBatch {
						t.Errorf("groups %v in one received batch: want %d in each but the last", sz, sendBatch)
						break
					}
				}
			}
			t.Logf("groups per received batch: %v", batches)
		})
	}
}
