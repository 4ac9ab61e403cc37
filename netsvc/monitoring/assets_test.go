package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// rule is one alerting rule as read from alerts.yml (line-based: the
// file is ours and keeps one key per line).
type rule struct {
	alert, expr, runbook string
	line                 int
}

func readRules(t *testing.T) []rule {
	t.Helper()
	b, err := Assets.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var out []rule
	for n, line := range strings.Split(string(b), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "- alert: "):
			out = append(out, rule{alert: strings.TrimPrefix(l, "- alert: "), line: n + 1})
		case strings.HasPrefix(l, "expr: ") && len(out) > 0:
			out[len(out)-1].expr = strings.TrimPrefix(l, "expr: ")
		case strings.HasPrefix(l, "runbook_url: ") && len(out) > 0:
			out[len(out)-1].runbook = strings.TrimPrefix(l, "runbook_url: ")
		}
	}
	if len(out) == 0 {
		t.Fatal("no alerts in alerts.yml")
	}
	return out
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)

// dashboardMetrics maps each metric the dashboard uses to where.
func dashboardMetrics(t *testing.T) map[string]string {
	t.Helper()
	b, err := Assets.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("dashboard.json has no panels")
	}
	used := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range MetricNames(tg.Expr) {
				used[m] = "panel " + p.Title
			}
		}
	}
	for _, v := range d.Templating.List {
		q, _ := json.Marshal(v.Query)
		for _, m := range labelValues.FindAllStringSubmatch(string(q), -1) {
			used[m[1]] = "variable " + v.Name
		}
	}
	return used
}

func listed(t *testing.T) map[string]Metric {
	t.Helper()
	b, err := Assets.ReadFile("metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ParseMetricsList(string(b))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Metric{}
	for _, m := range ms {
		out[m.Name] = m
	}
	return out
}

// TestAssetsUseListedMetrics: every metric the rules and the dashboard
// reference is on the allow-list, and every listed metric is used.
func TestAssetsUseListedMetrics(t *testing.T) {
	allow := listed(t)
	used := dashboardMetrics(t)
	for _, r := range readRules(t) {
		names := MetricNames(r.expr)
		if len(names) == 0 {
			t.Errorf("alert %s (line %d): no metric in %q", r.alert, r.line, r.expr)
		}
		for _, m := range names {
			used[m] = "alert " + r.alert
		}
	}
	for m, where := range used {
		if _, ok := allow[m]; !ok {
			t.Errorf("%s uses %s, which is not in metrics.txt", where, m)
		}
	}
	for m := range allow {
		if _, ok := used[m]; !ok {
			t.Errorf("metrics.txt lists %s, which no alert or panel uses", m)
		}
	}
}

// TestAlertsHaveRunbooksAndTests: each alert links docs/runbooks/<alert>.md,
// the page exists and has the three sections, and alerts_test.yml has a
// case for it that also checks the quiet side.
func TestAlertsHaveRunbooksAndTests(t *testing.T) {
	tests, err := Assets.ReadFile("alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range readRules(t) {
		if seen[r.alert] {
			t.Errorf("alert %s defined twice", r.alert)
		}
		seen[r.alert] = true
		want := "docs/runbooks/" + r.alert + ".md"
		if r.runbook != want {
			t.Errorf("alert %s: runbook_url %q, want %q", r.alert, r.runbook, want)
			continue
		}
		page, err := os.ReadFile(filepath.Join("..", "..", want))
		if err != nil {
			t.Errorf("alert %s: %v", r.alert, err)
			continue
		}
		for _, h := range []string{"# " + r.alert, "## What it means", "## How to check", "## How to fix"} {
			if !strings.Contains(string(page), h) {
				t.Errorf("%s lacks %q", want, h)
			}
		}
		block := "  - name: " + r.alert + "\n"
		i := strings.Index(string(tests), block)
		if i < 0 {
			t.Errorf("alerts_test.yml has no test named %s", r.alert)
			continue
		}
		body := string(tests)[i+len(block):]
		if j := strings.Index(body, "\n  - name: "); j >= 0 {
			body = body[:j]
		}
		if !strings.Contains(body, `instance="quiet"`) || !strings.Contains(body, "alertname: "+r.alert) {
			t.Errorf("test %s must check the alert and a quiet series at the threshold", r.alert)
		}
	}
}
