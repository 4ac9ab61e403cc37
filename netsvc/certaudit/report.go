package certaudit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the inventory and its verdicts; its JSON form is the schema
// documented in the package comment.
type Report struct {
	GeneratedAt  time.Time     `json:"generated_at"`
	Dir          string        `json:"dir"`
	Policy       PolicyJSON    `json:"policy"`
	Files        []File        `json:"files"`
	Certificates []Certificate `json:"certificates"`
	RotateNow    int           `json:"rotate_now"`
	Violations   int           `json:"violations"`
}

// PolicyJSON is the policy in the units operators use.
type PolicyJSON struct {
	MaxLeafLifetimeDays float64 `json:"max_leaf_lifetime_days"`
	RotateBeforeDays    float64 `json:"rotate_before_days"`
	AlertBeforeDays     float64 `json:"alert_before_days"`
	MinOverlapHours     float64 `json:"min_overlap_hours"`
}

// Certificate is one certificate's inventory line and verdict.
type Certificate struct {
	Path          string    `json:"path"`
	Index         int       `json:"index"`
	SubjectCN     string    `json:"subject_cn"`
	Subject       string    `json:"subject"`
	Issuer        string    `json:"issuer"`
	Serial        string    `json:"serial"`
	SANs          []string  `json:"sans"`
	NotBefore     time.Time `json:"not_before"`
	NotAfter      time.Time `json:"not_after"`
	DaysRemaining float64   `json:"days_remaining"`
	KeyType       string    `json:"key_type"`
	KeyBits       int       `json:"key_bits"`
	IsCA          bool      `json:"is_ca"`
	SHA256        string    `json:"sha256"`
	Verdict       Severity  `json:"verdict"`
	Findings      []Finding `json:"findings"`
}

// Audit evaluates every certificate found in files at now. Rotation pairs
// are matched across files.
func Audit(dir string, files []File, now time.Time, p Policy) Report {
	r := Report{GeneratedAt: now.UTC(), Dir: dir, Files: files, Policy: PolicyJSON{
		MaxLeafLifetimeDays: p.MaxLeafLifetime.Hours() / 24,
		RotateBeforeDays:    p.RotateBefore.Hours() / 24,
		AlertBeforeDays:     p.AlertBefore.Hours() / 24,
		MinOverlapHours:     p.MinOverlap.Hours(),
	}}
	var named []NamedCert
	for _, f := range files {
		for i, c := range f.certs {
			named = append(named, NamedCert{Name: fmt.Sprintf("%s#%d", f.Path, i), Cert: c})
			kt, bits := KeyInfo(c)
			fp := sha256.Sum256(c.Raw)
			r.Certificates = append(r.Certificates, Certificate{
				Path: f.Path, Index: i, SubjectCN: c.Subject.CommonName, Subject: c.Subject.String(),
				Issuer: c.Issuer.String(), Serial: serialHex(c.SerialNumber), SANs: nonNil(SANs(c)),
				NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
				DaysRemaining: math.Round(c.NotAfter.Sub(now).Hours()/24*100) / 100,
				KeyType:       kt, KeyBits: bits, IsCA: c.IsCA, SHA256: hex.EncodeToString(fp[:]),
				Findings: []Finding{},
			})
		}
	}
	findings := EvaluateNamed(named, now, p)
	for _, f := range findings {
		c := &r.Certificates[f.Index]
		c.Findings = append(c.Findings, f)
	}
	for i := range r.Certificates {
		c := &r.Certificates[i]
		c.Verdict = Verdict(findings, i)
		if c.Verdict == Rotate {
			r.RotateNow++
		}
	}
	r.Violations = CountViolations(findings)
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteTable prints the report for a terminal: one line per certificate,
// its findings indented below it, then the files that had problems and
// the CA bundle hashes.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERDICT\tDAYS\tNOT AFTER\tCN\tSANS\tKEY\tSERIAL\tISSUER\tPATH")
	for _, c := range r.Certificates {
		cn := c.SubjectCN
		if c.IsCA {
			cn += " (CA)"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s %d\t%s\t%s\t%s#%d\n", strings.ToUpper(c.Verdict.String()), c.DaysRemaining,
			c.NotAfter.Format(time.DateOnly), cn, strings.Join(c.SANs, ","), c.KeyType, c.KeyBits, c.Serial, c.Issuer, c.Path, c.Index)
		for _, f := range c.Findings {
			fmt.Fprintf(tw, "  %s\t%s: %s\n", f.Severity, f.Rule, f.Reason)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("certaudit: write table: %w", err)
	}
	for _, f := range r.Files {
		if f.SHA256 != "" {
			fmt.Fprintf(w, "CA bundle %s sha256=%s\n", f.Path, f.SHA256)
		}
	}
	for _, f := range r.Files {
		if f.Problem != "" {
			fmt.Fprintf(w, "PROBLEM %s: %s\n", f.Path, f.Problem)
		}
	}
	_, err := fmt.Fprintf(w, "%d certificates, %d to rotate now, %d policy violations\n", len(r.Certificates), r.RotateNow, r.Violations)
	if err != nil {
		return fmt.Errorf("certaudit: write table: %w", err)
	}
	return nil
}
