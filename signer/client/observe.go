package client

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/aunsorm/timenode/signer"
	"github.com/prometheus/client_golang/prometheus"
)

// Register adds the client's metrics to reg (never the global registry):
// ntp_attestation_round_trip_ms, ntp_attestation_age_ms,
// ntp_attestation_signature_valid (0/1) and ntp_attestation_stratum, the
// names the existing dashboards and alerts use.
func (c *Client) Register(reg prometheus.Registerer) error {
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ntp_attestation_round_trip_ms",
			Help: "Round trip of the last successful attestation fetch, in milliseconds."},
			func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(c.rtt.Microseconds()) / 1000 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ntp_attestation_age_ms",
			Help: "Age of the last verified attestation on the local clock, in milliseconds (-1: none)."},
			func() float64 {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.last == nil {
					return -1
				}
				return float64(c.cfg.Now().Sub(c.last.Time()).Microseconds()) / 1000
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ntp_attestation_signature_valid",
			Help: "1 if the last attestation's signatures verified against a trusted key, else 0."},
			func() float64 {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.sigValid {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ntp_attestation_stratum",
			Help: "Stratum claimed by the last verified attestation (0: none)."},
			func() float64 {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.last == nil {
					return 0
				}
				return float64(c.last.Stratum)
			}),
	}
	for _, g := range gauges {
		if err := reg.Register(g); err != nil {
			return err
		}
	}
	return nil
}

// Health is the client's /health document.
type Health struct {
	Status string      `json:"status"`
	Clock  HealthClock `json:"clock"`
}

// HealthClock is the .clock object of Health.
type HealthClock struct {
	Status         string `json:"status"` // "ok" or "unavailable"
	RefreshEnabled bool   `json:"refreshEnabled"`
	AuthorityID    string `json:"authorityId,omitempty"`
	KeyID          string `json:"keyId,omitempty"`
	Stratum        int    `json:"stratum,omitempty"`
	AgeMs          int64  `json:"ageMs,omitempty"`
	MaxAgeMs       int64  `json:"maxAgeMs"`
	// SourceState, ErrorBoundNs and Leap are the node's own account in
	// the last verified attestation: an application that sees "ok" can
	// still tell a HOLDOVER node with a wide bound from a LOCKED one.
	SourceState  string `json:"sourceState,omitempty"`
	ErrorBoundNs int64  `json:"errorBoundNs,omitempty"`
	Leap         string `json:"leap,omitempty"`
	// Integrity is the node's signed GNSS integrity field in the last
	// verified attestation; absent when the node runs no integrity
	// checks or its format predates the field.
	Integrity *signer.Integrity `json:"integrity,omitempty"`
	Error     string            `json:"error,omitempty"`
	Stale     bool              `json:"stale,omitempty"`
}

// Health reports whether a fresh verified attestation is held.
func (c *Client) Health() (Health, bool) {
	h := Health{Clock: HealthClock{RefreshEnabled: true, MaxAgeMs: c.cfg.MaxAge.Milliseconds()}}
	att, err := c.Current()
	if err != nil {
		h.Status, h.Clock.Status, h.Clock.Error = "unavailable", "unavailable", err.Error()
		var stale *signer.StaleAttestation
		h.Clock.Stale = errors.As(err, &stale)
		return h, false
	}
	h.Status, h.Clock.Status = "ok", "ok"
	h.Clock.AuthorityID, h.Clock.KeyID, h.Clock.Stratum = att.AuthorityID, att.KeyID, att.Stratum
	h.Clock.SourceState, h.Clock.ErrorBoundNs, h.Clock.Leap = att.ClockState, att.ErrorBoundNs, att.Leap
	h.Clock.Integrity = att.Integrity
	h.Clock.AgeMs = c.cfg.Now().Sub(att.Time()).Milliseconds()
	return h, true
}

// HealthHandler serves Health: 200 while ok, 503 otherwise.
func (c *Client) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := c.Health()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
}
