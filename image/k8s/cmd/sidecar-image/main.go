// Command sidecar-image builds the refresh sidecar's OCI image without a
// container engine and writes it as an OCI layout directory and/or a
// tarball for `docker load`, `crane push` or `skopeo copy`:
//
//	go run ./cmd/sidecar-image -src ../.. -layout DIR -tar FILE
//
// It prints the image's reference, digest and size.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/aunsorm/timenode/image/k8s/sidecarimage"
)

func main() {
	src := flag.String("src", "../..", "the timenode checkout (where the main go.mod is)")
	arch := flag.String("arch", "", "GOARCH of the image (default: this machine's)")
	commit := flag.String("commit", os.Getenv("TIMENODE_COMMIT"), "commit stamped into the binary and labels (default: $TIMENODE_COMMIT, else the checkout's HEAD)")
	repo := flag.String("repo", "registry.aunsorm.local/timenode-refresh", "repository of the image's reference")
	tag := flag.String("tag", "", "tag of the image's reference (default: the release, e.g. 0.2.0)")
	layoutDir := flag.String("layout", "", "write an OCI image layout to this directory")
	tarPath := flag.String("tar", "", "write a tarball to this file")
	flag.Parse()
	if flag.NArg() != 0 || (*layoutDir == "" && *tarPath == "") {
		fmt.Fprintln(os.Stderr, "usage: sidecar-image [-src DIR] [-arch GOARCH] [-tag TAG] -layout DIR and/or -tar FILE")
		os.Exit(2)
	}
	if err := run(*src, *arch, *commit, *repo, *tag, *layoutDir, *tarPath); err != nil {
		fmt.Fprintf(os.Stderr, "sidecar-image: %v\n", err)
		os.Exit(1)
	}
}

func run(src, arch, commit, repo, tag, layoutDir, tarPath string) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	img, info, err := sidecarimage.Build(context.Background(), sidecarimage.Options{Source: abs, Arch: arch, Commit: commit})
	if err != nil {
		return err
	}
	if tag == "" {
		tag = info.Release
	}
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		return err
	}
	if layoutDir != "" {
		if err := sidecarimage.WriteLayout(layoutDir, ref, img); err != nil {
			return err
		}
	}
	if tarPath != "" {
		if err := os.MkdirAll(filepath.Dir(tarPath), 0o755); err != nil {
			return err
		}
		if err := sidecarimage.WriteTarball(tarPath, ref, img); err != nil {
			return err
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	size, err := imageSize(img)
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s linux/%s version %s, %d bytes compressed\n", ref, digest, info.Arch, info.Version, size)
	return nil
}

// imageSize is what a pull transfers: manifest, config and layers.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	c, err := img.RawConfigFile()
	if err != nil {
		return 0, err
	}
	n := int64(len(m) + len(c))
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		n += s
	}
	return n, nil
}
