package sidecarimage

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refNameAnnotation names an image inside an OCI layout (what `crane` and
// `skopeo copy oci:DIR:REF` look up).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes img as an OCI image layout in dir, replacing what was
// there, with ref's tag as its reference name.
func WriteLayout(dir string, ref name.Tag, img v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("sidecarimage: layout %s: %w", dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: ref.TagStr()})); err != nil {
		return fmt.Errorf("sidecarimage: layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes img as a `docker load`/`crane push` tarball tagged
// ref, through a temporary file so that a failed write leaves no half
// tarball behind.
func WriteTarball(path string, ref name.Tag, img v1.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sidecar-image-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(ref, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("sidecarimage: tarball %s: %w", path, err)
	}
	// CreateTemp made it 0600; a tarball is no secret.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
