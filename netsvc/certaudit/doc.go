// Package certaudit inventories the X.509 material of a timenode appliance
// and checks it against the mTLS expiry policy (SPEC.md §7):
//
//   - a leaf certificate lives at most 90 days;
//   - it is rotated 14 days before it expires ("rotate now" below that);
//   - operators are alerted 21 days before it expires;
//   - during a rotation the old and the new certificate (same subject CN
//     and SANs) are both valid for at least 24 hours.
//
// Scan walks a directory and reads PEM (one or many blocks, bundles too)
// and DER files; files it cannot read or parse are reported, never fatal.
// Evaluate applies a Policy at a given instant; the time is always an
// input. NewCollector exports the same verdicts to Prometheus for the
// daemon's certificates.
//
// # JSON schema (timenodectl certs audit --json)
//
// The report is one object:
//
//	{
//	  "generated_at": RFC 3339 time the policy was evaluated at,
//	  "dir":          the directory walked,
//	  "policy": {"max_leaf_lifetime_days": 90, "rotate_before_days": 14,
//	             "alert_before_days": 21, "min_overlap_hours": 24},
//	  "files": [{
//	      "path":    file path,
//	      "format":  "pem" | "der" | "",
//	      "sha256":  hex SHA-256 of the file's bytes, set for CA bundles
//	                 (files holding at least one CA certificate),
//	      "problem": why nothing (or not everything) could be read, or absent
//	  }],
//	  "certificates": [{
//	      "path", "index" (position in the file, from 0),
//	      "subject_cn", "subject", "issuer", "serial" (hex),
//	      "sans": ["DNS:…", "IP:…", "URI:…", "email:…"],
//	      "not_before", "not_after" (RFC 3339),
//	      "days_remaining" (fractional days to not_after, negative once expired),
//	      "key_type" ("RSA" | "ECDSA" | "Ed25519" | …), "key_bits",
//	      "is_ca", "sha256" (certificate fingerprint, hex),
//	      "verdict": "ok" | "info" | "alert" | "violation" | "rotate",
//	      "findings": [{"severity", "rule", "reason"}]
//	  }],
//	  "rotate_now": number of certificates whose verdict is "rotate",
//	  "violations": number of findings of severity violation or rotate
//	}
//
// Rules: "expired", "not_yet_valid", "rotate_window" (< 14 days left),
// "alert_window" (< 21 days left), "leaf_lifetime" (> 90 days),
// "rotation_overlap" (< 24 h of double validity), "superseded" and
// "staged" (informational: an older or newer certificate of a rotation
// pair). timenodectl exits 1 when any certificate's verdict is "rotate".
package certaudit
