// Package chart_test renders the timenode-refresh Helm chart with Helm's
// own packages, offline, lints it, and decodes every rendered object
// strictly into the Kubernetes API types.
package chart_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/aunsorm/timenode/image/k8s/internal/kubecheck"
	"github.com/aunsorm/timenode/image/k8s/sidecarimage"
)

const chartDir = "timenode-refresh"

var (
	nodeURL = "https://ntp-attestation.prod.aunsorm:5443/attestation"
	fps     = []any{
		"3f2a9c1d4e5b6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b",
		"AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
	}
	cidrs = []any{"10.20.0.10/32", "10.20.1.10/32"}
)

// values are what an operator sets, as `--set`/`-f` would give them.
func values(t *testing.T, overrides string) map[string]any {
	t.Helper()
	v := map[string]any{
		"url":           nodeURL,
		"fingerprints":  fps,
		"networkPolicy": map[string]any{"timeNodeCIDRs": cidrs},
		"example":       map[string]any{"enabled": true},
	}
	if overrides != "" {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(overrides), &o); err != nil {
			t.Fatal(err)
		}
		v = merge(v, o)
	}
	return v
}

// merge overlays o on v, maps recursively, as Helm merges values files.
func merge(v, o map[string]any) map[string]any {
	out := maps.Clone(v)
	for k, ov := range o {
		if om, ok := ov.(map[string]any); ok {
			if vm, ok := out[k].(map[string]any); ok {
				out[k] = merge(vm, om)
				continue
			}
		}
		out[k] = ov
	}
	return out
}

func load(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func sidecar(t *testing.T) kubecheck.Sidecar {
	t.Helper()
	sc, err := kubecheck.ReadSidecar(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// render renders and strictly decodes the chart.
func render(t *testing.T, ch *chart.Chart, vals map[string]any) kubecheck.Objects {
	t.Helper()
	manifest, err := kubecheck.Render(ch, vals, "auth-service", "security")
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := kubecheck.Decode([]byte(manifest))
	if err != nil {
		t.Fatalf("strict decode: %v\n%s", err, manifest)
	}
	return kubecheck.Sort(objs)
}

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vals     map[string]any
		wantFail string
	}{
		{"chart defaults", nil, ""},
		{"operator values", values(t, ""), ""},
		// Lint judges values by the schema too.
		{"over the runbook's max age", values(t, "maxAgeSeconds: 60"), "maxAgeSeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures, info := kubecheck.Lint(chartDir, tc.vals, "security")
			if tc.wantFail != "" {
				if !strings.Contains(strings.Join(failures, "\n"), tc.wantFail) {
					t.Errorf("helm lint --strict: %q; want a failure naming %s", failures, tc.wantFail)
				}
				return
			}
			if len(failures) != 0 {
				t.Errorf("helm lint --strict:\n%s", strings.Join(failures, "\n"))
			}
			for _, m := range info {
				t.Log(m)
			}
		})
	}
}

