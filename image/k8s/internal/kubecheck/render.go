package kubecheck

import (
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// KubeVersion is the cluster version charts are rendered and linted for:
// the oldest the native sidecar option needs on by default.
var KubeVersion = &chartutil.KubeVersion{Version: "v1.29.0", Major: "1", Minor: "29"}

// Render renders ch as `helm install --dry-run=client` does, offline,
// and returns its manifest (templates, not hooks, which the chart has none of).
func Render(ch *chart.Chart, vals map[string]any, release, namespace string) (string, error) {
	cfg := &action.Configuration{Releases: storage.Init(driver.NewMemory()), Log: func(string, ...any) {}}
	in := action.NewInstall(cfg)
	in.DryRun, in.ClientOnly = true, true
	in.ReleaseName, in.Namespace = release, namespace
	in.KubeVersion = KubeVersion
	rel, err := in.Run(ch, vals)
	if err != nil {
		return "", err
	}
	if len(rel.Hooks) != 0 {
		return "", fmt.Errorf("%d hooks rendered; the chart has none", len(rel.Hooks))
	}
	return rel.Manifest, nil
}

// Lint lints the chart in dir with vals as `helm lint --strict` does: it
// returns the warnings and errors, which fail that command, and the
// informational messages apart (such as "icon is recommended", for
// charts shown on a hub, which this one is not).
func Lint(dir string, vals map[string]any, namespace string) (failures, info []string) {
	l := lint.AllWithKubeVersion(dir, vals, namespace, KubeVersion)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			failures = append(failures, strings.TrimSpace(m.Error()))
		} else {
			info = append(info, strings.TrimSpace(m.Error()))
		}
	}
	return failures, info
}
