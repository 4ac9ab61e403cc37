package netsvc

import (
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/aunsorm/timenode/hw/clock"
	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/timing"
)

// MaxNonceBytes caps the client nonce (64 bytes, 128 hex digits).
const MaxNonceBytes = 64

// TimingSource is what the API needs from the discipline.
type TimingSource interface {
	Status() *timing.Status
}

// API serves /attestation, /health and /keys.
type API struct {
	Clock       clock.Clock // the disciplined clock
	Timing      TimingSource
	Signer      *signer.Signer
	AuthorityID string
	MaxAge      time.Duration // advertised to clients in /health
	Log         *slog.Logger
	Metrics     *Metrics // may be nil
}

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /attestation", a.attestation)
	mux.HandleFunc("GET /health", a.health)
	mux.HandleFunc("GET /keys", a.keys)
	return a.Metrics.instrument(mux)
}

// errorBody is every error response's JSON.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (a *API) attestation(w http.ResponseWriter, r *http.Request) {
	var nonce []byte
	if q := r.URL.Query().Get("nonce"); q != "" {
		n, err := hex.DecodeString(q)
		if err != nil || len(n) > MaxNonceBytes {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad_nonce",
				Reason: "nonce must be hex, at most 64 bytes (128 hex digits)"})
			return
		}
		nonce = n
	}
	now := a.Clock.Now()
	st := a.Timing.Status()
	if !st.Servable(now) {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "clock_unavailable",
			Reason: st.State.String() + ": " + st.Reason})
		return
	}
	c := signer.Claims{
		AuthorityID:     a.AuthorityID,
		Stratum:         st.Stratum,
		TimestampUnixNs: now.UnixNano(),
		ErrorBoundNs:    int64(st.BoundAt(now)),
		ClockState:      st.State.String(),
		Leap:            st.Leap.String(),
	}
	atts, err := a.Signer.Attest(c, [][]byte{nonce})
	if err != nil {
		a.Log.Error("attestation signing failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "signer_unavailable", Reason: err.Error()})
		return
	}
	a.Metrics.attested()
	writeJSON(w, http.StatusOK, atts[0])
}

// Health is the /health document.
type Health struct {
	Status string       `json:"status"` // "ok" or "unavailable"
	Reason string       `json:"reason,omitempty"`
	Clock  HealthClock  `json:"clock"`
	Signer HealthSigner `json:"signer"`
}

// HealthClock describes the discipline in /health.
type HealthClock struct {
	Status       string  `json:"status"` // "ok" when servable, else the state in lower case
	State        string  `json:"state"`
	Stratum      int     `json:"stratum"`
	OffsetNs     int64   `json:"offset_ns"`
	ErrorBoundNs int64   `json:"error_bound_ns"`
	FrequencyPPB float64 `json:"frequency_ppb"`
	JitterNs     int64   `json:"jitter_ns"`
	MaxAgeSecs   int     `json:"max_age_secs"`
	Reason       string  `json:"reason,omitempty"`
}

// HealthSigner describes the signer in /health.
type HealthSigner struct {
	Ready       bool     `json:"ready"`
	KeyIDs      []string `json:"key_ids"`
	Development bool     `json:"development"`
}

// CheckHealth computes the health document and whether the node is
// healthy (servable clock and a ready signer).
func (a *API) CheckHealth() (Health, bool) {
	now := a.Clock.Now()
	st := a.Timing.Status()
	h := Health{Clock: HealthClock{
		State: st.State.String(), Stratum: int(st.Stratum), OffsetNs: int64(st.Offset),
		ErrorBoundNs: int64(st.BoundAt(now)), FrequencyPPB: st.FrequencyPPB,
		JitterNs: int64(st.Jitter), MaxAgeSecs: int(a.MaxAge / time.Second), Reason: st.Reason,
	}}
	h.Signer.KeyIDs = []string{}
	for _, k := range a.Signer.Keys() {
		h.Signer.KeyIDs = append(h.Signer.KeyIDs, k.ID)
		h.Signer.Development = h.Signer.Development || k.Development
	}
	h.Signer.Ready = a.Signer.Ready()
	clockOK := st.Servable(now)
	if clockOK {
		h.Clock.Status = "ok"
		h.Clock.Reason = ""
	} else {
		h.Clock.Status = "unavailable"
	}
	switch {
	case !clockOK:
		h.Status, h.Reason = "unavailable", "clock "+st.State.String()+": "+st.Reason
	case !h.Signer.Ready:
		h.Status, h.Reason = "unavailable", "signer has no key"
	default:
		h.Status = "ok"
	}
	return h, h.Status == "ok"
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	h, ok := a.CheckHealth()
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func (a *API) keys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, signer.NewKeysDocument(a.AuthorityID, a.Signer.Keys()))
}
