package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMonitoringExport(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   string // a substring
		stderror string
	}{
		{[]string{"alerts", "--runbook-base", "https://git.example.com/t/-/raw/v1/"}, 0, "runbook_url: https://git.example.com/t/-/raw/v1/docs/runbooks/", ""},
		{[]string{"alerts"}, 2, "", "--runbook-base is required"},
		{[]string{"alerts", "--runbook-base", "docs/"}, 1, "", "want an absolute"},
		{[]string{"dashboard"}, 0, `"panels"`, ""},
		{[]string{"nonsense"}, 2, "", "usage:"},
		{nil, 2, "", "usage:"},
	} {
		var out, errOut bytes.Buffer
		code := dispatch(append([]string{"monitoring"}, tc.args...), &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderror) {
			t.Errorf("monitoring %v: exit %d, stdout %.80q, stderr %q", tc.args, code, out.String(), errOut.String())
		}
		if len(tc.args) > 0 && tc.args[0] == "dashboard" && code == 0 && !json.Valid(out.Bytes()) {
			t.Error("the dashboard is not JSON")
		}
	}
}
