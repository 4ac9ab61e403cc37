package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/clocktest"
	"github.com/aunsorm/timenode/netsvc"
	"github.com/aunsorm/timenode/netsvc/mtls"
	"github.com/aunsorm/timenode/netsvc/site"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

const leapDay = 24 * time.Hour

// imageLeap writes the image's tzdata list as the appliance has it at
// t0, expired months ago (Debian's expired on 2026-06-28), and points
// cfg's --leap-seconds at it: never the host's own file.
func imageLeap(t *testing.T, cfg *config) {
	t.Helper()
	cfg.leapFile = filepath.Join(t.TempDir(), "leap-seconds.list")
	if err := os.WriteFile(cfg.leapFile, sitetest.LeapList(t0.Add(-340*leapDay), t0.Add(-158*leapDay)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bundleWithLeap is a valid bundle for n at now carrying list.
func bundleWithLeap(t *testing.T, n *sitetest.Node, now time.Time, list []byte) string {
	t.Helper()
	dir := n.Bundle(t, now, "kms.test.example")
	if list != nil {
		if err := os.WriteFile(filepath.Join(dir, site.LeapSeconds), list, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestMaterialLeapList: the generation's leap-seconds.list is used over
// --leap-seconds; without one the image's list is; a list that does not
// verify refuses the set, naming the file.
func TestMaterialLeapList(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fresh := sitetest.LeapList(t0.Add(-leapDay), t0.Add(180*leapDay))
	tampered := []byte(strings.Replace(string(fresh), "#$\t", "#$\t1", 1))
	tests := []struct {
		name     string
		list     []byte // the generation's; nil: none
		wantPath string // relative to the generation, or "image"
		expires  time.Time
		err      string
	}{
		{"site list", fresh, site.LeapSeconds, t0.Add(180 * leapDay), ""},
		{"no site list", nil, "image", t0.Add(-158 * leapDay), ""},
		{"site list does not verify", tampered, "", time.Time{}, "leap second list "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := sitetest.NewNode(t, t0)
			n.Activate(t, bundleWithLeap(t, n, t0, tc.list), "g1")
			cfg := siteConfig(t, n.State)
			imageLeap(t, cfg)
			m, err := loadMaterial(cfg, t0, log)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), site.LeapSeconds) {
					t.Fatalf("err %v, want one naming %s", err, site.LeapSeconds)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.keys.Close()
			want := cfg.leapFile
			if tc.wantPath != "image" {
				want = filepath.Join(m.site, tc.wantPath)
			}
			if m.leapPath != want || m.leap == nil || !m.leap.Expires.Equal(tc.expires) {
				t.Fatalf("leap list %s (%v), want %s expiring %v", m.leapPath, m.leap, want, tc.expires)
			}
		})
	}
}

// TestReloadTakesAFreshLeapList: a node started with the image's expired
// list exports timenode_leap_list_expired 1 and warns on /health; a reload
// of a generation with a current list makes it 0 and gives the integrity
// check GPS−UTC again; a later generation whose list does not verify is
// refused as a whole and the current list stays.
func TestReloadTakesAFreshLeapList(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := sitetest.NewNode(t, t0)
	n.Activate(t, bundleWithLeap(t, n, t0, nil), "g1")
	cfg := siteConfig(t, n.State)
	imageLeap(t, cfg)
	m, err := loadMaterial(cfg, t0, log)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.NewManual(t0)
	tcfg := timing.DefaultConfig()
	tcfg.Leap = m.leap
	disc := timing.New(tcfg, clocktest.NewOscillator(clk, clocktest.OscillatorConfig{}), log)
	lp := &leapInUse{disc: disc, site: true}
	lp.use(m.leapPath, m.leap, t0, log)
	sig := signer.NewSignerSet(m.keys, clk.Now)
	t.Cleanup(func() { sig.Close() })
	r := reloadable{tls: mtls.NewManager(m.tls, m.policy), sig: sig, leap: lp}
	metrics := netsvc.NewMetrics(clk, disc, disc.Rejected)
	api := &netsvc.API{Clock: clk, Timing: disc, Signer: sig, Metrics: metrics}

	disc.Tick()
	if got := leapExpiredMetric(t, metrics); got != 1 {
		t.Fatalf("timenode_leap_list_expired %v with the image's expired list, want 1", got)
	}
	if h, _ := api.CheckHealth(); !strings.Contains(strings.Join(h.Clock.Warnings, "; "), "leap second list expired") {
		t.Errorf("/health warnings %q lack the expired list", h.Clock.Warnings)
	}
	if _, ok := lp.GPSMinusUTC(t0); ok {
		t.Error("the integrity check has GPS−UTC from an expired list")
	}

	clk.Advance(time.Hour)
	n.Activate(t, bundleWithLeap(t, n, clk.Now(), sitetest.LeapList(t0, t0.Add(180*leapDay))), "g2")
	if st := reload(cfg, r, clk.Now(), metrics, log); st != "reloaded" {
		t.Fatalf("reload with a fresh list: %q", st)
	}
	disc.Tick()
	if got := leapExpiredMetric(t, metrics); got != 0 {
		t.Fatalf("timenode_leap_list_expired %v after the reload, want 0", got)
	}
	if h, _ := api.CheckHealth(); strings.Contains(strings.Join(h.Clock.Warnings, "; "), "leap second list") || h.Clock.TAIOffset != 37 {
		t.Errorf("/health after the reload: warnings %q, TAI−UTC %d", h.Clock.Warnings, h.Clock.TAIOffset)
	}
	if got, ok := lp.GPSMinusUTC(clk.Now()); !ok || got != 18 {
		t.Errorf("GPS−UTC %d, %v after the reload, want 18, true", got, ok)
	}

	clk.Advance(time.Hour)
	bad := []byte(strings.Replace(string(sitetest.LeapList(t0, t0.Add(360*leapDay))), "#$\t", "#$\t1", 1))
	n.Activate(t, bundleWithLeap(t, n, clk.Now(), bad), "g3")
	if st := reload(cfg, r, clk.Now(), metrics, log); !strings.HasPrefix(st, "reload refused") || !strings.Contains(st, site.LeapSeconds) {
		t.Fatalf("reload with a list that does not verify: %q", st)
	}
	disc.Tick()
	if got := disc.Leap(); got == nil || !got.Expires.Equal(t0.Add(180*leapDay)) || leapExpiredMetric(t, metrics) != 0 {
		t.Fatalf("after a refused reload the list in use is %v, want g2's", got)
	}
}

// leapExpiredMetric gathers timenode_leap_list_expired.
func leapExpiredMetric(t *testing.T, m *netsvc.Metrics) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "timenode_leap_list_expired" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no timenode_leap_list_expired")
	return 0
}
