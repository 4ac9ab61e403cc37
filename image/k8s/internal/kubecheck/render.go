package kubecheck

import (
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// KubeVersion is the cluster version charts are rendered and linted for:
// the oldest the native sidecar option needs on by default.
var KubeVersion = &chartutil.KubeVersion{Version: "v1.29.0", Major: "1", Minor: "29"}

// Render renders ch as `helm template` and `helm install --dry-run=client`
// do, offline: dependencies enabled and their values merged, values
// coalesced and validated against the schema, templates rendered
// (NOTES.txt too, then left out) and sorted in install order. It calls
// the packages Helm's install action calls, not the action itself, whose
// Kubernetes client would double what a cold `go test` compiles.
func Render(ch *chart.Chart, vals map[string]any, release, namespace string) (string, error) {
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return "", err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *KubeVersion
	opts := chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, caps)
	if err != nil {
		return "", err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return "", err
	}
	for name := range files {
		if strings.HasSuffix(name, "/NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return "", err
	}
	if len(hooks) != 0 {
		return "", fmt.Errorf("%d hooks rendered; the chart has none", len(hooks))
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	return b.String(), nil
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
