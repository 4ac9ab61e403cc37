package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// TestKeysForTheDaemonsUser: the administrator runs `sudo timenodectl keys
// generate --next` in the daemon's state directory, which belongs to the
// daemon's dynamic user. The new files must be that user's (the daemon
// refuses keys it does not own), and `keys csr` run as root must read them.
func TestKeysForTheDaemonsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand files to another user (the appliance's sudo)")
	}
	const uid, gid = 4242, 4243
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"keys", "generate", "--dir", dir, "--next"}, &out, &errOut); code != 0 {
		t.Fatalf("keys generate: exit %d: %s", code, errOut.String())
	}
	for _, f := range []string{"next-signing-ed25519.pem", "next-signing-mldsa65.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: owner %d:%d mode %04o, want %d:%d 0600", f, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
		}
	}
	out.Reset()
	if code := dispatch([]string{"keys", "csr", "--dir", dir, "--next", "--cn", "time.test.example"}, &out, &errOut); code != 0 {
		t.Fatalf("keys csr as root on the daemon's files: exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Errorf("keys csr printed %q", out.String())
	}
}

// TestKeysGenerateRecoversAndIsIdempotent: the first-boot unit runs
// `keys generate --if-missing` on every boot until its last step is done.
// A half pair from an interrupted run is removed and replaced; a complete
// pair is kept by --if-missing and refused, with a hint, without it.
func TestKeysGenerateRecoversAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	half := filepath.Join(dir, "signing-mldsa65.pem")
	if err := os.WriteFile(half, []byte("half a pair\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := dispatch(append([]string{"keys", "generate", "--dir", dir}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("--if-missing")
	if code != 0 || !strings.Contains(out, "removed "+half+", left by an interrupted key generation") {
		t.Fatalf("over a half pair: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	first, err := os.ReadFile(filepath.Join(dir, "signing-ed25519.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run("--if-missing"); code != 0 || !strings.Contains(out, "kept the key pair") {
		t.Fatalf("--if-missing over a complete pair: exit %d, %q", code, out)
	}
	if code, _, errOut := run(); code != 1 || !strings.Contains(errOut, "--if-missing to keep it") {
		t.Fatalf("a second generate: exit %d, %q; want a refusal with a hint", code, errOut)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "signing-ed25519.pem"))
	if !bytes.Equal(first, again) {
		t.Fatal("the complete pair was replaced without --force")
	}
}

// TestKeysRoughtime: the long-term key is made once, kept by --if-missing,
// and its public key printed matches the file.
func TestKeysRoughtime(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"keys", "roughtime", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	_, pub, ok := strings.Cut(out.String(), "public key (base64): ")
	if !ok {
		t.Fatalf("no public key printed: %q", out.String())
	}
	key, err := signer.LoadLockedEd25519(filepath.Join(dir, "roughtime-ed25519.pem"), keyfile.DefaultPolicy(), lockedmem.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	if strings.TrimSpace(pub) != base64.StdEncoding.EncodeToString(key.Public()) {
		t.Errorf("printed %q, the file's key is %x", pub, key.Public())
	}
	out.Reset()
	if code := dispatch([]string{"keys", "roughtime", "--dir", dir, "--if-missing"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "kept") {
		t.Fatalf("--if-missing: exit %d, %q", code, out.String())
	}
	errOut.Reset()
	if code := dispatch([]string{"keys", "roughtime", "--dir", dir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--if-missing") {
		t.Fatalf("a second key: exit %d, %q", code, errOut.String())
	}
}
