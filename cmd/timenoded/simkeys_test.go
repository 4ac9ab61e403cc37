package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/keyfile"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// writeProductionKeys writes a key pair into dir with an attestation
// certificate from a fresh production (not development) CA, valid around
// now, and returns the key id. now is the daemon's clock: in simulation
// the host's.
func writeProductionKeys(t *testing.T, dir string, now time.Time) string {
	t.Helper()
	if err := keyfile.Generate(dir, rand.Reader, nil, true); err != nil {
		t.Fatal(err)
	}
	var seeds [2]*lockedmem.Buffer
	for i, alg := range []keyfile.Alg{keyfile.Ed25519, keyfile.MLDSA65} {
		b, err := keyfile.LoadSeed(filepath.Join(dir, keyfile.FileName(alg)), alg, keyfile.DefaultPolicy(), lockedmem.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		seeds[i] = b
	}
	kp, err := signer.NewKeyPair(seeds[0].Bytes(), seeds[1].Bytes(), signer.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	ca, err := signer.NewCA("timenode test production CA", false, now.Add(-24*time.Hour), 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := signer.CreateCSR(kp, "node1.test")
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.Issue(csr, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, signer.CertFile), signer.EncodeCerts(der, ca.Cert.Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	return kp.ID()
}

// TestSimRefusesProductionKeys starts `timenoded --sim` on a key directory
// holding a production key: it must not start (simulated time signed by a
// production key passes a production verifier), and must say which
// directory and key.
func TestSimRefusesProductionKeys(t *testing.T) {
	daemon, _ := buildBinaries(t)
	keyDir, state := t.TempDir(), t.TempDir()
	id := writeProductionKeys(t, keyDir, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, daemon, "--sim", "--state-dir", state, "--https", "127.0.0.1:0",
		"--metrics", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--ntp", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "NTP_SIGNING_KEY_PATH="+keyDir)
	logs := &lockedBuffer{}
	cmd.Stderr, cmd.Stdout = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
wait:
	for {
		select {
		case err = <-exited:
			break wait
		case <-time.After(50 * time.Millisecond):
		}
		if _, statErr := os.Stat(filepath.Join(state, "endpoints.json")); statErr == nil {
			cancel()
			<-exited
			t.Fatalf("--sim started serving with production key %s from %s; log:\n%s", id, keyDir, logs.String())
		}
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want exit status 1; log:\n%s", err, logs.String())
	}
	for _, want := range []string{keyDir, id, "not a development key"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the refusal does not say %q; log:\n%s", want, logs.String())
		}
	}
	t.Logf("refused:\n%s", logs.String())
}

// TestSimReloadRefusesProductionKeys: a running simulation whose key
// directory is replaced by a production key refuses the SIGHUP reload
// and keeps serving its development key.
func TestSimReloadRefusesProductionKeys(t *testing.T) {
	keyDir := t.TempDir()
	d := startSim(t, simOptions{env: []string{"NTP_SIGNING_KEY_PATH=" + keyDir}})
	before := fetchKeys(t, d)
	if len(before) != 1 || !before[0].Development {
		t.Fatalf("simulation publishes %v, want one development key", keyIDs(before))
	}
	id := writeProductionKeys(t, keyDir, time.Now())
	if err := d.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.log.String(), "reload refused; nothing changed"); {
		if time.Now().After(deadline) {
			t.Fatalf("reload with production key %s not refused; log:\n%s", id, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{keyDir, id, "not a development key"} {
		if !strings.Contains(d.log.String(), want) {
			t.Errorf("the refusal does not say %q", want)
		}
	}
	if after := fetchKeys(t, d); keyIDs(after) != keyIDs(before) {
		t.Fatalf("after the refused reload /keys publishes %s, want %s", keyIDs(after), keyIDs(before))
	}
}
