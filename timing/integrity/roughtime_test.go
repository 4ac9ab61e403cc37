package integrity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeRoughtime answers with a fixed sample or error.
type fakeRoughtime struct {
	s   RoughtimeSample
	err error
}

func (f fakeRoughtime) QueryRoughtime(context.Context) (RoughtimeSample, error) { return f.s, f.err }

func TestRoughtimeWitnessMeasure(t *testing.T) {
	at := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		w       RoughtimeWitness
		want    Measurement
		wantErr string
	}{
		{"radius plus half the round trip", RoughtimeWitness{Addr: "rt:2002", Querier: fakeRoughtime{s: RoughtimeSample{
			Received: at, Offset: -3 * time.Millisecond, Radius: 5 * time.Microsecond, RTT: 200 * time.Microsecond}}},
			Measurement{Witness: "rt:2002", At: at, Offset: -3 * time.Millisecond, Uncertainty: 105 * time.Microsecond}, ""},
		{"an odd round trip rounds up", RoughtimeWitness{Label: "rt1", Addr: "rt:2002", Querier: fakeRoughtime{s: RoughtimeSample{
			Received: at, Radius: time.Second, RTT: 3}}},
			Measurement{Witness: "rt1", At: at, Uncertainty: time.Second + 2}, ""},
		{"no querier", RoughtimeWitness{Addr: "rt:2002"}, Measurement{}, "without a querier"},
		{"the query fails", RoughtimeWitness{Querier: fakeRoughtime{err: errors.New("signature did not verify")}}, Measurement{}, "did not verify"},
		{"negative radius", RoughtimeWitness{Querier: fakeRoughtime{s: RoughtimeSample{Received: at, Radius: -1}}}, Measurement{}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.w.Measure(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || m != tc.want {
				t.Fatalf("got %+v, %v; want %+v", m, err, tc.want)
			}
		})
	}
}
