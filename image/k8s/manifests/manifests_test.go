// Package manifests_test decodes the static manifests strictly into the
// Kubernetes API types, checks them as the chart's output is checked, and
// keeps them equal to what the chart renders for the same settings.
package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/aunsorm/timenode/image/k8s/internal/kubecheck"
)

func decodeFile(t *testing.T, name string) []runtime.Object {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kubecheck.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return objs
}

func static(t *testing.T) kubecheck.Objects {
	t.Helper()
	o := kubecheck.Sort(append(decodeFile(t, "deployment-sidecar.yaml"), decodeFile(t, "networkpolicy.yaml")...))
	if len(o.Deployments) != 1 || len(o.NetworkPolicies) != 1 || len(o.Other) != 0 {
		t.Fatalf("%d Deployments, %d NetworkPolicies, %d others; want one each", len(o.Deployments), len(o.NetworkPolicies), len(o.Other))
	}
	return o
}

func TestStaticManifests(t *testing.T) {
	sc, err := kubecheck.ReadSidecar(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	o := static(t)
	d := o.Deployments[0]
	if _, errs := kubecheck.CheckPod(d.Spec.Template.Spec, sc); len(errs) != 0 {
		t.Error(errs)
	}
	np := o.NetworkPolicies[0]
	for _, err := range kubecheck.CheckNetworkPolicy(np, kubecheck.PolicyWant{NodeCIDRs: []string{"10.20.0.10/32", "10.20.1.10/32"}, NodePort: 5443}) {
		t.Error(err)
	}
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s, which the Deployment's pods do not carry", k, v)
		}
	}
}

// TestStaticMatchesChart renders the chart with the static manifests'
// settings: the sidecar container, its volume and the policy must be the
// same, so that neither drifts from the other.
func TestStaticMatchesChart(t *testing.T) {
	ch, err := loader.Load(filepath.Join("..", "chart", "timenode-refresh"))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{
		"url":           "https://ntp-attestation.prod.aunsorm:5443/attestation",
		"fingerprints":  []any{"3f2a9c1d4e5b6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b"},
		"networkPolicy": map[string]any{"timeNodeCIDRs": []any{"10.20.0.10/32", "10.20.1.10/32"}},
		"example":       map[string]any{"enabled": true, "fsGroup": 1001},
	}
	manifest, err := kubecheck.Render(ch, vals, "auth-service", "security")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kubecheck.Decode([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	r, s := kubecheck.Sort(objs), static(t)
	if len(r.Deployments) != 1 || len(r.NetworkPolicies) != 1 {
		t.Fatalf("chart rendered %d Deployments, %d NetworkPolicies", len(r.Deployments), len(r.NetworkPolicies))
	}
	rs, ss := r.Deployments[0].Spec.Template.Spec, s.Deployments[0].Spec.Template.Spec
	same(t, "sidecar container", sidecarOf(t, rs), sidecarOf(t, ss))
	same(t, "volumes", rs.Volumes, ss.Volumes)
	same(t, "pod security context", rs.SecurityContext, ss.SecurityContext)
	same(t, "pod labels", r.Deployments[0].Spec.Template.Labels, s.Deployments[0].Spec.Template.Labels)
	same(t, "NetworkPolicy spec", r.NetworkPolicies[0].Spec, s.NetworkPolicies[0].Spec)
}

func sidecarOf(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == kubecheck.SidecarName {
			return c
		}
	}
	t.Fatal("no sidecar container")
	return corev1.Container{}
}

func same(t *testing.T, what string, chart, static any) {
	t.Helper()
	if !equality.Semantic.DeepEqual(chart, static) {
		t.Errorf("%s differs:\nchart  %s\nstatic %s", what, fmt.Sprintf("%+v", chart), fmt.Sprintf("%+v", static))
	}
}
