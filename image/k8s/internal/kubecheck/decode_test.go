package kubecheck

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const policy = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
spec:
  podSelector: {matchLabels: {a: b}}
`

func TestDecodeIsStrict(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown field", policy + "  policyType: [Ingress]\n", `unknown field "spec.policyType"`},
		{"field in the wrong case", policy + "  PolicyTypes: [Ingress]\n", `unknown field "spec.PolicyTypes"`},
		{"duplicate key", policy + "  podSelector: {}\n", "podSelector"},
		{"a kind the sidecar has no use for", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n", "no kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte("# comment only\n---\n" + tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v; want an error with %q", err, tc.want)
			}
		})
	}
	objs, err := Decode([]byte("# only a comment\n---\n" + policy + "---\n"))
	if err != nil || len(Sort(objs).NetworkPolicies) != 1 {
		t.Errorf("Decode of a valid policy: %d objects, %v", len(objs), err)
	}
}

func TestReadSidecar(t *testing.T) {
	sc, err := ReadSidecar(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AUNSORM_CLOCK_REFRESH_URL", "AUNSORM_CLOCK_MAX_AGE_SECS", "CREDENTIALS_DIRECTORY"} {
		if !slices.Contains(sc.Env, want) {
			t.Errorf("Env %q lacks %s", sc.Env, want)
		}
	}
	if !slices.Contains(sc.Files, "refresh-client.key") {
		t.Errorf("Files %q lack refresh-client.key", sc.Files)
	}
	if _, err := ReadSidecar(t.TempDir()); err == nil {
		t.Error("ReadSidecar of an empty tree: no error")
	}
}
