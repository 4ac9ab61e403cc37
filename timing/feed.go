package timing

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aunsorm/timenode/hw/pps"
)

// FeedPulses reads src until ctx is done and sends each edge to out.
// Timeouts are normal (no signal); other errors are logged once per change
// and retried after a pause, so a flaky PPS line never stops the daemon.
func FeedPulses(ctx context.Context, src pps.Source, out chan<- pps.Pulse, log *slog.Logger) {
	var lastErr string
	for ctx.Err() == nil {
		p, err := src.Fetch(ctx)
		switch {
		case err == nil:
			lastErr = ""
			select {
			case out <- p:
			case <-ctx.Done():
				return
			}
		case errors.Is(err, pps.ErrTimeout):
		case ctx.Err() != nil:
			return
		default:
			if err.Error() != lastErr {
				log.Warn("pps fetch failed", "component", "pps", "err", err)
				lastErr = err.Error()
			}
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
	}
}
