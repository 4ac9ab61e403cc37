package sidecarimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// testCommit is stamped instead of HEAD so that the test does not depend
// on the checkout's state.
const testCommit = "0123456789abcdef0123456789abcdef01234567"

func source(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module github.com/aunsorm/timenode\n") {
		t.Fatalf("%s is not the timenode checkout: %v", src, err)
	}
	return src
}

func TestImage(t *testing.T) {
	src := source(t)
	img, info, err := Build(context.Background(), Options{Source: src, Commit: testCommit})
	if err != nil {
		t.Fatal(err)
	}
	release, err := ReadRelease(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := release + "+" + testCommit[:12]; info.Version != want {
		t.Fatalf("Version = %q, want %q", info.Version, want)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}

	t.Run("media types", func(t *testing.T) {
		mt, err := img.MediaType()
		if err != nil || mt != types.OCIManifestSchema1 {
			t.Errorf("manifest media type = %q, %v; want %q", mt, err, types.OCIManifestSchema1)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("config media type = %q", m.Config.MediaType)
		}
		if got := m.Annotations[LabelRevision]; got != testCommit {
			t.Errorf("manifest annotation %s = %q, want %q", LabelRevision, got, testCommit)
		}
	})

	t.Run("config", func(t *testing.T) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		uid, gid, ok := strings.Cut(cf.Config.User, ":")
		if u, err := strconv.Atoi(uid); !ok || err != nil || u == 0 {
			t.Errorf("User = %q, want a numeric non-root uid:gid", cf.Config.User)
		}
		if g, err := strconv.Atoi(gid); err != nil || g == 0 {
			t.Errorf("User = %q, want a numeric non-root gid", cf.Config.User)
		}
		want := []string{"/timenodectl", "refresh", "--listen", "0.0.0.0:50011"}
		if !reflect.DeepEqual(cf.Config.Entrypoint, want) || len(cf.Config.Cmd) != 0 {
			t.Errorf("Entrypoint, Cmd = %q, %q; want %q and no Cmd", cf.Config.Entrypoint, cf.Config.Cmd, want)
		}
		if cf.OS != "linux" || cf.Architecture != info.Arch {
			t.Errorf("platform = %s/%s, want linux/%s", cf.OS, cf.Architecture, info.Arch)
		}
		if _, ok := cf.Config.ExposedPorts["50011/tcp"]; !ok {
			t.Errorf("ExposedPorts = %v, want 50011/tcp", cf.Config.ExposedPorts)
		}
		if cf.Config.Labels[LabelVersion] != info.Version || cf.Config.Labels[LabelRevision] != testCommit {
			t.Errorf("labels = %v, want version %s and revision %s", cf.Config.Labels, info.Version, testCommit)
		}
	})

	bin := onlyFile(t, img)

	t.Run("static binary", func(t *testing.T) {
		f, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("timenodectl has a program interpreter: the empty base has no dynamic loader")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) != 0 {
			t.Errorf("timenodectl needs shared libraries %v", libs)
		}
	})

	t.Run("binary runs and says the labelled version", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "timenodectl")
		if err := os.WriteFile(p, bin, 0o555); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(p, "version").Output()
		if err != nil {
			t.Fatalf("timenodectl version: %v", err)
		}
		f := strings.Fields(string(out))
		if len(f) < 4 || f[0] != "timenodectl" || f[1] != info.Version || f[3] != testCommit+"," {
			t.Errorf("timenodectl version printed %q, want timenodectl %s (commit %s, …)", out, info.Version, testCommit)
		}
	})

	t.Run("layout and tarball read back", func(t *testing.T) {
		want, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.NewTag("registry.example/timenode-refresh:" + release)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := WriteLayout(filepath.Join(dir, "layout"), ref, img); err != nil {
			t.Fatal(err)
		}
		idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "layout"))
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 1 || im.Manifests[0].Digest != want || im.Manifests[0].Annotations[refNameAnnotation] != release {
			t.Errorf("layout index = %+v, want one manifest %s named %s", im.Manifests, want, release)
		}
		tarPath := filepath.Join(dir, "img.tar")
		if err := WriteTarball(tarPath, ref, img); err != nil {
			t.Fatal(err)
		}
		back, err := tarball.ImageFromPath(tarPath, &ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(back); err != nil {
			t.Errorf("tarball image: %v", err)
		}
		// A tarball keeps layers and config, not the manifest's
		// annotations, so compare what a runtime uses.
		c1, _ := img.ConfigName()
		c2, err := back.ConfigName()
		if err != nil || c1 != c2 {
			t.Errorf("tarball config %s, %v; want %s", c2, err, c1)
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		again, _, err := Build(context.Background(), Options{Source: src, Commit: testCommit})
		if err != nil {
			t.Fatal(err)
		}
		d1, _ := img.Digest()
		d2, err := again.Digest()
		if err != nil || d1 != d2 {
			t.Errorf("second build digest %s, %v; first %s", d2, err, d1)
		}
	})
}

// onlyFile checks that img has one layer holding only a root-owned,
// read-only, executable /timenodectl, and returns its bytes.
func onlyFile(t *testing.T, img v1.Image) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var bin []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if base := filepath.Base(h.Name); base == "sh" || base == "bash" || base == "busybox" {
			t.Errorf("layer has a shell: %s", h.Name)
		}
		if h.Name != "timenodectl" {
			t.Errorf("layer has %q (type %c); want only timenodectl", h.Name, h.Typeflag)
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode != BinaryMode || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("timenodectl: type %c mode %o owner %d:%d; want a regular file, mode 555, root-owned", h.Typeflag, h.Mode, h.Uid, h.Gid)
		}
		if bin, err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	if bin == nil {
		t.Fatal("layer has no timenodectl")
	}
	return bin
}

func TestBuildErrors(t *testing.T) {
	if _, err := ReadRelease(t.TempDir()); err == nil {
		t.Error("ReadRelease of an empty directory: no error")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "cmd", "internal", "version")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "version.go"), []byte("package version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRelease(dir); err == nil || !strings.Contains(err.Error(), "no const Release") {
		t.Errorf("ReadRelease without the constant: %v", err)
	}
	if got := headCommit(context.Background(), dir); got != "unknown" {
		t.Errorf("headCommit outside git = %q, want unknown", got)
	}
	// A tree with a release but no cmd/timenodectl: the go build error
	// comes back, not an image.
	if err := os.WriteFile(filepath.Join(p, "version.go"), []byte("package version\n\nconst Release = \"9.9.9\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Build(context.Background(), Options{Source: dir, Commit: testCommit}); err == nil || !strings.Contains(err.Error(), "go build") {
		t.Errorf("Build of a tree without timenodectl: %v", err)
	}
}
