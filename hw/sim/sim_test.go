package sim

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/hw/gnss"
	"github.com/aunsorm/timenode/hw/pps"
)

type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

func TestEpochSentencesHaveValidChecksums(t *testing.T) {
	ts := time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC)
	for _, valid := range []bool{true, false} {
		out := string(Epoch(ts, Position{Lat: 41.0082, Lon: -28.9784, Alt: 40}, valid))
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		if len(lines) != 9 {
			t.Fatalf("got %d sentences, want 9 (RMC, GGA, ZDA, 2 GSA, 2+2 GSV): %q", len(lines), out)
		}
		for _, l := range lines {
			star := strings.LastIndexByte(l, '*')
			if l[0] != '$' || star < 0 {
				t.Fatalf("malformed %q", l)
			}
			var sum byte
			for i := 1; i < star; i++ {
				sum ^= l[i]
			}
			if got := l[star+1:]; got != strings.ToUpper(string("0123456789ABCDEF"[sum>>4])+string("0123456789ABCDEF"[sum&15])) {
				t.Fatalf("%q: checksum %s, want %02X", l, got, sum)
			}
		}
		wantRMC := "$GPRMC,090507.00,A,4100.4920,N,02858.7040,W,0.0,0.0,231126,,,A*"
		if !valid {
			wantRMC = "$GPRMC,090507.00,V,"
		}
		if !strings.HasPrefix(lines[0], wantRMC) {
			t.Fatalf("RMC %q, want prefix %q", lines[0], wantRMC)
		}
		if !strings.HasPrefix(lines[2], "$GPZDA,090507.00,23,11,2026,00,00*") {
			t.Fatalf("ZDA %q", lines[2])
		}
	}
}

func TestPPSEdgesAtTrueSecondsOnLocalClock(t *testing.T) {
	osc := clocktest.NewOscillator(hostClock{}, clocktest.OscillatorConfig{InitialOffset: 3 * time.Millisecond})
	p := NewPPS(hostClock{}, osc, PPSConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var prev pps.Pulse
	for i := 0; i < 2; i++ {
		pl, err := p.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Local = true second + 3 ms exactly (no noise, no frequency error).
		if frac := pl.Local.Sub(pl.Local.Truncate(time.Second)); frac != 3*time.Millisecond {
			t.Fatalf("edge %d at local %v, want 3ms past the second", i, pl.Local)
		}
		if i > 0 && (pl.Seq != prev.Seq+1 || pl.Local.Sub(prev.Local) != time.Second) {
			t.Fatalf("edges %+v then %+v, want consecutive seconds", prev, pl)
		}
		prev = pl
	}
	p.SetEnabled(false)
	if _, err := p.Fetch(ctx); err != pps.ErrTimeout {
		t.Fatalf("disabled PPS: err %v, want ErrTimeout", err)
	}
}

func TestReceiverWritesAfterTheSecond(t *testing.T) {
	var buf syncBuffer
	r := NewReceiver(&buf, hostClock{}, ReceiverConfig{Delay: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2300*time.Millisecond)
	defer cancel()
	_ = r.Run(ctx)
	n := strings.Count(buf.String(), "$GPRMC")
	if n < 2 || n > 3 {
		t.Fatalf("got %d epochs in 2.3 s, want 2 or 3", n)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// TestEpochSky: the receiver view the gnss package builds from the
// simulated sentences is the simulated sky: 8 GPS and 5 Galileo in view,
// those above 15° used, a 3D fix; without a fix nothing is tracked or
// used. Run reports the antenna first and again when the fix changes.
func TestEpochSky(t *testing.T) {
	ts := time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC)
	tests := []struct {
		name                        string
		valid                       bool
		fix                         gnss.FixType
		gpsTracked, gpsUsed, gaUsed int
		used                        int
	}{
		{"fix", true, gnss.Fix3D, 8, 6, 4, 10},
		{"no fix", false, gnss.FixNone, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k gnss.Sky
			p := gnss.NewParser()
			for _, l := range strings.Split(strings.TrimSuffix(string(Epoch(ts, Position{Lat: 41, Lon: 29, Alt: 40}, tc.valid)), "\r\n"), "\r\n") {
				s, err := p.Parse([]byte(l))
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				k.Add(s, ts)
			}
			v := k.View(ts)
			gps, ga := v.Constellation(gnss.GPS), v.Constellation(gnss.Galileo)
			if gps.InView != 8 || ga.InView != 5 || gps.Tracked != tc.gpsTracked || gps.Used != tc.gpsUsed || ga.Used != tc.gaUsed {
				t.Errorf("GPS %+v Galileo %+v", gps, ga)
			}
			if v.FixType != tc.fix || v.SatellitesUsed != tc.used || v.Counts.GSVGroups != 2 || len(v.Counts.Malformed) != 0 {
				t.Errorf("fix %v used %d counts %+v, want %v %d, 2 groups", v.FixType, v.SatellitesUsed, v.Counts, tc.fix, tc.used)
			}
		})
	}
}

func TestReceiverReportsAntenna(t *testing.T) {
	var buf syncBuffer
	r := NewReceiver(&buf, hostClock{}, ReceiverConfig{Delay: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	count := func(s string) int { return strings.Count(buf.String(), s) }
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s in %q", what, buf.String())
			}
		}
	}
	wait("second epoch", func() bool { return count("$GPRMC") >= 2 })
	r.SetFix(false)
	wait("OPEN", func() bool { return count("ANTSTATUS=OPEN") == 1 })
	r.SetFix(true)
	wait("OK again", func() bool { return count("ANTSTATUS=OK") == 2 })
	cancel()
	<-done
	if n := count("ANTSTATUS"); n != 3 {
		t.Errorf("%d antenna reports, want 3 (start, lost, back): %q", n, buf.String())
	}
}
