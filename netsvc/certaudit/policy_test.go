package certaudit

import (
	"crypto/x509"
	"slices"
	"testing"
	"time"
)

func rules(fs []Finding, i int) []string {
	var out []string
	for _, f := range fs {
		if f.Index == i {
			out = append(out, f.Rule)
		}
	}
	slices.Sort(out)
	return out
}

func TestEvaluate(t *testing.T) {
	ca := newTestCA(t, "timenode test CA")
	type want struct {
		verdict Severity
		rules   []string
	}
	tests := []struct {
		name  string
		certs func() []*x509.Certificate
		want  []want // one per certificate
	}{
		{"valid 60 days left", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-30*day), now.Add(60*day))}
		}, []want{{OK, nil}}},
		{"expires in 10 days", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-80*day), now.Add(10*day))}
		}, []want{{Rotate, []string{RuleRotateWindow}}}},
		{"expires in 20 days", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-70*day), now.Add(20*day))}
		}, []want{{Alert, []string{RuleAlertWindow}}}},
		{"14 days exactly is not inside the rotation window", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-76*day), now.Add(14*day))}
		}, []want{{Alert, []string{RuleAlertWindow}}}},
		{"21 days exactly is not inside the alert window", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-69*day), now.Add(21*day))}
		}, []want{{OK, nil}}},
		{"120-day lifetime", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-10*day), now.Add(110*day))}
		}, []want{{Violation, []string{RuleLeafLifetime}}}},
		{"90-day lifetime is allowed", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-10*day), now.Add(80*day))}
		}, []want{{OK, nil}}},
		{"not yet valid, alone", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(2*day), now.Add(60*day))}
		}, []want{{Rotate, []string{RuleNotYetValid}}}},
		{"expired", func() []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, "a.timenode", now.Add(-85*day), now.Add(-time.Hour))}
		}, []want{{Rotate, []string{RuleExpired}}}},
		{"rotation pair with 5 days overlap", func() []*x509.Certificate {
			return []*x509.Certificate{
				ca.issue(t, "a.timenode", now.Add(-85*day), now.Add(5*day)),
				ca.issue(t, "a.timenode", now.Add(-time.Hour), now.Add(89*day)),
			}
		}, []want{{Info, []string{RuleSuperseded}}, {OK, nil}}},
		{"rotation pair with 1 hour overlap", func() []*x509.Certificate {
			return []*x509.Certificate{
				ca.issue(t, "a.timenode", now.Add(-89*day), now.Add(30*time.Minute)),
				ca.issue(t, "a.timenode", now.Add(-30*time.Minute), now.Add(89*day)),
			}
		}, []want{{Info, []string{RuleSuperseded}}, {Violation, []string{RuleRotationOverlap}}}},
		{"rotation pair with a gap, new one staged", func() []*x509.Certificate {
			return []*x509.Certificate{
				ca.issue(t, "a.timenode", now.Add(-89*day), now.Add(12*time.Hour)),
				ca.issue(t, "a.timenode", now.Add(13*time.Hour), now.Add(80*day)),
			}
		}, []want{{Rotate, []string{RuleRotateWindow}}, {Violation, []string{RuleRotationOverlap, RuleStaged}}}},
		{"different names are not a rotation pair", func() []*x509.Certificate {
			return []*x509.Certificate{
				ca.issue(t, "a.timenode", now.Add(-85*day), now.Add(5*day)),
				ca.issue(t, "b.timenode", now.Add(-time.Hour), now.Add(89*day)),
			}
		}, []want{{Rotate, []string{RuleRotateWindow}}, {OK, nil}}},
		{"CA certificates have no lifetime limit", func() []*x509.Certificate {
			return []*x509.Certificate{ca.cert}
		}, []want{{OK, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs := tt.certs()
			fs := Evaluate(certs, now, DefaultPolicy())
			for i, w := range tt.want {
				if got := Verdict(fs, i); got != w.verdict {
					t.Errorf("cert %d: verdict %s, want %s; findings %+v", i, got, w.verdict, fs)
				}
				if got := rules(fs, i); !slices.Equal(got, w.rules) {
					t.Errorf("cert %d: rules %v, want %v", i, got, w.rules)
				}
			}
		})
	}
}

func TestCountViolations(t *testing.T) {
	fs := []Finding{{Severity: Info}, {Severity: Alert}, {Severity: Violation}, {Severity: Rotate}, {Severity: Rotate}}
	if got, want := CountViolations(fs), 3; got != want {
		t.Errorf("CountViolations = %d, want %d", got, want)
	}
}
