package netsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// Batcher signs nonce-bound requests in batches and serves the
	// no-nonce snapshot; without one each request is signed alone.
	Batcher *signer.Batcher
	// Now times the plain listener's rate limit (time.Now if nil).
	Now func() time.Time
	// Services lists the other time services for /health; Serving is
	// filled in at each check.
	Services []HealthService
	// Receiver, when set, adds the GNSS receiver's view to /health.
	Receiver ReceiverSource

	snapshot atomic.Pointer[encodedSnapshot]
}

// ErrNotServable is returned by Claims while the clock may not be served.
var ErrNotServable = errors.New("netsvc: clock not servable")

// Claims reads the clock, the discipline and the integrity status once
// for a batch about to be signed: the attested time is taken as late as
// possible, and the signed integrity field comes from the same snapshot
// as the bound it widened.
func (a *API) Claims() (signer.Claims, error) {
	now := a.Clock.Now()
	st := a.Timing.Status()
	is := integrityOf(a.Timing)
	if !servableWith(is, st, now) {
		return signer.Claims{}, fmt.Errorf("%w: %s: %s", ErrNotServable, st.State, whyNotServable(is, st, now))
	}
	return signer.Claims{
		AuthorityID:     a.AuthorityID,
		Stratum:         st.Stratum,
		TimestampUnixNs: now.UnixNano(),
		ErrorBoundNs:    int64(is.Bound(st.BoundAt(now))),
		ClockState:      st.State.String(),
		Leap:            st.Leap.String(),
		Integrity:       AttestedIntegrity(is),
	}, nil
}

// Handler returns the API's routes. A request that arrived without TLS
// (the plain listener) gets only what plain.go allows, rate limited.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /attestation", a.attestation)
	mux.HandleFunc("GET /health", a.health)
	mux.HandleFunc("GET /keys", a.keys)
	lim := newRateLimiter(PlainRequestsPerSecond, PlainRequestBurst, a.Now)
	return a.Metrics.instrument(plainGate(mux, lim))
}

// errorBody is every error response's JSON.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

// writeJSON writes v compactly: an attestation is about 5 KB, mostly the
// ML-DSA-65 signature, and indenting it on every request costs throughput.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding"}`)
	}
	writeRaw(w, code, append(b, '\n'))
}

func writeRaw(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// encodedSnapshot keeps the JSON of the no-nonce snapshot, re-encoded only
// when the batcher re-signs it.
type encodedSnapshot struct {
	att  *signer.Attestation
	body []byte
}

func (a *API) attestation(w http.ResponseWriter, r *http.Request) {
	nonce, err := parseAttestationQuery(r.URL.RawQuery)
	if err != nil {
		code := "bad_query"
		if errors.Is(err, errBadNonce) {
			code = "bad_nonce"
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: code, Reason: strings.TrimPrefix(err.Error(), ErrBadQuery.Error()+": ")})
		return
	}
	if nonce != nil && r.TLS == nil {
		refusePlain(w) // each nonce costs a signature: not for anonymous plain HTTP
		return
	}
	if st := a.Timing.Status(); !servable(a.Timing, st, a.Clock.Now()) {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "clock_unavailable",
			Reason: st.State.String() + ": " + st.Reason})
		return
	}
	var att *signer.Attestation
	if a.Batcher != nil {
		att, err = a.Batcher.Attest(r.Context(), nonce)
	} else {
		var c signer.Claims
		if c, err = a.Claims(); err == nil {
			var atts []*signer.Attestation
			if atts, err = a.Signer.Attest(c, [][]byte{nonce}); err == nil {
				att = atts[0]
			}
		}
	}
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, r.Context().Err()) {
			return // the client went away
		}
		a.Log.Warn("attestation not signed", "err", err)
		writeJSON(w, code, errorBody{Error: "unavailable", Reason: err.Error()})
		return
	}
	a.Metrics.attested()
	if len(nonce) == 0 {
		if snap := a.snapshot.Load(); snap != nil && snap.att == att {
			writeRaw(w, http.StatusOK, snap.body)
			return
		}
		if b, err := att.AppendJSON(nil); err == nil {
			snap := &encodedSnapshot{att: att, body: append(b, '\n')}
			a.snapshot.Store(snap)
			writeRaw(w, http.StatusOK, snap.body)
			return
		}
	}
	// The batch's shared fields are encoded once; each response splices in
	// its nonce and proof (see signer.Attestation.AppendJSON).
	bp := attBufs.Get().(*[]byte)
	defer attBufs.Put(bp)
	b, err := att.AppendJSON((*bp)[:0])
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "encoding"})
		return
	}
	*bp = append(b, '\n')
	writeRaw(w, http.StatusOK, *bp)
}

