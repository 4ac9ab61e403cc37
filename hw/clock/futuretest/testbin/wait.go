package testbin

import (
	"os"
	"strconv"
	"time"
)

// The future-dated guests run every package's tests under TCG, often an
// order of magnitude slower than a host and slower still when the host is
// shared: a wait that is generous on a host (a daemon locking within a
// minute) can run out there without anything being wrong. The guest sets
// ScaleEnv; a test's assertions stay the same, only how long it waits for
// them changes.

// ScaleEnv names the environment variable holding the factor (an
// integer from 1 to 100) by which waits are multiplied.
const ScaleEnv = "TIMENODE_TEST_WAIT_SCALE"

// Wait returns d scaled by the factor in ScaleEnv; d itself when the
// variable is unset or not a factor from 1 to 100.
func Wait(d time.Duration) time.Duration {
	n, err := strconv.Atoi(os.Getenv(ScaleEnv))
	if err != nil || n < 1 || n > 100 {
		return d
	}
	return d * time.Duration(n)
}

// Emulated reports whether the tests run on an emulated CPU (the guest
// sets a wait factor above 1): there timestamps taken in user space jitter
// by milliseconds, which a test whose subject is timing noise must know.
func Emulated() bool {
	n, err := strconv.Atoi(os.Getenv(ScaleEnv))
	return err == nil && n > 1 && n <= 100
}
