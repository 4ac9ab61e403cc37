package keyfile

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aunsorm/timenode/signer/lockedmem"
)

// The steps GeneratePair passes to step, in order, when it replaces a pair.
var allSteps = []string{"staged ML-DSA-65", "staged Ed25519", "removed old Ed25519", "published ML-DSA-65"}

const (
	crashDirEnv  = "KEYFILE_TEST_CRASH_DIR"
	crashStepEnv = "KEYFILE_TEST_CRASH_STEP"
	crashOverEnv = "KEYFILE_TEST_CRASH_OVERWRITE"
)

// TestCrashChild is not a test on its own: run by crashAt in a child
// process, it generates a pair and exits hard at the named step, as a
// kill or power loss would, so that no deferred cleanup runs.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of the crash tests")
	}
	at := os.Getenv(crashStepEnv)
	step = func(s string) error {
		if s == at {
			os.Exit(3)
		}
		return nil
	}
	_, err := GeneratePair(dir, rand.Reader, GenerateOptions{Overwrite: os.Getenv(crashOverEnv) != ""})
	t.Fatalf("generation ran past step %q: %v", at, err)
}

// crashAt runs a generation into dir in a child process killed at step.
func crashAt(t *testing.T, dir, at string, overwrite bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStepEnv+"="+at)
	if overwrite {
		cmd.Env = append(cmd.Env, crashOverEnv+"=1")
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child did not die at %q: %v\n%s", at, err, out)
	}
}

// pairBytes reads both files of the standard pair; nil for a missing one.
func pairBytes(t *testing.T, dir string) (ed, ml []byte) {
	t.Helper()
	ed, _ = os.ReadFile(filepath.Join(dir, Ed25519File))
	ml, _ = os.ReadFile(filepath.Join(dir, MLDSA65File))
	return ed, ml
}

// loadable checks that dir holds a complete pair that loads.
func loadable(t *testing.T, dir string) {
	t.Helper()
	for _, alg := range []Alg{Ed25519, MLDSA65} {
		p := filepath.Join(dir, FileName(alg))
		buf, err := LoadSeed(p, alg, DefaultPolicy(), lockedmem.Options{})
		if err != nil {
			t.Fatalf("after recovery: %v", err)
		}
		buf.Close()
	}
}

// leftovers lists everything in dir but the two key files.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); n != Ed25519File && n != MLDSA65File {
			out = append(out, n)
		}
	}
	return out
}

// A process killed at any step leaves either the old pair, no pair, or a
// half pair that the next generation removes; never an Ed25519 key beside
// an ML-DSA-65 key it was not made with.
func TestGenerateSurvivesACrashAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, overwrite := range []bool{false, true} {
		for _, at := range allSteps {
			if at == "removed old Ed25519" && !overwrite {
				continue
			}
			t.Run(fmt.Sprintf("overwrite=%v/%s", overwrite, at), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "keys")
				var oldEd, oldML []byte
				if overwrite {
					if err := Generate(dir, rand.Reader, nil, false); err != nil {
						t.Fatal(err)
					}
					oldEd, oldML = pairBytes(t, dir)
				}
				crashAt(t, dir, at, overwrite)

				st, err := State(dir, "")
				if err != nil {
					t.Fatal(err)
				}
				ed, ml := pairBytes(t, dir)
				switch st {
				case PairComplete:
					if !bytes.Equal(ed, oldEd) || !bytes.Equal(ml, oldML) {
						t.Fatal("a complete pair after the crash is not the old pair")
					}
				case PairIncomplete:
					if ed != nil {
						t.Fatal("an Ed25519 file without its ML-DSA-65 file: the marker of a complete pair is wrong")
					}
				}
				if st != PairComplete && len(leftovers(t, dir)) == 0 && at != "published ML-DSA-65" {
					t.Error("a crash while staging left no staging directory to test the cleanup on")
				}

				rec, err := GeneratePair(dir, rand.Reader, GenerateOptions{Overwrite: overwrite})
				if err != nil {
					t.Fatalf("generation after the crash: %v", err)
				}
				if st == PairIncomplete && !slices.Contains(rec.Removed, filepath.Join(dir, MLDSA65File)) {
					t.Errorf("removed %v, want the half pair's %s", rec.Removed, MLDSA65File)
				}
				loadable(t, dir)
				if l := leftovers(t, dir); len(l) != 0 {
					t.Errorf("left after recovery: %v", l)
				}
			})
		}
	}
}

