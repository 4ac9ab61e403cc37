package slots_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

// needTools finds each (tool, Debian package) and returns where, with
// the PATH entry that puts their directories first (bundle.sh runs them
// by name).
func needTools(t *testing.T, tools ...[2]string) (map[string]string, string) {
	t.Helper()
	found := map[string]string{}
	var dirs []string
	for _, tool := range tools {
		found[tool[0]] = testbin.NeedTool(t, tool[0], tool[1])
		dirs = append(dirs, filepath.Dir(found[tool[0]]))
	}
	return found, "PATH=" + strings.Join(append(dirs, os.Getenv("PATH")), ":")
}

// rootFS makes an 8 MiB ext4 of tree at out, of blockSize blocks, with the
// read-only feature a root slot carries if readOnly.
func rootFS(t *testing.T, tools map[string]string, tree, out string, blockSize int, readOnly bool) {
	t.Helper()
	if b, err := exec.Command(tools["mkfs.ext4"], "-q", "-F", "-b", strconv.Itoa(blockSize), "-d", tree, out, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, b)
	}
	if !readOnly {
		return
	}
	if b, err := exec.Command(tools["tune2fs"], "-O", "read-only", out).CombinedOutput(); err != nil {
		t.Fatalf("tune2fs: %v\n%s", err, b)
	}
}

// incompressible is n bytes a compressor cannot shrink, as a real root's
// binaries are.
func incompressible(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7919 + i>>8*31)
	}
	return b
}

// pki makes an update CA and a signer it certifies, with openssl, in dir.
func pki(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	ca, cert, key = filepath.Join(dir, name+"-ca.pem"), filepath.Join(dir, name+"-signer.pem"), filepath.Join(dir, name+"-signer.key")
	cakey, csr, ext := filepath.Join(dir, name+"-ca.key"), filepath.Join(dir, name+".csr"), filepath.Join(dir, name+".ext")
	os.WriteFile(ext, []byte("basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n"), 0o644)
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=" + name + " update CA",
			"-keyout", cakey, "-out", ca, "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign"},
		{"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + name + " update signer", "-keyout", key, "-out", csr},
		{"x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", cert},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args[0], err, out)
		}
	}
	return ca, cert, key
}

// TestBundleIsSignedAndRefusedWhenBadOrCut builds a bundle with
// image/bundle.sh from a small root image and checks it with RAUC as the
// appliance does (rauc info against the update CA): it verifies and names
// its compatible and version; another CA's keyring and a truncated copy
// are refused.
func TestBundleIsSignedAndRefusedWhenBadOrCut(t *testing.T) {
	tools, path := needTools(t, [2]string{"rauc", "rauc"}, [2]string{"mksquashfs", "squashfs-tools"}, [2]string{"mkfs.ext4", "e2fsprogs"},
		[2]string{"tune2fs", "e2fsprogs"}, [2]string{"openssl", "openssl"}, [2]string{"veritysetup", "cryptsetup-bin"})
	dir := t.TempDir()
	build := filepath.Join(dir, "build")
	os.MkdirAll(filepath.Join(build, "tree/usr/lib/timenode/boot"), 0o755)
	// RAUC needs a payload larger than one verity block.
	os.WriteFile(filepath.Join(build, "tree/usr/lib/timenode/boot/vmlinuz"), incompressible(2<<20), 0o644)
	rootFS(t, tools, filepath.Join(build, "tree"), filepath.Join(build, "root.ext4"), 4096, true)
	os.WriteFile(filepath.Join(build, "version"), []byte("VERSION=0.3.0+test\nARCH=amd64\n"), 0o644)
	ca, cert, key := pki(t, dir, "update")
	other, _, _ := pki(t, dir, "other")

	cmd := exec.Command("../bundle.sh", build)
	cmd.Env = append(os.Environ(), path, "UPDATE_CA="+ca, "UPDATE_CERT="+cert, "UPDATE_KEY="+key)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bundle.sh: %v\n%s", err, out)
	}
	bundle := filepath.Join(build, "timenode-amd64-0.3.0+test.raucb")
	info := func(keyring, file string) (string, error) {
		out, err := exec.Command(tools["rauc"], "info", "--keyring", keyring, file).CombinedOutput()
		return string(out), err
	}
	out, err := info(ca, bundle)
	if err != nil {
		t.Fatalf("rauc info with the update CA: %v\n%s", err, out)
	}
	for _, want := range []string{"Compatible: \t'timenode-amd64'", "Version:    \t'0.3.0+test'", "Bundle Format: \tverity", "Filename:  root.ext4", "Hooks:     post-install"} {
		if !strings.Contains(out, want) {
			t.Errorf("rauc info lacks %q:\n%s", want, out)
		}
	}
	if out, err := info(other, bundle); err == nil || !strings.Contains(out, "signature verification failed") {
		t.Errorf("a bundle signed under another CA: err %v\n%s", err, out)
	}
	b, _ := os.ReadFile(bundle)
	cut := filepath.Join(dir, "cut.raucb")
	os.WriteFile(cut, b[:len(b)-4096], 0o644)
	if out, err := info(ca, cut); err == nil {
		t.Errorf("a truncated bundle verified:\n%s", out)
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		t.Error("the bundle contains a private key")
	}
}

