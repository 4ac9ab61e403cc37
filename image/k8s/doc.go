// Package k8s holds what the refresh sidecar needs where clients run in
// Kubernetes: the OCI image builder (sidecarimage, cmd/sidecar-image), the
// static manifests (manifests/) and the Helm chart
// (chart/timenode-refresh/), each tested offline by `go test ./...` in this
// directory. It is a module of its own so that Helm, the Kubernetes API
// types and go-containerregistry stay out of the appliance's go.mod.
package k8s