// Earlier releases wrote Ed25519 first through a temporary file; what a
// crash left then is recovered too.
func TestGenerateRecoversTheOldHalfPair(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, filepath.Join(dir, Ed25519File), Ed25519, seedOf(1), 0o600)
	tmp := filepath.Join(dir, "."+MLDSA65File+".tmp-123456")
	writeKey(t, tmp, MLDSA65, seedOf(2), 0o600)
	// The next key's files are a different pair and stay.
	next := filepath.Join(dir, "next-"+Ed25519File)
	writeKey(t, next, Ed25519, seedOf(3), 0o600)

	if st, _ := State(dir, ""); st != PairIncomplete {
		t.Fatalf("state %v, want incomplete", st)
	}
	if err := Generate(dir, rand.Reader, nil, false); err != nil {
		t.Fatalf("generate over a half pair: %v", err)
	}
	loadable(t, dir)
	ed, _ := pairBytes(t, dir)
	old, _ := MarshalPEM(Ed25519, seedOf(1))
	if bytes.Equal(ed, old) {
		t.Error("the half pair's Ed25519 key was kept")
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file %s left: %v", tmp, err)
	}
	if _, err := os.Stat(next); err != nil {
		t.Errorf("the next key's file was touched: %v", err)
	}
}

// An error (a full disk, a failing RNG) at any step returns it and leaves
// the directory as it was, or with no pair when it was replacing one.
func TestGenerateErrorLeavesNoHalfPair(t *testing.T) {
	full := errors.New("no space left on device")
	for _, overwrite := range []bool{false, true} {
		for _, at := range allSteps {
			t.Run(fmt.Sprintf("overwrite=%v/%s", overwrite, at), func(t *testing.T) {
				dir := t.TempDir()
				if overwrite {
					if err := Generate(dir, rand.Reader, nil, false); err != nil {
						t.Fatal(err)
					}
				}
				oldEd, oldML := pairBytes(t, dir)
				step = func(s string) error {
					if s == at {
						return full
					}
					return nil
				}
				defer func() { step = func(string) error { return nil } }()
				_, err := GeneratePair(dir, rand.Reader, GenerateOptions{Overwrite: overwrite})
				if !errors.Is(err, full) && !(at == "removed old Ed25519" && !overwrite && err == nil) {
					t.Fatalf("err %v, want %v", err, full)
				}
				if err == nil {
					return
				}
				st, _ := State(dir, "")
				ed, ml := pairBytes(t, dir)
				switch {
				case st == PairIncomplete:
					t.Fatal("a half pair was left")
				case st == PairComplete && (!bytes.Equal(ed, oldEd) || !bytes.Equal(ml, oldML)):
					t.Fatal("the pair left is not the old one")
				}
				if l := leftovers(t, dir); len(l) != 0 {
					t.Errorf("left: %v", l)
				}
			})
		}
	}
}

func TestGenerateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "roughtime-ed25519.pem")
	if err := GenerateKeyFile(path, Ed25519, rand.Reader, GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := LoadSeed(path, Ed25519, DefaultPolicy(), lockedmem.Options{})
	if err != nil {
		t.Fatalf("the new key does not load under the key policy: %v", err)
	}
	buf.Close()
	if err := GenerateKeyFile(path, Ed25519, rand.Reader, GenerateOptions{}); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second generation: %v, want ErrKeyExists", err)
	}
	if err := GenerateKeyFile(path, Ed25519, bytes.NewReader(nil), GenerateOptions{Overwrite: true}); err == nil {
		t.Fatal("a failing RNG generated a key")
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("a failed overwrite changed the key")
	}
	if l := leftovers(t, filepath.Dir(path)); len(l) != 1 || l[0] != filepath.Base(path) {
		t.Errorf("directory holds %v, want the key alone", l)
	}
	if err := GenerateKeyFile(path, Ed25519, rand.Reader, GenerateOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); bytes.Equal(again, first) {
		t.Fatal("overwrite kept the old key")
	}
}
