package sidecarimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What every image of the sidecar is; the chart and the manifests are
// tested against these.
const (
	// BinaryPath is where timenodectl lies in the image, the only file.
	BinaryPath = "/timenodectl"
	// BinaryMode lets anyone run the binary and nobody write it, so the
	// non-root user cannot replace it even on a writable root.
	BinaryMode = 0o555
	// UID and GID are the numeric user the sidecar runs as ("nonroot" in
	// distroless images); numeric, so that no /etc/passwd is needed and
	// the kubelet can check runAsNonRoot.
	UID, GID = 65532, 65532
	// Port is the sidecar's /health and /metrics port (the runbook's
	// auth-service:50011/health).
	Port = 50011
)

// Entrypoint is the image's entrypoint. It listens on all addresses of
// the pod's network namespace, not on loopback: the kubelet's httpGet
// probes and the runbook's `curl auth-service…:50011/health` arrive on
// the pod IP, and the NetworkPolicy, not the bind address, says who may
// reach the port.
var Entrypoint = []string{BinaryPath, "refresh", "--listen", fmt.Sprintf("0.0.0.0:%d", Port)}

// The OCI annotation keys used as labels and manifest annotations.
const (
	LabelTitle    = "org.opencontainers.image.title"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelDesc     = "org.opencontainers.image.description"
)

// Options say what to build.
type Options struct {
	// Source is the timenode checkout (the directory of the main go.mod).
	Source string
	// Arch is the GOARCH of the image (default: this machine's).
	Arch string
	// Commit is the full commit hash stamped into the binary and the
	// labels; empty means the checkout's HEAD, and "unknown" without git.
	Commit string
	// Go is the go command (default "go").
	Go string
}

// Info describes a built image.
type Info struct {
	Version string // as `timenodectl version` prints it: 0.2.0+3f2a9c1d4e5b
	Release string // the source tree's release: 0.2.0
	Commit  string
	Arch    string
}

// epoch is the image's creation time: fixed, so that the same source
// gives the same digest.
var epoch = v1.Time{Time: time.Unix(0, 0).UTC()}

// Build compiles timenodectl and returns the sidecar image.
func Build(ctx context.Context, o Options) (v1.Image, Info, error) {
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if o.Go == "" {
		o.Go = "go"
	}
	release, err := ReadRelease(o.Source)
	if err != nil {
		return nil, Info{}, err
	}
	if o.Commit == "" {
		o.Commit = headCommit(ctx, o.Source)
	}
	info := Info{Release: release, Commit: o.Commit, Arch: o.Arch, Version: release}
	if o.Commit != "unknown" {
		info.Version += "+" + o.Commit[:min(12, len(o.Commit))]
	}
	bin, err := buildBinary(ctx, o)
	if err != nil {
		return nil, Info{}, err
	}
	img, err := assemble(bin, info)
	return img, info, err
}

// releaseRE finds the release constant the version package declares;
// that package is internal to cmd/, so it is read, as image/build.sh does.
var releaseRE = regexp.MustCompile(`(?m)^const Release = "([^"]+)"$`)

// ReadRelease returns the release of the checkout at src.
func ReadRelease(src string) (string, error) {
	p := filepath.Join(src, "cmd", "internal", "version", "version.go")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("sidecarimage: release: %w", err)
	}
	m := releaseRE.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("sidecarimage: no const Release in %s", p)
	}
	return string(m[1]), nil
}

// headCommit is the checkout's HEAD, or "unknown" when it is no git
// checkout (a source archive).
func headCommit(ctx context.Context, src string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", src, "rev-parse", "HEAD").Output()
	if c := strings.TrimSpace(string(out)); err == nil && c != "" {
		return c
	}
	return "unknown"
}

// buildBinary compiles a static timenodectl the way image/build.sh does:
// no cgo, -trimpath, the commit stamped with -X instead of VCS stamping,
// so the same source and commit give the same bytes.
func buildBinary(ctx context.Context, o Options) ([]byte, error) {
	dir, err := os.MkdirTemp("", "sidecar-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "timenodectl")
	ldflags := "-s -X github.com/aunsorm/timenode/cmd/internal/version.commit=" + o.Commit
	if o.Commit == "unknown" {
		ldflags = "-s"
	}
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags, "-o", out, "./cmd/timenodectl")
	cmd.Dir = o.Source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("sidecarimage: go build ./cmd/timenodectl: %w\n%s", err, stderr.Bytes())
	}
	return os.ReadFile(out)
}

// assemble puts the binary on an empty base with the sidecar's config.
func assemble(bin []byte, info Info) (v1.Image, error) {
	layerTar, err := singleFileTar(strings.TrimPrefix(BinaryPath, "/"), BinaryMode, bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("sidecarimage: layer: %w", err)
	}
	// empty.Image speaks Docker media types; the layout and registries
	// get an OCI image.
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: plainLayer{layer}, MediaType: types.OCILayer,
		History: v1.History{Created: epoch, CreatedBy: "timenode image/k8s/cmd/sidecar-image", Comment: "timenodectl " + info.Version}})
	if err != nil {
		return nil, fmt.Errorf("sidecarimage: append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	labels := Labels(info)
	cf.Created = epoch
	cf.OS, cf.Architecture = "linux", info.Arch
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", UID, GID),
		Entrypoint:   Entrypoint,
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}},
		Labels:       labels,
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("sidecarimage: config: %w", err)
	}
	annotated, ok := mutate.Annotations(img, labels).(v1.Image)
	if !ok {
		return nil, errors.New("sidecarimage: annotations did not keep an image")
	}
	return annotated, nil
}

// plainLayer hides the tarball layer's own descriptor, whose empty
// annotation map would make the in-memory manifest differ from its bytes
// (validate.Image fails); the descriptor is then made from the digest,
// size and media type alone.
type plainLayer struct{ v1.Layer }

// Labels are the image's labels (and manifest annotations) for info.
func Labels(info Info) map[string]string {
	return map[string]string{
		LabelTitle:    "timenode-refresh",
		LabelVersion:  info.Version,
		LabelRevision: info.Commit,
		LabelDesc:     "timenodectl refresh: the Clock Refresh Service sidecar (verified attestations, /health and /metrics on :50011)",
	}
}

// singleFileTar is a layer holding one root-owned file and nothing else:
// no directories, no shell, no /etc.
func singleFileTar(name string, mode int64, content []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content)),
		ModTime: epoch.Time}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
