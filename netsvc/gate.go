package netsvc

import (
	"net/http"
)

// MeshHeader is what the gateway's health checker sends; with it, /health
// may be fetched without a client certificate.
const MeshHeader = "X-Aunsorm-Mesh"

// ClientGate refuses HTTPS requests that arrived without a verified client
// certificate while client certificates are configured (clientCerts
// reports that), except the gateway checker's GET /health. The handshake
// already refused certificates from the wrong CA or off the allow-list;
// this decides what a client that sent none may see.
func ClientGate(next http.Handler, clientCerts func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || !clientCerts() || len(r.TLS.PeerCertificates) > 0 {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/health" && r.Header.Get(MeshHeader) == "gateway" {
			next.ServeHTTP(w, r)
			return
		}
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "client_certificate_required",
			Reason: "this endpoint needs a client certificate from the service CA; only GET /health with " + MeshHeader + ": gateway is open without one"})
	})
}
