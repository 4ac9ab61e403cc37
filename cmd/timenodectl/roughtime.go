package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aunsorm/timenode/netsvc/roughtime"
)

func init() {
	g := registerGroup("roughtime", "query a Roughtime server and verify its reply", 6)
	g.addLeaf("query", leaf{use: "ADDR", args: oneArg,
		summary: "ask the Roughtime server at ADDR (host:port, UDP) for the time and verify the reply",
		help: `The reply is verified against the server's long-term public key (a node's
is in /health, services[].public_key); prints the midpoint, radius,
round-trip time and the local clock's offset. Exit 0 when the reply
verified, 1 when not.`,
		flags: roughtimeQuery})
}

// roughtimeVersions maps --version to the protocol.
var roughtimeVersions = map[string]roughtime.Version{
	"draft11": roughtime.VersionDraft11,
	"google":  roughtime.VersionGoogle,
}

func roughtimeQuery(fs *flag.FlagSet) runFunc {
	pubB64 := fs.String("pubkey", "", "the server's long-term Ed25519 public key, base64 (required)")
	version := fs.String("version", "draft11", "protocol: draft11 (draft-ietf-ntp-roughtime-11) or google (Google-Roughtime)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait in all, retries included")
	return func(args []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl roughtime query"
		v, okVersion := roughtimeVersions[*version]
		switch {
		case *pubB64 == "":
			return usageErr(stderr, prog, "--pubkey is required")
		case !okVersion:
			return usageErr(stderr, prog, "--version %q: want draft11 or google", *version)
		case *timeout <= 0:
			return usageErr(stderr, prog, "--timeout %v: want a positive duration", *timeout)
		}
		pub, err := decodeRoughtimeKey(*pubB64)
		if err != nil {
			return usageErr(stderr, prog, "%v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		res, err := roughtime.Query(ctx, args[0], pub, v, roughtime.QueryOptions{})
		if err != nil {
			return fail(stderr, prog, fmt.Errorf("%s: NOT VERIFIED: %w", args[0], err))
		}
		printRoughtime(stdout, args[0], res)
		return 0
	}
}

// decodeRoughtimeKey reads a base64 Ed25519 public key, padded or not, as
// /health and getroughtime's configuration give it.
func decodeRoughtimeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil {
		return nil, fmt.Errorf("--pubkey: not base64: %v", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("--pubkey: %d bytes, an Ed25519 public key is %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// roughtimeTimeFormat is RFC 3339 with the fraction always in
// microseconds, Google-Roughtime's unit.
const roughtimeTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

func printRoughtime(w io.Writer, addr string, r *roughtime.Result) {
	// The offset is only as good as the radius and the path's asymmetry,
	// at most half the round trip: print the bound with it.
	bound := r.Radius + r.RTT/2
	offset := r.Offset()
	sign := "+"
	if offset < 0 {
		sign, offset = "-", -offset
	}
	fmt.Fprintf(w, "server      %s (%v), verified\n", addr, r.Version)
	fmt.Fprintf(w, "midpoint    %s\n", r.Midpoint.UTC().Format(roughtimeTimeFormat))
	fmt.Fprintf(w, "radius      %v\n", r.Radius)
	fmt.Fprintf(w, "round trip  %v\n", r.RTT)
	fmt.Fprintf(w, "offset      %s%v ±%v (server minus local clock)\n", sign, offset, bound)
	fmt.Fprintf(w, "online key  %s, valid %s to %s\n", base64.StdEncoding.EncodeToString(r.OnlineKey),
		r.NotBefore.UTC().Format(time.RFC3339), r.NotAfter.UTC().Format(time.RFC3339))
}