func TestRender(t *testing.T) {
	sc := sidecar(t)
	o := render(t, load(t), values(t, ""))
	if len(o.Deployments) != 1 || len(o.NetworkPolicies) != 1 || len(o.Other) != 0 {
		t.Fatalf("rendered %d Deployments, %d NetworkPolicies, %d others; want one each and nothing else",
			len(o.Deployments), len(o.NetworkPolicies), len(o.Other))
	}
	d := o.Deployments[0]
	spec := d.Spec.Template.Spec
	secret, errs := kubecheck.CheckPod(spec, sc)
	for _, err := range errs {
		t.Error(err)
	}
	if secret != "timenode-refresh-credentials" {
		t.Errorf("secret %q", secret)
	}
	c := spec.Containers[slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == kubecheck.SidecarName })]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	want := map[string]string{
		"AUNSORM_CLOCK_REFRESH_URL":           nodeURL,
		"AUNSORM_CLOCK_REFRESH_INTERVAL_SECS": "15",
		"AUNSORM_CLOCK_MAX_AGE_SECS":          "30",
		"AUNSORM_CALIBRATION_FINGERPRINT":     fps[0].(string) + "," + fps[1].(string),
		"CREDENTIALS_DIRECTORY":               "/run/credentials/timenode-refresh",
	}
	if !maps.Equal(env, want) {
		t.Errorf("env %v\nwant %v", env, want)
	}
	if !slices.Equal(c.Args, []string{"--production"}) {
		t.Errorf("args %q, want --production", c.Args)
	}
	release, err := sidecarimage.ReadRelease(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if want := "registry.aunsorm.local/timenode-refresh:" + release; c.Image != want {
		t.Errorf("image %q, want %q (the chart's appVersion is the release)", c.Image, want)
	}
	if !maps.Equal(d.Spec.Template.Labels, map[string]string{"app": "auth-service", "timenode.aunsorm/refresh-sidecar": "true"}) {
		t.Errorf("pod labels %v", d.Spec.Template.Labels)
	}
	np := o.NetworkPolicies[0]
	for _, err := range kubecheck.CheckNetworkPolicy(np, kubecheck.PolicyWant{NodeCIDRs: []string{"10.20.0.10/32", "10.20.1.10/32"}, NodePort: 5443}) {
		t.Error(err)
	}
	// The policy must select the example's pods, or it protects nothing.
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s, which the pods do not carry", k, v)
		}
	}
	if np.Namespace != "security" || np.Name != "auth-service-timenode-refresh" {
		t.Errorf("NetworkPolicy %s/%s", np.Namespace, np.Name)
	}
}

func TestRenderVariants(t *testing.T) {
	sc := sidecar(t)
	ch := load(t)
	for _, tc := range []struct {
		name, overrides string
		check           func(t *testing.T, o kubecheck.Objects)
	}{
		{"native sidecar", "nativeSidecar: true", func(t *testing.T, o kubecheck.Objects) {
			spec := o.Deployments[0].Spec.Template.Spec
			if len(spec.InitContainers) != 1 || len(spec.Containers) != 1 {
				t.Fatalf("%d init containers, %d containers; want the sidecar as the one init container", len(spec.InitContainers), len(spec.Containers))
			}
			if _, errs := kubecheck.CheckPod(spec, sc); len(errs) != 0 {
				t.Error(errs)
			}
		}},
		{"URL without a port", "url: https://ntp-attestation.prod.aunsorm/attestation", func(t *testing.T, o kubecheck.Objects) {
			if errs := kubecheck.CheckNetworkPolicy(o.NetworkPolicies[0], kubecheck.PolicyWant{NodeCIDRs: []string{"10.20.0.10/32", "10.20.1.10/32"}, NodePort: 443}); len(errs) != 0 {
				t.Error(errs)
			}
		}},
		{"image by digest", "image: {digest: sha256:" + strings.Repeat("ab", 32) + "}", func(t *testing.T, o kubecheck.Objects) {
			c := o.Deployments[0].Spec.Template.Spec.Containers[1]
			if want := "registry.aunsorm.local/timenode-refresh@sha256:" + strings.Repeat("ab", 32); c.Image != want {
				t.Errorf("image %q, want %q", c.Image, want)
			}
		}},
		{"readiness off, old nodes", "{probes: {readiness: {enabled: false}}, ed25519Only: true, production: false, fingerprints: []}", func(t *testing.T, o kubecheck.Objects) {
			c := o.Deployments[0].Spec.Template.Spec.Containers[1]
			if c.ReadinessProbe != nil || c.LivenessProbe == nil {
				t.Errorf("readiness %v, liveness %v; want only liveness", c.ReadinessProbe, c.LivenessProbe)
			}
			if !slices.Equal(c.Args, []string{"--ed25519-only"}) {
				t.Errorf("args %q", c.Args)
			}
			for _, e := range c.Env {
				if e.Name == "AUNSORM_CALIBRATION_FINGERPRINT" {
					t.Errorf("fingerprint set to %q with none given", e.Value)
				}
			}
		}},
		{"no NetworkPolicy", "networkPolicy: {enabled: false, timeNodeCIDRs: []}", func(t *testing.T, o kubecheck.Objects) {
			if len(o.NetworkPolicies) != 0 {
				t.Errorf("%d NetworkPolicies", len(o.NetworkPolicies))
			}
		}},
		{"only the policy", "example: {enabled: false}", func(t *testing.T, o kubecheck.Objects) {
			if len(o.Deployments) != 0 || len(o.NetworkPolicies) != 1 {
				t.Errorf("%d Deployments, %d NetworkPolicies", len(o.Deployments), len(o.NetworkPolicies))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, render(t, ch, values(t, tc.overrides))) })
	}
}

