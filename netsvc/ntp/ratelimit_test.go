package ntp

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	a := clientKey{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 1}
	b := clientKey{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 2}
	cfg := RateLimit{Interval: time.Second, Burst: 3, KoDInterval: 5 * time.Second}
	type step struct {
		key  clientKey
		at   time.Duration
		want verdict
	}
	tests := []struct {
		name  string
		cfg   RateLimit
		steps []step
	}{
		{"burst then KoD then drop", cfg, []step{
			{a, 0, verdictAllow}, {a, 0, verdictAllow}, {a, 0, verdictAllow},
			{a, 0, verdictKoD}, {a, 10 * time.Millisecond, verdictDrop}, {a, 20 * time.Millisecond, verdictDrop},
		}},
		{"clients are independent", cfg, []step{
			{a, 0, verdictAllow}, {a, 0, verdictAllow}, {a, 0, verdictAllow}, {a, 0, verdictKoD},
			{b, 0, verdictAllow}, {b, 0, verdictAllow},
		}},
		{"steady rate at the interval never limits", cfg, []step{
			{a, 0, verdictAllow}, {a, time.Second, verdictAllow}, {a, 2 * time.Second, verdictAllow},
			{a, 3 * time.Second, verdictAllow}, {a, 4 * time.Second, verdictAllow}, {a, 5 * time.Second, verdictAllow},
		}},
		{"recovers after slowing down", cfg, []step{
			{a, 0, verdictAllow}, {a, 0, verdictAllow}, {a, 0, verdictAllow}, {a, 0, verdictKoD},
			{a, 1500 * time.Millisecond, verdictAllow},
		}},
		{"second KoD after KoD interval", cfg, []step{
			{a, 0, verdictAllow}, {a, 0, verdictAllow}, {a, 0, verdictAllow}, {a, 0, verdictKoD},
			{a, time.Second, verdictAllow}, {a, time.Second, verdictDrop},
			{a, 5 * time.Second, verdictAllow}, {a, 5 * time.Second, verdictAllow}, {a, 5 * time.Second, verdictAllow},
			{a, 5 * time.Second, verdictKoD},
		}},
		{"burst 1 default KoD interval", RateLimit{Interval: time.Second}, []step{
			{a, 0, verdictAllow}, {a, 100 * time.Millisecond, verdictKoD}, {a, 200 * time.Millisecond, verdictDrop},
			{a, 1100 * time.Millisecond, verdictAllow}, {a, 1200 * time.Millisecond, verdictKoD},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(tc.cfg)
			for i, s := range tc.steps {
				if got := l.check(&s.key, int64(s.at)); got != s.want {
					t.Fatalf("step %d at %v: verdict %d, want %d", i, s.at, got, s.want)
				}
			}
		})
	}
}

// TestLimiterKeepsLimitedClients: a flood of new addresses, many more than
// the table holds (a busy public server), must not evict a client that is
// being limited and so hand it a fresh burst; the new addresses are all
// answered, and once the limited client has paid off its debt its place
// can be taken again.
func TestLimiterKeepsLimitedClients(t *testing.T) {
	hot := clientKey{15: 1}
	for _, tc := range []struct {
		name    string
		clients int
	}{{"smallest table", 256}, {"pairs of entries", 1024}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(RateLimit{Interval: time.Second, Burst: 3, KoDInterval: time.Hour, Clients: tc.clients})
			for range 3 {
				l.check(&hot, 0)
			}
			if v := l.check(&hot, 0); v != verdictKoD {
				t.Fatalf("hot client over its burst: verdict %d, want KoD", v)
			}
			var k clientKey
			for i := range 100 * tc.clients {
				k[0], k[1], k[2] = 10, byte(i>>8), byte(i)
				k[3] = byte(i >> 16)
				if v := l.check(&k, int64(i)); v != verdictAllow {
					t.Fatalf("new client %d: verdict %d, want allow", i, v)
				}
				if i%(tc.clients/2) == 0 {
					if v := l.check(&hot, int64(i)); v != verdictDrop {
						t.Fatalf("hot client after %d new clients: verdict %d, want drop", i, v)
					}
				}
			}
			// Paid off: new addresses may take its place again, and it
			// starts over with a full burst either way.
			later := int64(10 * time.Second)
			for i := range 10 * tc.clients {
				k[0], k[1], k[2], k[3] = 11, byte(i>>8), byte(i), 0
				l.check(&k, later)
			}
			if v := l.check(&hot, later); v != verdictAllow {
				t.Fatalf("hot client after paying off: verdict %d, want allow", v)
			}
		})
	}
}

func TestLimiterDisabled(t *testing.T) {
	if l := newLimiter(RateLimit{}); l != nil {
		t.Errorf("zero RateLimit built a limiter: %+v", l)
	}
}

func TestLimiterAllocatesNothing(t *testing.T) {
	l := newLimiter(DefaultRateLimit)
	var k clientKey
	now := int64(0)
	n := testing.AllocsPerRun(1000, func() {
		k[15]++
		now += int64(time.Millisecond)
		l.check(&k, now)
	})
	if n != 0 {
		t.Errorf("check allocates %v times per call, want 0", n)
	}
}
