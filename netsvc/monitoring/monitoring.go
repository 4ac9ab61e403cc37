package monitoring

import (
	"bufio"
	"embed"
	"fmt"
	"net/url"
	"strings"
)

// Assets are the monitoring files: alerts.yml, alerts_test.yml,
// dashboard.json and metrics.txt.
//
//go:embed alerts.yml alerts_test.yml dashboard.json metrics.txt
var Assets embed.FS

// Source is where a metric is exported.
type Source string

// Sources of metrics.
const (
	Daemon   Source = "daemon"   // timenoded /metrics
	Sidecar  Source = "sidecar"  // Clock Refresh sidecar /metrics
	Textfile Source = "textfile" // node_exporter textfile from timenodectl
)

// Metric is one line of metrics.txt.
type Metric struct {
	Name    string
	Source  Source
	Pending bool // not exported yet
}

// ParseMetricsList reads metrics.txt: "NAME SOURCE [pending]" per line,
// "#" comments and blank lines ignored. Unknown sources, unknown marks
// and duplicates are errors.
func ParseMetricsList(text string) ([]Metric, error) {
	var out []Metric
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("monitoring: metrics.txt line %d: want NAME SOURCE [pending], got %q", n, line)
		}
		m := Metric{Name: f[0], Source: Source(f[1])}
		switch m.Source {
		case Daemon, Sidecar, Textfile:
		default:
			return nil, fmt.Errorf("monitoring: metrics.txt line %d: unknown source %q", n, f[1])
		}
		if len(f) == 3 {
			if f[2] != "pending" {
				return nil, fmt.Errorf("monitoring: metrics.txt line %d: unknown mark %q", n, f[2])
			}
			m.Pending = true
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("monitoring: metrics.txt line %d: duplicate %s", n, m.Name)
		}
		seen[m.Name] = true
		out = append(out, m)
	}
	return out, nil
}

// keywords are never metric names; aggregation operators are listed
// because "sum by (l) (…)" separates them from their parenthesis.
var keywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

// grouping keywords take a parenthesised label list.
var grouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// MetricNames returns the metric names a PromQL expression selects, in
// order of appearance: identifiers that are not functions, keywords,
// label names inside {…} or grouping lists, durations inside […] or
// string contents.
func MetricNames(expr string) []string {
	var out []string
	seen := map[string]bool{}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '{':
			i = skipTo(expr, i, '}')
		case c == '[':
			i = skipTo(expr, i, ']')
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			switch {
			case grouping[word]:
				if k < len(expr) && expr[k] == '(' {
					j = skipTo(expr, k, ')')
				}
			case keywords[word]:
			case k < len(expr) && expr[k] == '(':
				// a function call
			case !seen[word]:
				seen[word] = true
				out = append(out, word)
			}
			i = j
		case c >= '0' && c <= '9':
			// numbers, including 1e3 and 0x1f: skip the whole literal
			j := i
			for j < len(expr) && (isIdent(expr[j]) || expr[j] == '.') {
				j++
			}
			i = j
		default:
			i++
		}
	}
	return out
}

// skipTo returns the index after the close byte matching expr[i],
// skipping quoted strings.
func skipTo(expr string, i int, close byte) int {
	for j := i + 1; j < len(expr); j++ {
		switch expr[j] {
		case '"', '\'', '`':
			q := expr[j]
			for j++; j < len(expr) && expr[j] != q; j++ {
				if expr[j] == '\\' && q != '`' {
					j++
				}
			}
		case close:
			return j + 1
		}
	}
	return len(expr)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// RunbookPrefix starts every runbook_url in alerts.yml: a path relative to
// the repository root, which Alertmanager's users cannot open.
const RunbookPrefix = "docs/runbooks/"

// AlertsWithRunbookBase returns alerts.yml with every runbook_url made
// absolute: base (an http, https or file URL of the repository root or
// of the published docs, ending in "/") joined with the relative path.
func AlertsWithRunbookBase(base string) ([]byte, error) {
	u, err := url.Parse(base)
	if err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") || !strings.HasSuffix(base, "/") {
		return nil, fmt.Errorf("monitoring: runbook base %q: want an absolute http(s) or file URL ending in /, e.g. https://git.example.com/timenode/-/raw/v0.2.0/", base)
	}
	text, err := Assets.ReadFile("alerts.yml")
	if err != nil {
		return nil, err
	}
	const key = "runbook_url: "
	lines := strings.Split(string(text), "\n")
	n := 0
	for i, l := range lines {
		indent, rest, ok := strings.Cut(l, key)
		if !ok || strings.TrimSpace(indent) != "" {
			continue
		}
		if !strings.HasPrefix(rest, RunbookPrefix) {
			return nil, fmt.Errorf("monitoring: alerts.yml line %d: runbook_url %q is not under %s", i+1, rest, RunbookPrefix)
		}
		lines[i] = indent + key + base + rest
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("monitoring: alerts.yml has no runbook_url")
	}
	return []byte(strings.Join(lines, "\n")), nil
}
