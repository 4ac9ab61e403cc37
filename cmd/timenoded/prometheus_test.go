package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aunsorm/timenode/hw/clock/futuretest/testbin"
	"github.com/aunsorm/timenode/netsvc/site/sitetest"
)

// scraperFiles writes a metrics CA and a scraper's client certificate
// from it; it returns the CA file and the client's certificate and key.
func scraperFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	iss := sitetest.NewIssuer(t, "test metrics CA", time.Now())
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := iss.Leaf(t, k.Public(), "prometheus.test", []string{"prometheus.test"}, x509.ExtKeyUsageClientAuth, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key = filepath.Join(dir, "metrics-ca.pem"), filepath.Join(dir, "scraper.crt"), filepath.Join(dir, "scraper.key")
	for p, b := range map[string][]byte{ca: iss.PEM(), cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// TestMetricsOverMTLS: with --metrics-client-ca, /metrics speaks TLS 1.3
// with the node's certificate and serves only scrapers whose certificate
// the metrics CA issued: not plain HTTP, not a client without a
// certificate, not an application client of the HTTPS API. The real
// Prometheus server scrapes it with the configuration docs/OPERATIONS.md
// gives, and fails to without a client certificate.
func TestMetricsOverMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := scraperFiles(t, dir)
	d := startSim(t, simOptions{args: []string{"--metrics-client-ca", ca}})
	addr := d.endpoints["metrics"]
	serverCA, err := os.ReadFile(d.endpoints["ca"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA)
	get := func(certs ...tls.Certificate) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, ServerName: "localhost", Certificates: certs, MinVersion: tls.VersionTLS13}}}
		resp, err := c.Get("https://" + addr + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s", resp.Status)
		}
		return string(b), nil
	}
	scraper, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if body, err := get(scraper); err != nil || !strings.Contains(body, "timenode_build_info") {
		t.Fatalf("scraper with the metrics CA's certificate: %v", err)
	}
	if _, err := get(); err == nil {
		t.Error("a scraper without a certificate was served")
	}
	app, err := tls.LoadX509KeyPair(d.endpoints["client_cert"], d.endpoints["client_key"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(app); err == nil {
		t.Error("an application client (the HTTPS API's CA) was served /metrics")
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "timenode_") {
			t.Error("plain HTTP was served the metrics")
		}
	}
	runPrometheus(t, addr, d.endpoints["ca"], cert, key)
}

// runPrometheus scrapes the node with the real Prometheus server, one job
// with the scraper's certificate and one without, and waits until the
// first is up and the second down.
func runPrometheus(t *testing.T, target, serverCA, cert, key string) {
	t.Helper()
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		missingTool(t, "prometheus", "prometheus")
	}
	dir := t.TempDir()
	job := func(name, extra string) string {
		return fmt.Sprintf(`  - job_name: %s
    scheme: https
    scrape_interval: 1s
    scrape_timeout: 900ms
    tls_config:
      ca_file: %s
      server_name: localhost
%s    static_configs:
      - targets: [%q]
`, name, serverCA, extra, target)
	}
	conf := "scrape_configs:\n" + job("mtls", fmt.Sprintf("      cert_file: %s\n      key_file: %s\n", cert, key)) + job("nocert", "")
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := ln.Addr().String()
	ln.Close() // a small race with other listeners; Prometheus cannot report a port it chose
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prom, "--config.file", filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", web)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	type promTarget struct {
		Labels    map[string]string `json:"labels"`
		Health    string            `json:"health"`
		LastError string            `json:"lastError"`
	}
	var targets []promTarget
	deadline := time.Now().Add(testbin.Wait(60 * time.Second))
	for {
		targets = nil
		if resp, err := http.Get("http://" + web + "/api/v1/targets"); err == nil {
			var r struct {
				Data struct {
					ActiveTargets []promTarget `json:"activeTargets"`
				} `json:"data"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			targets = r.Data.ActiveTargets
		}
		health := map[string]promTarget{}
		for _, tg := range targets {
			health[tg.Labels["job"]] = tg
		}
		if health["mtls"].Health == "up" && health["nocert"].Health == "down" {
			t.Logf("prometheus: mtls up; nocert down: %s", health["nocert"].LastError)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus targets %+v, want job mtls up and nocert down\nprometheus log:\n%s", targets, logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}
