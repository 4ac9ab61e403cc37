// Package keyfile reads and writes the node's private key files: PKCS#8
// PEM for Ed25519 (RFC 8410) and for ML-DSA-65 (RFC 9881, the LAMPS
// "ML-DSA in X.509" encoding, seed form), from ordinary paths or from
// systemd credentials. Before a byte is parsed the file must pass the
// checks of ReadSecret (owner, mode, symlink, size); every refusal names
// the file and the problem. Seeds are returned in locked memory
// (signer/lockedmem) and the heap copies made on the way are wiped.
package keyfile
