package signer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The integrity states an attestation can carry (timing/integrity's
// State names).
const (
	// IntegrityTrusted: the node follows its GNSS and publishes the
	// discipline's bound.
	IntegrityTrusted = "trusted"
	// IntegritySuspect: the node follows its GNSS with the error bound
	// widened (when Enforced).
	IntegritySuspect = "suspect"
	// IntegrityUntrusted: the node holds over on its oscillator instead
	// of following its GNSS (when Enforced).
	IntegrityUntrusted = "untrusted"
)

// Limits on Integrity.Reasons, so that the field stays small and
// printable: at most MaxIntegrityReasons reasons of 1 to
// MaxIntegrityReasonLen bytes of [a-z0-9_./-].
const (
	MaxIntegrityReasons   = 32
	MaxIntegrityReasonLen = 64
)

// Integrity is the node's judgement of its GNSS when it signed
// (timing/integrity), signed from format version 3 on. A nil *Integrity
// in a version 3 attestation means the node runs no integrity checks
// (--integrity=off); older versions never carry one.
type Integrity struct {
	// State is IntegrityTrusted, IntegritySuspect or IntegrityUntrusted.
	State string `json:"state"`
	// Enforced is false when the node only monitors: it judged State but
	// follows GNSS and publishes the discipline's bound regardless.
	Enforced bool `json:"enforced"`
	// Reasons are the evidence in force, "detector/reason", strongest
	// first: the active suspect- or untrusted-level evidence, or, while
	// the node waits out its hold-off with none active, the evidence
	// that caused the state. Empty while trusted.
	Reasons []string `json:"reasons"`
}

// ErrIntegrityNotTrusted is returned by a Verifier with RequireTrusted
// for a valid attestation whose signed integrity state is not trusted, or
// that carries none.
var ErrIntegrityNotTrusted = errors.New("signer: GNSS integrity not trusted")

// MarshalJSON writes Reasons as an array even when nil.
func (in Integrity) MarshalJSON() ([]byte, error) {
	type plain Integrity
	if in.Reasons == nil {
		in.Reasons = []string{}
	}
	return json.Marshal(plain(in))
}

// Clone returns a deep copy of in (nil for nil).
func (in *Integrity) Clone() *Integrity {
	if in == nil {
		return nil
	}
	out := *in
	out.Reasons = slices.Clone(in.Reasons)
	return &out
}

// Equal reports whether in and o carry the same signed values; a nil and
// an empty Reasons are equal.
func (in *Integrity) Equal(o *Integrity) bool {
	if in == nil || o == nil {
		return in == o
	}
	return in.State == o.State && in.Enforced == o.Enforced && slices.Equal(in.Reasons, o.Reasons)
}

// String is the field in one line: "suspect (enforced): receiver/cn0_uniform",
// "off" for nil.
func (in *Integrity) String() string {
	if in == nil {
		return "off"
	}
	s := in.State
	if in.Enforced {
		s += " (enforced)"
	} else {
		s += " (monitored, not enforced)"
	}
	if len(in.Reasons) > 0 {
		s += ": " + strings.Join(in.Reasons, ", ")
	}
	return s
}

// Validate checks the state and the reasons against the format's limits.
func (in *Integrity) Validate() error {
	if in == nil {
		return nil
	}
	switch in.State {
	case IntegrityTrusted, IntegritySuspect, IntegrityUntrusted:
	default:
		return fmt.Errorf("integrity state %q", in.State)
	}
	if len(in.Reasons) > MaxIntegrityReasons {
		return fmt.Errorf("%d integrity reasons, at most %d", len(in.Reasons), MaxIntegrityReasons)
	}
	for i, r := range in.Reasons {
		if !validReason(r) {
			return fmt.Errorf("integrity reason %d %q: want 1 to %d bytes of [a-z0-9_./-]", i, r, MaxIntegrityReasonLen)
		}
	}
	return nil
}

func validReason(r string) bool {
	if len(r) == 0 || len(r) > MaxIntegrityReasonLen {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' && c != '/' && c != '-' {
			return false
		}
	}
	return true
}

// appendIntegrity appends the version 3 integrity block:
//
//	u8  present (0: no integrity checks, and nothing follows; 1)
//	str state
//	u8  enforced (0 or 1)
//	u8  number of reasons
//	str reason, that many times
func appendIntegrity(b []byte, in *Integrity) ([]byte, error) {
	if in == nil {
		return append(b, 0), nil
	}
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(in.State)))
	b = append(b, in.State...)
	b = append(b, boolByte(in.Enforced), byte(len(in.Reasons)))
	for _, r := range in.Reasons {
		b = binary.BigEndian.AppendUint16(b, uint16(len(r)))
		b = append(b, r...)
	}
	return b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