func TestRenderRefuses(t *testing.T) {
	ch := load(t)
	for _, tc := range []struct {
		name, overrides, want string
	}{
		{"no URL", `url: ""`, "url"},
		{"plain http", "url: http://ntp-attestation:5000/attestation", "url"},
		{"max age over the runbook's 30 s", "maxAgeSeconds: 60", "maxAgeSeconds"},
		{"production without a pin", "fingerprints: []", "fingerprints"},
		{"a fingerprint that is no SHA-256", "fingerprints: [abc]", "fingerprints"},
		{"no time node address", "networkPolicy: {timeNodeCIDRs: []}", "timeNodeCIDRs"},
		{"a policy over every pod", "networkPolicy: {podSelector: {matchLabels: null}}", "podSelector"},
		{"a misspelt value", "maxAgeSecs: 30", "maxAgeSecs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kubecheck.Render(ch, values(t, tc.overrides), "auth-service", "security")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %v; want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestAppChart is how an application's chart uses the sidecar: a
// dependency whose named templates it includes in its own Deployment.
func TestAppChart(t *testing.T) {
	app, err := loader.Load(filepath.Join("testdata", "app"))
	if err != nil {
		t.Fatal(err)
	}
	app.AddDependency(load(t))
	vals := map[string]any{"timenode-refresh": values(t, "example: {enabled: false}")}
	o := render(t, app, vals)
	if len(o.Deployments) != 1 || len(o.NetworkPolicies) != 1 || len(o.Other) != 0 {
		t.Fatalf("rendered %d Deployments, %d NetworkPolicies, %d others", len(o.Deployments), len(o.NetworkPolicies), len(o.Other))
	}
	d := o.Deployments[0]
	if d.Name != "payments" {
		t.Errorf("Deployment %q, want the app's own", d.Name)
	}
	if _, errs := kubecheck.CheckPod(d.Spec.Template.Spec, sidecar(t)); len(errs) != 0 {
		t.Error(errs)
	}
	for k, v := range o.NetworkPolicies[0].Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s, which the app's pods do not carry", k, v)
		}
	}
}

// TestChartSaysWhatTheSidecarIs keeps the chart's text in step with the
// source: the appVersion is the release, and values.yaml names every
// credential file the sidecar reads.
func TestChartSaysWhatTheSidecarIs(t *testing.T) {
	ch := load(t)
	release, err := sidecarimage.ReadRelease(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.AppVersion != release {
		t.Errorf("Chart.yaml appVersion %q, release %q", ch.Metadata.AppVersion, release)
	}
	helpers, err := os.ReadFile(filepath.Join(chartDir, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{{- define "timenode-refresh.appVersion" -}}` + release + `{{- end -}}`; !strings.Contains(string(helpers), want) {
		t.Errorf("_helpers.tpl lacks %s", want)
	}
	vals, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sidecar(t).Files {
		if !strings.Contains(string(vals), f) {
			t.Errorf("values.yaml does not name the credential file %s", f)
		}
	}
}
