package certaudit

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

const day = 24 * time.Hour

// Policy holds the expiry rules. The zero value disables every rule; use
// DefaultPolicy.
type Policy struct {
	MaxLeafLifetime time.Duration // longest NotAfter−NotBefore for a leaf
	RotateBefore    time.Duration // remaining validity below which a certificate must be rotated now
	AlertBefore     time.Duration // remaining validity below which operators are alerted
	MinOverlap      time.Duration // double validity required between the old and new certificate of a rotation
}

// DefaultPolicy is the policy of SPEC.md §7: 90-day leaves, rotation at
// T−14 days, alert at 21 days, 24 h overlap.
func DefaultPolicy() Policy {
	return Policy{MaxLeafLifetime: 90 * day, RotateBefore: 14 * day, AlertBefore: 21 * day, MinOverlap: 24 * time.Hour}
}

// Severity orders findings; a certificate's verdict is its worst finding.
type Severity int

// Severities, from harmless to "act now".
const (
	OK        Severity = iota // nothing to report
	Info                      // part of a rotation, nothing to do yet
	Alert                     // inside the alert window
	Violation                 // breaks the policy, rotation not yet due
	Rotate                    // must be rotated now
)

var severityNames = [...]string{"ok", "info", "alert", "violation", "rotate"}

// String returns the lower-case name used in reports.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the name, so JSON reports carry "rotate", not 4.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Rule names, stable for scripts reading the JSON report.
const (
	RuleExpired         = "expired"
	RuleNotYetValid     = "not_yet_valid"
	RuleRotateWindow    = "rotate_window"
	RuleAlertWindow     = "alert_window"
	RuleLeafLifetime    = "leaf_lifetime"
	RuleRotationOverlap = "rotation_overlap"
	RuleSuperseded      = "superseded"
	RuleStaged          = "staged"
)

// NamedCert is a certificate and where it came from (a path, or the
// daemon's name for it such as "https" or "client-ca").
type NamedCert struct {
	Name string
	Cert *x509.Certificate
}

// Finding is one policy observation about one certificate.
type Finding struct {
	Name     string   `json:"-"` // NamedCert.Name of the certificate
	Index    int      `json:"-"` // position in the slice given to Evaluate
	Severity Severity `json:"severity"`
	Rule     string   `json:"rule"`
	Reason   string   `json:"reason"`
}

// Evaluate applies p to certs at now. Findings come in the order of certs.
func Evaluate(certs []*x509.Certificate, now time.Time, p Policy) []Finding {
	named := make([]NamedCert, len(certs))
	for i, c := range certs {
		named[i] = NamedCert{Name: serialHex(c.SerialNumber), Cert: c}
	}
	return EvaluateNamed(named, now, p)
}

// EvaluateNamed is Evaluate for certificates that carry a name, which
// the findings repeat.
func EvaluateNamed(certs []NamedCert, now time.Time, p Policy) []Finding {
	var out []Finding
	for i, nc := range certs {
		c := nc.Cert
		add := func(s Severity, rule, format string, args ...any) {
			out = append(out, Finding{Name: nc.Name, Index: i, Severity: s, Rule: rule, Reason: fmt.Sprintf(format, args...)})
		}
		if !c.IsCA && p.MaxLeafLifetime > 0 {
			if life := c.NotAfter.Sub(c.NotBefore); life > p.MaxLeafLifetime {
				add(Violation, RuleLeafLifetime, "leaf lifetime %s exceeds %s", days(life), days(p.MaxLeafLifetime))
			}
		}
		newer := successor(certs, i, now)
		left := c.NotAfter.Sub(now)
		switch {
		case newer != nil:
			add(Info, RuleSuperseded, "superseded by serial %s (valid since %s); remove after the overlap", serialHex(newer.SerialNumber), newer.NotBefore.UTC().Format(time.RFC3339))
		case now.After(c.NotAfter):
			add(Rotate, RuleExpired, "expired %s ago at %s", days(-left), c.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(c.NotBefore):
			if validSibling(certs, i, now) {
				add(Info, RuleStaged, "staged: valid from %s, the current certificate still serves", c.NotBefore.UTC().Format(time.RFC3339))
			} else {
				add(Rotate, RuleNotYetValid, "not valid until %s and no valid certificate with the same names", c.NotBefore.UTC().Format(time.RFC3339))
			}
		case p.RotateBefore > 0 && left < p.RotateBefore:
			add(Rotate, RuleRotateWindow, "%s left, rotation due at %s before expiry", days(left), days(p.RotateBefore))
		case p.AlertBefore > 0 && left < p.AlertBefore:
			add(Alert, RuleAlertWindow, "%s left, alert threshold %s", days(left), days(p.AlertBefore))
		}
		if prev := predecessor(certs, i); prev != nil && p.MinOverlap > 0 {
			if ov := prev.NotAfter.Sub(c.NotBefore); ov < p.MinOverlap {
				add(Violation, RuleRotationOverlap, "overlap with serial %s is %s, want at least %s", serialHex(prev.SerialNumber), ov.Round(time.Minute), p.MinOverlap)
			}
		}
	}
	return out
}

// Verdict is the worst severity among the findings for certificate index i.
func Verdict(findings []Finding, i int) Severity {
	v := OK
	for _, f := range findings {
		if f.Index == i && f.Severity > v {
			v = f.Severity
		}
	}
	return v
}

// CountViolations counts findings of severity Violation or worse: the
// value of timenode_cert_policy_violations.
func CountViolations(findings []Finding) int {
	n := 0
	for _, f := range findings {
		if f.Severity >= Violation {
			n++
		}
	}
	return n
}

// identity is what makes two certificates a rotation pair: the same
// subject CN and the same set of SANs, both leaves.
func identity(c *x509.Certificate) string {
	sans := SANs(c)
	slices.Sort(sans)
	return c.Subject.CommonName + "\x00" + strings.Join(sans, "\x00")
}

func sameIdentity(a, b *x509.Certificate) bool {
	return !a.IsCA && !b.IsCA && identity(a) == identity(b)
}

// successor returns a newer certificate with the same identity that is
// valid at now and outlives certs[i], if any.
func successor(certs []NamedCert, i int, now time.Time) *x509.Certificate {
	c := certs[i].Cert
	for j, o := range certs {
		n := o.Cert
		if j != i && sameIdentity(c, n) && n.NotBefore.After(c.NotBefore) && n.NotAfter.After(c.NotAfter) && validAt(n, now) {
			return n
		}
	}
	return nil
}

// predecessor returns the newest certificate with the same identity that
// started before certs[i] and ended after it started: the old half of a
// rotation pair.
func predecessor(certs []NamedCert, i int) *x509.Certificate {
	c := certs[i].Cert
	var best *x509.Certificate
	for j, o := range certs {
		p := o.Cert
		if j == i || !sameIdentity(c, p) || !p.NotBefore.Before(c.NotBefore) || !p.NotAfter.Before(c.NotAfter) {
			continue
		}
		if best == nil || p.NotBefore.After(best.NotBefore) {
			best = p
		}
	}
	return best
}

func validSibling(certs []NamedCert, i int, now time.Time) bool {
	for j, o := range certs {
		if j != i && sameIdentity(certs[i].Cert, o.Cert) && validAt(o.Cert, now) {
			return true
		}
	}
	return false
}

func validAt(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && !now.After(c.NotAfter)
}

func days(d time.Duration) string {
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

func serialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf("%x", n)
}
