package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/timing/integrity"
	"github.com/aunsorm/timenode/timing/leap"
)

// leapList picks the leap second list of one material set: the site
// generation's leap-seconds.list when it has one, else --leap-seconds
// (the image's tzdata). The site's list was checked by `timenodectl
// provision`; one that no longer reads or verifies refuses the set as any
// other bad site file does. The image's list is taken leniently, as
// always: without it the node serves, says so, and announces no leap.
func leapList(cfg *config, gen string, log *slog.Logger) (path string, sched *leap.Schedule, err error) {
	if gen != "" {
		path = filepath.Join(gen, site.LeapSeconds)
		b, err := keyfile.ReadRegular(path)
		switch {
		case err == nil:
			if sched, err = leap.Parse(b); err != nil {
				return "", nil, fmt.Errorf("leap second list %s: %w", path, err)
			}
			return path, sched, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", nil, fmt.Errorf("leap second list: %w", err)
		}
	}
	return cfg.leapFile, loadLeapList(cfg.leapFile, log), nil
}

// loadLeapList reads the image's leap second list. Without one the node
// still serves, says so in the log, /health and metrics, and announces
// no leap it does not know of.
func loadLeapList(path string, log *slog.Logger) *leap.Schedule {
	if path == "" {
		log.Warn("no leap second list configured: leap seconds will not be announced")
		return nil
	}
	sched, err := leap.Load(path)
	if err != nil {
		log.Warn("leap second list unusable: leap seconds will not be announced", "path", path, "err", err)
		return nil
	}
	return sched
}

// leapInUse is the leap second list the daemon runs with: the discipline
// publishes from it (TAI−UTC, the leap indicator, "expired" in /health
// and timenode_leap_list_expired), and the integrity guard checks the
// receiver's GPS−UTC against it. A reload replaces it for both.
type leapInUse struct {
	disc  interface{ SetLeap(*leap.Schedule) } // nil until the discipline exists
	site  bool                                 // the appliance: fresh lists come in site bundles
	sched atomic.Pointer[leap.Schedule]
}

var _ integrity.LeapTable = (*leapInUse)(nil)

// GPSMinusUTC implements integrity.LeapTable from the list in use.
func (l *leapInUse) GPSMinusUTC(utc time.Time) (int, bool) {
	return integrity.ScheduleTable{Schedule: l.sched.Load()}.GPSMinusUTC(utc)
}

// use makes sched (read from path) the list in use and logs which it is.
func (l *leapInUse) use(path string, sched *leap.Schedule, now time.Time, log *slog.Logger) {
	l.sched.Store(sched)
	if l.disc != nil {
		l.disc.SetLeap(sched)
	}
	if sched == nil {
		return // loadLeapList said why
	}
	log.Info("leap second list loaded", "path", path, "updated", sched.Updated.Format(time.DateOnly), "expires", sched.Expires.Format(time.DateOnly))
	if sched.Expired(now) {
		fix := "update tzdata, or pass a current list with --leap-seconds"
		if l.site {
			fix = "put a current " + site.LeapSeconds + " in the next site bundle (docs/runbooks/LeapListExpired.md)"
		}
		log.Warn("leap second list has expired: "+fix, "path", path, "expired", sched.Expires.Format(time.DateOnly))
	}
}