// TestVeritySlot checks what image/bundle.sh --verity makes for a root
// slot, with the tools the initramfs uses: the descriptor's signature
// verifies against the update CA and not against another; the slot image
// matches the signed root hash and, with one byte of its file system
// flipped, does not; a CA given without its signer and a file system of
// blocks smaller than the verity device's are refused.
func TestVeritySlot(t *testing.T) {
	tools, path := needTools(t, [2]string{"veritysetup", "cryptsetup-bin"}, [2]string{"mkfs.ext4", "e2fsprogs"}, [2]string{"tune2fs", "e2fsprogs"}, [2]string{"openssl", "openssl"})
	dir := t.TempDir()
	ca, cert, key := pki(t, dir, "update")
	other, _, _ := pki(t, dir, "other")
	slot, desc, _ := verifiedSlot(t, tools, path, dir, "root", ca, cert, key)
	root := filepath.Join(dir, "root.ext4")
	verity := func(env ...string) (string, error) {
		cmd := exec.Command("../bundle.sh", "--verity", root, slot, desc)
		cmd.Env = append(os.Environ(), append([]string{path}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	env, err := os.ReadFile(filepath.Join(desc, "verity.env"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^ROOT_HASH=([0-9a-f]{64})\nHASH_OFFSET=([0-9]+)\nDATA_BLOCKS=([0-9]+)\n$`).FindStringSubmatch(string(env))
	if m == nil {
		t.Fatalf("verity.env:\n%s", env)
	}
	if m[2] != strconv.Itoa(8<<20) || m[3] != strconv.Itoa(8<<20/4096) {
		t.Errorf("hash offset %s, data blocks %s: want the whole 8 MiB file system, then the tree", m[2], m[3])
	}
	signedBy := func(ca string) error {
		out, err := exec.Command(tools["openssl"], "cms", "-verify", "-binary", "-inform", "DER", "-in", filepath.Join(desc, "verity.env.p7s"),
			"-content", filepath.Join(desc, "verity.env"), "-CAfile", ca, "-purpose", "any", "-no_check_time", "-out", os.DevNull).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := signedBy(ca); err != nil {
		t.Errorf("the descriptor does not verify against the update CA: %v", err)
	}
	if signedBy(other) == nil {
		t.Error("the descriptor verifies against another CA")
	}
	matches := func() error {
		out, err := exec.Command(tools["veritysetup"], "verify", slot, slot, m[1], "--hash-offset="+m[2]).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := matches(); err != nil {
		t.Fatalf("the slot image does not match its root hash: %v", err)
	}
	f, err := os.OpenFile(slot, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	const at = 5<<20 + 77
	f.ReadAt(b, at)
	f.WriteAt([]byte{^b[0]}, at)
	f.Close()
	if matches() == nil {
		t.Error("the slot image verifies with a flipped byte")
	}
	if out, err := verity("UPDATE_CA=" + ca); err == nil || !strings.Contains(out, "go together") {
		t.Errorf("a CA without its signer: err %v\n%s", err, out)
	}
	// An ext4 of 1 KiB blocks (mke2fs's choice for small file systems)
	// would not mount on the 4 KiB-block verity device.
	rootFS(t, tools, filepath.Join(dir, "root-tree"), root, 1024, true)
	if out, err := verity("UPDATE_CA="+ca, "UPDATE_CERT="+cert, "UPDATE_KEY="+key); err == nil || !strings.Contains(out, "ext4 blocks of 1024 bytes") {
		t.Errorf("a root of 1 KiB blocks: err %v\n%s", err, out)
	}
	// Without the read-only feature RAUC's mount for the hook would
	// rewrite the superblock after the root hash was taken.
	rootFS(t, tools, filepath.Join(dir, "root-tree"), root, 4096, false)
	if out, err := verity("UPDATE_CA="+ca, "UPDATE_CERT="+cert, "UPDATE_KEY="+key); err == nil || !strings.Contains(out, "no read-only feature") {
		t.Errorf("a root without the read-only feature: err %v\n%s", err, out)
	}
}