// attBufs recycles response buffers: a nonce-bound attestation is about
// 5 KB, and allocating one per request shows in the GC's share of CPU.
var attBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// Health is the /health document.
type Health struct {
	Status string       `json:"status"` // "ok" or "unavailable"
	Reason string       `json:"reason,omitempty"`
	Clock  HealthClock  `json:"clock"`
	Signer HealthSigner `json:"signer"`
	// Services are the time services besides HTTPS (NTP, Roughtime).
	Services []HealthService `json:"services,omitempty"`
	// Receiver is the GNSS receiver's view (satellites, fix, DOP,
	// antenna); absent when the node has none wired.
	Receiver *HealthReceiver `json:"receiver,omitempty"`
	// Integrity is the GNSS integrity state (trusted, suspect,
	// untrusted) and its evidence; absent when the node judges none.
	Integrity *HealthIntegrity `json:"integrity,omitempty"`
}

// HealthService is a time service the node runs besides HTTPS, in /health.
type HealthService struct {
	Name string `json:"name"` // "ntp", "roughtime"
	Addr string `json:"addr"`
	// PublicKey is what a client must be configured with (Roughtime's
	// long-term Ed25519 key, base64).
	PublicKey string `json:"public_key,omitempty"`
	// Serving: answering with time now; false while the clock is not
	// servable (NTP then answers unsynchronized, Roughtime not at all).
	Serving bool `json:"serving"`
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
	Leap         string  `json:"leap"`
	TAIOffset    int     `json:"tai_offset"`
	Reason       string  `json:"reason,omitempty"`
	// Warnings do not make the node unhealthy but need an operator.
	Warnings []string `json:"warnings,omitempty"`
	// HoldoverSince is when the node entered HOLDOVER (RFC 3339, local
	// clock), empty when it is not in HOLDOVER.
	HoldoverSince string `json:"holdover_since"`
	// StateSince is when the current state was entered, empty for the
	// FREERUN the daemon starts in.
	StateSince string `json:"state_since,omitempty"`
	// LastPulseAgeMs and LastFixAgeMs: time since the last PPS edge and
	// the last valid fix, null before the first.
	LastPulseAgeMs *int64 `json:"last_pulse_age_ms"`
	LastFixAgeMs   *int64 `json:"last_fix_age_ms"`
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
	is := integrityOf(a.Timing) // one snapshot for the bound, the verdict and the reason
	clockOK := servableWith(is, st, now)
	why := st.Why()
	if !clockOK {
		why = whyNotServable(is, st, now)
	}
	h := Health{Clock: HealthClock{
		State: st.State.String(), Stratum: int(st.Stratum), OffsetNs: int64(st.Offset),
		ErrorBoundNs: int64(is.Bound(st.BoundAt(now))), FrequencyPPB: st.FrequencyPPB,
		JitterNs: int64(st.Jitter), MaxAgeSecs: int(a.MaxAge / time.Second), Reason: why,
		Leap: st.Leap.String(), TAIOffset: st.TAIOffset,
	}}
	if since, ok := st.HoldoverSince(); ok {
		h.Clock.HoldoverSince = since.UTC().Format(time.RFC3339Nano)
	}
	if !st.StateSince.IsZero() {
		h.Clock.StateSince = st.StateSince.UTC().Format(time.RFC3339Nano)
	}
	if age, ok := st.PulseAge(now); ok {
		h.Clock.LastPulseAgeMs = ptr(age.Milliseconds())
	}
	if age, ok := st.FixAge(now); ok {
		h.Clock.LastFixAgeMs = ptr(age.Milliseconds())
	}
	if a.Receiver != nil {
		h.Receiver = NewHealthReceiver(a.Receiver.Stats(), a.Receiver.Sky())
	}
	if st.LeapListExpired {
		h.Clock.Warnings = append(h.Clock.Warnings, "leap second list expired: install a current leap-seconds.list (docs/runbooks/LeapListExpired.md)")
	}
	if is != nil {
		h.Integrity = NewHealthIntegrity(is)
		if wr, ok := a.Timing.(WitnessReachSource); ok {
			h.Integrity.Witnesses = wr.WitnessReach()
		}
		if w := integrityWarning(is); w != "" {
			h.Clock.Warnings = append(h.Clock.Warnings, w)
		}
	}
	h.Signer.KeyIDs = []string{}
	for _, k := range a.Signer.Keys() {
		h.Signer.KeyIDs = append(h.Signer.KeyIDs, k.ID)
		h.Signer.Development = h.Signer.Development || k.Development
	}
	h.Signer.Ready = a.Signer.Ready()
	for _, svc := range a.Services {
		svc.Serving = clockOK
		h.Services = append(h.Services, svc)
	}
	// A node serving in HOLDOVER keeps its reason: the operator needs it
	// most then. Why is empty only while LOCKED.
	if clockOK {
		h.Clock.Status = "ok"
	} else {
		h.Clock.Status = "unavailable"
	}
	switch {
	case !clockOK:
		h.Status, h.Reason = "unavailable", "clock "+st.State.String()+": "+why
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
	if r.TLS == nil {
		refusePlain(w) // keys fetched over plain HTTP cannot be trusted
		return
	}
	writeJSON(w, http.StatusOK, signer.NewKeysDocument(a.AuthorityID, a.Signer.Keys()))
}
