package provision

import (
	"os"
	"path/filepath"
	"time"

	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/timing/leap"
)

// checkLeap checks the leap-seconds.list of a bundle or generation, if it
// has one, as the daemon loads it: an IETF leap-seconds.list whose #h
// hash matches its data (leap.Parse, the daemon's parser), not expired at
// c.Now (the node would announce no leap second decided since).
func checkLeap(c Config, files map[string][]byte, r *Report) {
	b, ok := files[site.LeapSeconds]
	if !ok {
		return
	}
	s, err := leap.Parse(b)
	if err != nil {
		r.problem(site.LeapSeconds, "%v: put the list in the bundle exactly as IERS publishes it", err)
		return
	}
	if s.Expired(c.Now) {
		r.problem(site.LeapSeconds, "expired on %s (checked at %s): get the current list (IERS publishes a new one every six months)",
			isoDay(s.Expires), c.Now.UTC().Format(time.RFC3339))
		return
	}
	last := s.Entries[len(s.Entries)-1]
	r.ok(site.LeapSeconds, "leap second list updated %s, expires %s (%s left), TAI−UTC %d s since %s",
		isoDay(s.Updated), isoDay(s.Expires), days(s.Expires.Sub(c.Now)), last.TAIOffset, isoDay(last.Start))
}

// inUse is a leap second list the node has, and where it is.
type inUse struct {
	where string
	sched *leap.Schedule
}

// keepLeap compares a bundle's leap second list with the lists the node
// has: the current generation's, which the daemon uses, and the image's
// (c.LeapSeconds), which it falls back to. A bundle's list that expires
// before either would make the node's list older, and is refused. A
// bundle without a list keeps the installed one while that is current
// and expires after the image's (the operator need not carry it in every
// bundle); otherwise the daemon goes back to the image's list.
func keepLeap(c Config, files map[string][]byte, r *Report) {
	var have []inUse
	installed, gen := installedLeap(c)
	if installed != nil {
		have = append(have, inUse{"the installed list (generation " + gen + ")", installed})
	}
	image, _ := leap.Load(c.LeapSeconds) // absent or unusable: nothing to compare with
	if image != nil {
		have = append(have, inUse{"the image's list " + c.LeapSeconds, image})
	}
	b, ok := files[site.LeapSeconds]
	if !ok {
		if installed == nil {
			return
		}
		if !installed.Expired(c.Now) && (image == nil || installed.Expires.After(image.Expires)) {
			raw, err := os.ReadFile(filepath.Join(c.State, site.GensDir, gen, site.LeapSeconds))
			if err == nil {
				files[site.LeapSeconds] = raw
				r.warn(site.LeapSeconds, "not in the bundle: the installed list (generation %s, expires %s) is kept", gen, isoDay(installed.Expires))
				return
			}
		}
		r.warn(site.LeapSeconds, "not in the bundle: the installed list (generation %s, expires %s) is dropped and the node uses %s", gen, isoDay(installed.Expires), imageDesc(c, image))
		return
	}
	s, err := leap.Parse(b)
	if err != nil {
		return // checkLeap says why
	}
	for _, h := range have {
		if s.Expires.Before(h.sched.Expires) {
			r.problem(site.LeapSeconds, "expires %s, before %s (expires %s): the node would go back to an older list; put the newer list in the bundle, or leave the file out",
				isoDay(s.Expires), h.where, isoDay(h.sched.Expires))
		}
	}
}

// installedLeap is the current generation's leap second list, nil if it
// has none (or none that parses: checking a bundle, that is no reason to
// refuse it).
func installedLeap(c Config) (*leap.Schedule, string) {
	gen, err := current(c.State)
	if err != nil || gen == "" {
		return nil, ""
	}
	s, err := leap.Load(filepath.Join(c.State, site.GensDir, gen, site.LeapSeconds))
	if err != nil {
		return nil, ""
	}
	return s, gen
}

func imageDesc(c Config, image *leap.Schedule) string {
	if image == nil {
		return "no list (" + c.LeapSeconds + " is missing or unusable)"
	}
	return "the image's " + c.LeapSeconds + " (expires " + isoDay(image.Expires) + ")"
}

// isoDay is a date as the lists' comments write it.
func isoDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }
