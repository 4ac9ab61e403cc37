package mtls

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer/keyfile"
)

// loadOrHang runs Load, failing the test if it has not returned after a
// minute: a FIFO opened for reading blocks until a writer comes, which is
// the hang this test is about (a bound on a hang, not a timing claim).
func loadOrHang(t *testing.T, f Files, now time.Time) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Load(f, now)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("Load(%+v) blocked", f)
		return nil
	}
}

// TestLoadRefusesFIFOsAndLooseKeys: a FIFO in place of any TLS file is
// refused at once (before, opening it blocked start and reload forever),
// and the server key gets the signing keys' owner and mode checks (before,
// a 0666 key owned by anyone was accepted).
func TestLoadRefusesFIFOsAndLooseKeys(t *testing.T) {
	w := newWorld(t)
	fifo := filepath.Join(t.TempDir(), "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	loose := filepath.Join(t.TempDir(), "loose.key")
	key, err := os.ReadFile(w.files.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, key, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o666)
	with := func(mod func(*Files)) Files {
		f := w.files
		mod(&f)
		return f
	}
	tests := []struct {
		name string
		f    Files
	}{
		{"certificate is a FIFO", with(func(f *Files) { f.Cert = fifo })},
		{"key is a FIFO", with(func(f *Files) { f.Key = fifo })},
		{"client CA bundle is a FIFO", with(func(f *Files) { f.ClientCA = fifo })},
		{"key is mode 0666", with(func(f *Files) { f.Key = loose })},
		{"credential policy still refuses world access", with(func(f *Files) {
			f.Key, f.KeyPolicy = loose, &keyfile.Policy{Credentials: true, UID: -1}
		})},
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(t.TempDir(), "other.key")
		if err := os.WriteFile(other, key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name string
			f    Files
		}{"key owned by another user", with(func(f *Files) { f.Key = other })})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := loadOrHang(t, tc.f, w.now)
			if !errors.Is(err, keyfile.ErrRefused) {
				t.Fatalf("err %v, want a refusal", err)
			}
			t.Log(err)
		})
	}
	if _, err := Load(w.files, w.now); err != nil {
		t.Fatalf("the good files: %v", err)
	}
}
