package netsvc

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientGate(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	withCert := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
	tests := []struct {
		name      string
		path      string
		tls       *tls.ConnectionState
		mesh      string
		certsConf bool
		want      int
	}{
		{"client cert, attestation", "/attestation", withCert, "", true, http.StatusTeapot},
		{"no cert, attestation", "/attestation", &tls.ConnectionState{}, "", true, http.StatusUnauthorized},
		{"no cert, health without header", "/health", &tls.ConnectionState{}, "", true, http.StatusUnauthorized},
		{"no cert, gateway health", "/health", &tls.ConnectionState{}, "gateway", true, http.StatusTeapot},
		{"no cert, other mesh value", "/health", &tls.ConnectionState{}, "kms", true, http.StatusUnauthorized},
		{"plain HTTP listener", "/attestation", nil, "", true, http.StatusTeapot},
		{"no client CA configured", "/attestation", &tls.ConnectionState{}, "", false, http.StatusTeapot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			r.TLS = tc.tls
			if tc.mesh != "" {
				r.Header.Set(MeshHeader, tc.mesh)
			}
			w := httptest.NewRecorder()
			ClientGate(ok, func() bool { return tc.certsConf }).ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("code %d, want %d (%s)", w.Code, tc.want, w.Body.String())
			}
		})
	}
}
