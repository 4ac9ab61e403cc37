package ntp

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// RateLimit configures per-client rate limiting. The zero value disables it.
type RateLimit struct {
	// Interval is the mean interval a client may keep up between
	// requests; 0 disables rate limiting.
	Interval time.Duration
	// Burst is how many requests a client may send back to back before
	// limiting starts; values below 1 mean 1.
	Burst int
	// KoDInterval is the least time between two KoD RATE replies to one
	// client; requests over the limit in between are dropped silently.
	// 0 means Interval * Burst.
	KoDInterval time.Duration
	// Clients is the size of the client table, rounded up to a power of
	// two; 0 means 65536. A new client takes the place of one that is not
	// being limited; a client being limited keeps its place, and a new
	// client that finds no place is answered without being recorded.
	Clients int
}

// DefaultRateLimit suits ordinary NTP clients: iburst sends 4 to 8 requests
// two seconds apart and the fastest regular poll is 16 s, so a sustained one
// request per second with a burst of 16 never limits a well-behaved client.
var DefaultRateLimit = RateLimit{Interval: time.Second, Burst: 16, KoDInterval: 4 * time.Second}

type verdict uint8

const (
	verdictAllow verdict = iota
	verdictKoD
	verdictDrop
)

// clientKey is a source address in 16-byte form (IPv4 as v4-mapped IPv6).
type clientKey [16]byte

type clientEntry struct {
	key     clientKey
	tat     int64 // theoretical arrival time, ns on the limiter's clock
	lastKoD int64
	used    bool
}

const limiterShards = 256

// limiter is a generic cell rate algorithm per client over a fixed-size
// hash table, safe for concurrent use by the workers. It never allocates
// after construction.
type limiter struct {
	interval  int64
	tolerance int64
	kod       int64
	mask      uint64
	seed      maphash.Seed
	shards    [limiterShards]struct {
		sync.Mutex
		_ [56]byte // keep shard locks on separate cache lines
	}
	entries []clientEntry
}

// newLimiter returns nil when cfg disables rate limiting.
func newLimiter(cfg RateLimit) *limiter {
	if cfg.Interval <= 0 {
		return nil
	}
	burst := max(cfg.Burst, 1)
	kod := cfg.KoDInterval
	if kod <= 0 {
		kod = cfg.Interval * time.Duration(burst)
	}
	n := cfg.Clients
	if n <= 0 {
		n = 1 << 16
	}
	size := 1
	for size < n {
		size <<= 1
	}
	size = max(size, limiterShards)
	return &limiter{
		interval:  int64(cfg.Interval),
		tolerance: int64(cfg.Interval) * int64(burst-1),
		kod:       int64(kod),
		mask:      uint64(size - 1),
		seed:      maphash.MakeSeed(),
		entries:   make([]clientEntry, size),
	}
}

// check records a request from key at now (monotonic nanoseconds) and says
// whether to answer it, answer it with a KoD RATE, or drop it.
//
// A client lives in one of two entries (idx and idx^limiterShards, under
// the same shard lock). A newcomer takes an entry that is free or whose
// client has paid off all its debt (forgetting such a client changes
// nothing); a client still being limited is never evicted, else a stream
// of new addresses (a busy public server has far more clients than
// entries) would hand it a fresh burst every time its entry was reused.
// When both entries hold limited clients the newcomer is answered without
// being recorded.
func (l *limiter) check(key *clientKey, now int64) verdict {
	idx := maphash.Bytes(l.seed, key[:]) & l.mask
	sh := &l.shards[idx%limiterShards]
	sh.Lock()
	defer sh.Unlock()
	e := l.find(key, idx, now)
	if e == nil {
		return verdictAllow
	}
	if e.tat < now {
		e.tat = now
	}
	if e.tat-now > l.tolerance {
		if now-e.lastKoD >= l.kod {
			e.lastKoD = now
			return verdictKoD
		}
		return verdictDrop
	}
	e.tat += l.interval
	return verdictAllow
}

// find returns key's entry, making one if an entry of its pair can be
// taken, or nil.
func (l *limiter) find(key *clientKey, idx uint64, now int64) *clientEntry {
	a, b := &l.entries[idx], &l.entries[idx^limiterShards&l.mask]
	for _, e := range [2]*clientEntry{a, b} {
		if e.used && e.key == *key {
			return e
		}
	}
	for _, e := range [2]*clientEntry{a, b} {
		if !e.used || e.tat <= now {
			*e = clientEntry{key: *key, tat: now, lastKoD: math.MinInt64 / 2, used: true}
			return e
		}
	}
	return nil
}
