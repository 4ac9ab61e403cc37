package slots_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
)

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
	tools := map[string]string{}
	for _, tool := range [][2]string{{"rauc", "rauc"}, {"mksquashfs", "squashfs-tools"}, {"mkfs.ext4", "e2fsprogs"}, {"openssl", "openssl"}} {
		tools[tool[0]] = testbin.NeedTool(t, tool[0], tool[1])
	}
	// bundle.sh runs them by name: give it where they were found.
	var dirs []string
	for _, p := range tools {
		dirs = append(dirs, filepath.Dir(p))
	}
	path := "PATH=" + strings.Join(append(dirs, os.Getenv("PATH")), ":")
	dir := t.TempDir()
	build := filepath.Join(dir, "build")
	os.MkdirAll(filepath.Join(build, "tree/usr/lib/timenode/boot"), 0o755)
	// Incompressible content, as a real root's binaries are (RAUC needs a
	// payload larger than one verity block).
	junk := make([]byte, 2<<20)
	for i := range junk {
		junk[i] = byte(i*7919 + i>>8*31)
	}
	os.WriteFile(filepath.Join(build, "tree/usr/lib/timenode/boot/vmlinuz"), junk, 0o644)
	if out, err := exec.Command(tools["mkfs.ext4"], "-q", "-F", "-d", filepath.Join(build, "tree"), filepath.Join(build, "root.ext4"), "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
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
