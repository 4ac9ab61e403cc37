package netsvc

import (
	"context"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/timing"
)

// AgentReply is what a HAProxy agent-check gets from the node: "down"
// when it may not serve time, "drain" in holdover (finish, send no new
// clients), else "up" with a weight that falls as the error bound grows,
// so a load balancer prefers the most accurate of several nodes.
func AgentReply(clk clock.Clock, ts TimingSource) string {
	now := clk.Now()
	st := ts.Status()
	if !servable(ts, st, now) {
		return "down\n"
	}
	if st.State == timing.Holdover {
		return "drain\n"
	}
	return fmt.Sprintf("up %d%%\n", agentWeight(publishedBound(ts, st, now)))
}

// agentWeight is 100 at or under 10 µs and falls by a quarter for every
// doubling of the bound above that, never below 1.
func agentWeight(bound time.Duration) int {
	const full = 10 * time.Microsecond
	if bound <= full {
		return 100
	}
	w := 100 * math.Pow(0.75, math.Log2(float64(bound)/float64(full)))
	return max(1, int(math.Round(w)))
}

// ServeAgent answers HAProxy agent checks on ln until ctx is done: one
// line per connection, then close.
func ServeAgent(ctx context.Context, ln net.Listener, clk clock.Clock, ts TimingSource) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("netsvc: agent-check accept: %w", err)
		}
		go func() {
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write([]byte(AgentReply(clk, ts)))
		}()
	}
}
