package netsvc

import (
	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/hw/pps"
	"github.com/aunsorm/timenode/netsvc/ntp"
)

// NTPStatus adapts the discipline's status to what the NTP server
// publishes: synchronized only while servable, reference id PPS (GPS for a
// user-space GPIO pulse, whose timestamps are much coarser), root
// dispersion from the published error bound at the moment of the reply.
// upstream is the reference id published above stratum 1 (zero: the
// server's local pseudo-address).
func NTPStatus(clk clock.Clock, ts TimingSource, upstream [4]byte) func() ntp.Status {
	return func() ntp.Status {
		now := clk.Now()
		st := ts.Status()
		refID := [4]byte{'P', 'P', 'S', 0}
		if st.PulseQuality == pps.QualityGPIO {
			refID = [4]byte{'G', 'P', 'S', 0}
		}
		return ntp.Status{
			Synchronized:   servable(ts, st, now),
			Stratum:        st.Stratum,
			RefID:          refID,
			UpstreamRefID:  upstream,
			RefTime:        st.Updated,
			RootDispersion: publishedBound(ts, st, now),
			Leap:           st.Leap,
		}
	}
}
