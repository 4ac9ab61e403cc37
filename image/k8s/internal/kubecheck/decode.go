// Package kubecheck decodes Kubernetes manifests strictly into the
// k8s.io/api types and checks the refresh sidecar's container and
// NetworkPolicy against what the sidecar and its image are. The chart's
// and the static manifests' tests share it.
package kubecheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// decoder knows only the kinds the sidecar's manifests may hold, so that
// any other kind fails too.
var decoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	// Strict: unknown fields, fields in the wrong case and duplicate keys
	// are errors, not silently dropped as kubectl apply would.
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// Decode decodes every document of a YAML stream (documents holding only
// comments are skipped) into its typed object.
func Decode(data []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var probe any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if probe == nil {
			continue
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d (%v): %w", i, gvk, err)
		}
		objs = append(objs, obj)
	}
}

// Objects are decoded objects sorted by kind.
type Objects struct {
	Deployments     []*appsv1.Deployment
	NetworkPolicies []*networkingv1.NetworkPolicy
	Other           []runtime.Object
}

// Sort sorts objs by kind.
func Sort(objs []runtime.Object) Objects {
	var o Objects
	for _, obj := range objs {
		switch v := obj.(type) {
		case *appsv1.Deployment:
			o.Deployments = append(o.Deployments, v)
		case *networkingv1.NetworkPolicy:
			o.NetworkPolicies = append(o.NetworkPolicies, v)
		default:
			o.Other = append(o.Other, obj)
		}
	}
	return o
}
