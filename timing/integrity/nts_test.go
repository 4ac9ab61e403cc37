package integrity

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeQuerier answers with a fixed sample or error.
type fakeQuerier struct {
	s   NTPSample
	err error
}

func (f fakeQuerier) QueryNTP(context.Context) (NTPSample, error) { return f.s, f.err }

var _ NTPQuerier = fakeQuerier{}

func TestNTSWitness(t *testing.T) {
	at := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC) // injected: nothing reads the host clock
	down := errors.New("down")
	tests := []struct {
		name    string
		w       NTSWitness
		want    Measurement
		wantErr bool
	}{
		{"root distance plus half the round trip",
			NTSWitness{Addr: "nts.example:4460", Querier: fakeQuerier{s: NTPSample{Received: at, Offset: -3 * time.Millisecond,
				Delay: 800 * time.Microsecond, RootDelay: 2 * time.Millisecond, RootDispersion: 150 * time.Microsecond}}},
			Measurement{Witness: "nts.example:4460", At: at, Offset: -3 * time.Millisecond,
				Uncertainty: time.Millisecond + 150*time.Microsecond + 400*time.Microsecond}, false},
		{"odd nanoseconds round up",
			NTSWitness{Label: "ptb", Addr: "ptb.example:4460", Querier: fakeQuerier{s: NTPSample{Received: at, Offset: 5, Delay: 3, RootDelay: 1}}},
			Measurement{Witness: "ptb", At: at, Offset: 5, Uncertainty: 1 + 2}, false},
		{"query fails", NTSWitness{Addr: "a:1", Querier: fakeQuerier{err: down}}, Measurement{}, true},
		{"negative delay", NTSWitness{Addr: "a:1", Querier: fakeQuerier{s: NTPSample{Received: at, Delay: -1}}}, Measurement{}, true},
		{"no querier", NTSWitness{Addr: "a:1"}, Measurement{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.w.Measure(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestNTSWitnessQuorum: two NTS witnesses that agree with each other
// and place true time 2 ms ahead of a node claiming ±100 µs decide
// against the node, as two Roughtime witnesses would.
func TestNTSWitnessQuorum(t *testing.T) {
	at := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	var ms []Measurement
	for i, name := range []string{"a:4460", "b:4460"} {
		w := NTSWitness{Addr: name, Querier: fakeQuerier{s: NTPSample{Received: at,
			Offset: 2*time.Millisecond + time.Duration(i)*50*time.Microsecond, Delay: 200 * time.Microsecond, RootDispersion: 50 * time.Microsecond}}}
		m, err := w.Measure(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	res, evs := CheckWitnesses(at, 100*time.Microsecond, ms, WitnessConfig{})
	if res.Verdict != WitnessDisagree || len(evs) != 1 || evs[0].Reason != ReasonQuorumDisagrees {
		t.Fatalf("verdict %v, evidence %+v", res.Verdict, evs)
	}
}
