package ntp

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
)

func TestServerHeader(t *testing.T) {
	gps := [4]byte{'G', 'P', 'S', 0}
	ref := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	req := Header{Version: 3, Mode: ModeClient, Poll: 7, TxTime: 0xabcdef}
	tests := []struct {
		name        string
		st          Status
		wantLeap    uint8
		wantStratum uint8
		wantRefID   [4]byte
		wantPrec    int8
	}{
		{"locked", Status{Synchronized: true, Stratum: 1, RefID: gps, RefTime: ref}, LeapNoWarning, 1, gps, -22},
		{"stratum 0 means 1", Status{Synchronized: true, RefID: gps}, LeapNoWarning, 1, gps, -22},
		// RFC 5905 §7.3: above stratum 1 the reference id is an address
		// (IPv4) or the start of its MD5 (IPv6), never a reference code.
		{"configured stratum 2: local pseudo-address", Status{Synchronized: true, Stratum: 2, RefID: gps}, LeapNoWarning, 2, LocalRefID, -22},
		{"stratum 3 with a named upstream", Status{Synchronized: true, Stratum: 3, RefID: gps, UpstreamRefID: [4]byte{192, 0, 2, 7}}, LeapNoWarning, 3, [4]byte{192, 0, 2, 7}, -22},
		{"stratum 1 ignores the upstream", Status{Synchronized: true, Stratum: 1, RefID: gps, UpstreamRefID: [4]byte{192, 0, 2, 7}}, LeapNoWarning, 1, gps, -22},
		{"leap insert", Status{Synchronized: true, Stratum: 1, RefID: gps, Leap: clock.LeapInsert}, LeapAddSecond, 1, gps, -22},
		{"leap delete", Status{Synchronized: true, Stratum: 1, RefID: gps, Leap: clock.LeapDelete}, LeapDelSecond, 1, gps, -22},
		{"status precision wins", Status{Synchronized: true, Stratum: 1, RefID: gps, Precision: -18}, LeapNoWarning, 1, gps, -18},
		{"unsynchronized", Status{Synchronized: false, Stratum: 1, RefID: gps, Leap: clock.LeapInsert}, LeapAlarm, 0, KissInit, -22},
		{"stratum 16 is unsynchronized", Status{Synchronized: true, Stratum: 16, RefID: gps}, LeapAlarm, 0, KissInit, -22},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ServerHeader(&req, &tc.st, -22, 100, 200)
			if got.Leap != tc.wantLeap || got.Stratum != tc.wantStratum || got.RefID != tc.wantRefID || got.Precision != tc.wantPrec {
				t.Errorf("leap %d stratum %d refid %q precision %d, want %d %d %q %d",
					got.Leap, got.Stratum, got.RefID, got.Precision, tc.wantLeap, tc.wantStratum, tc.wantRefID, tc.wantPrec)
			}
			if got.Version != 3 || got.Mode != ModeServer || got.Poll != 7 {
				t.Errorf("version %d mode %d poll %d, want 3 4 7", got.Version, got.Mode, got.Poll)
			}
			if got.OrigTime != req.TxTime || got.RxTime != 100 || got.TxTime != 200 {
				t.Errorf("timestamps org %#x rx %d tx %d, want %#x 100 200", got.OrigTime, got.RxTime, got.TxTime, req.TxTime)
			}
			if got.RootDelay != 0 {
				t.Errorf("root delay %d, want 0", got.RootDelay)
			}
		})
	}
}

func TestServerHeaderRootDispersionAndRefTime(t *testing.T) {
	ref := time.Date(2026, 11, 23, 10, 0, 0, 250_000_000, time.UTC)
	st := Status{Synchronized: true, RefTime: ref, RootDispersion: 1500 * time.Microsecond}
	got := ServerHeader(&Header{Version: 4}, &st, -20, 1, 2)
	if want := ShortFromDuration(1500 * time.Microsecond); got.RootDispersion != want || want == 0 {
		t.Errorf("root dispersion %d, want %d", got.RootDispersion, want)
	}
	if back := got.RefTime.Time(ref); !back.Equal(ref) {
		t.Errorf("reference time %v, want %v", back, ref)
	}
}

func TestKoDHeader(t *testing.T) {
	req := Header{Version: 4, Mode: ModeClient, Poll: 4, TxTime: 0x1234}
	got := KoDHeader(&req, KissRate)
	want := Header{Leap: LeapAlarm, Version: 4, Mode: ModeServer, Poll: 4, RefID: KissRate,
		OrigTime: 0x1234, RxTime: 0x1234, TxTime: 0x1234}
	if got != want {
		t.Errorf("KoDHeader() = %+v, want %+v", got, want)
	}
}

func TestMeasurePrecision(t *testing.T) {
	tests := []struct {
		name    string
		clk     clock.Clock
		wantMin int8
		wantMax int8
	}{
		{"host clock", offsetClock{}, -32, -10},
		{"10 ms ticks", tickClock{tick: 10 * time.Millisecond, n: new(atomic.Int64)}, -6, -6},
		{"frozen", frozenClock{}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MeasurePrecision(tc.clk); got < tc.wantMin || got > tc.wantMax {
				t.Errorf("MeasurePrecision() = %d, want %d..%d", got, tc.wantMin, tc.wantMax)
			}
		})
	}
}

func TestRefIDFromAddress(t *testing.T) {
	tests := []struct {
		addr string
		want [4]byte
	}{
		{"192.0.2.7", [4]byte{192, 0, 2, 7}},
		{"::ffff:192.0.2.7", [4]byte{192, 0, 2, 7}}, // an IPv4 address however written
		// The first four octets of MD5 over the 16 address bytes:
		// md5(2001:db8::1) = 39ab9b37...
		{"2001:db8::1", [4]byte{0x39, 0xab, 0x9b, 0x37}},
	}
	for _, tc := range tests {
		got, err := RefIDFromAddress(tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("RefIDFromAddress(%q) = %x, %v; want %x", tc.addr, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "ntp.example", "300.1.1.1", "0.0.0.0", "::"} {
		if _, err := RefIDFromAddress(bad); err == nil {
			t.Errorf("RefIDFromAddress(%q) accepted", bad)
		}
	}
}
