package roughtime

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// LongTermSigner is the server's long-term identity: the key clients are
// configured with. *signer.LockedEd25519 implements it.
type LongTermSigner interface {
	// Sign returns the Ed25519 signature of msg.
	Sign(msg []byte) ([]byte, error)
	// Public returns the Ed25519 public key.
	Public() ed25519.PublicKey
}

// onlineKey is a short-lived signing key and the CERTs by which the
// long-term key delegates [notBefore, notAfter] to it, one CERT per
// version because MINT and MAXT are in each version's unit.
type onlineKey struct {
	key       *signer.LockedEd25519
	notBefore time.Time
	notAfter  time.Time
	certIETF  []byte
	certGoog  []byte
}

// newOnlineKey makes a key from crypto/rand, valid from now for lifetime,
// and has lt certify it. The seed only transits the heap for the copy
// into locked memory and is wiped at once.
func newOnlineKey(lt LongTermSigner, now time.Time, lifetime time.Duration, lock lockedmem.Options) (*onlineKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("roughtime: online key: %w", err)
	}
	key, lockErr := signer.NewLockedEd25519(seed, lock)
	if key == nil {
		return nil, fmt.Errorf("roughtime: online key: %w", lockErr)
	}
	ok := &onlineKey{key: key, notBefore: now, notAfter: now.Add(lifetime)}
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		cert, err := certify(lt, key.Public(), timeUnits(v, ok.notBefore), timeUnits(v, ok.notAfter))
		if err != nil {
			_ = key.Close()
			return nil, err
		}
		if v.ietf() {
			ok.certIETF = cert
		} else {
			ok.certGoog = cert
		}
	}
	// A lock failure without RequireLock leaves a usable key; the caller
	// logs it.
	return ok, lockErr
}

// certify returns the CERT message {DELE{PUBK, MINT, MAXT}, SIG}.
func certify(lt LongTermSigner, pub ed25519.PublicKey, mint, maxt uint64) ([]byte, error) {
	dele, err := mustEncode(Field{TagPUBK, pub}, Field{TagMINT, le64(mint)}, Field{TagMAXT, le64(maxt)})
	if err != nil {
		return nil, err
	}
	sig, err := lt.Sign(append([]byte(delegationContext), dele...))
	if err != nil {
		return nil, fmt.Errorf("roughtime: certify online key: %w", err)
	}
	return mustEncode(Field{TagSIG, sig}, Field{TagDELE, dele})
}

// covers reports whether the delegation, as the client sees it in v's
// units, admits MIDP midp.
func (k *onlineKey) covers(v Version, midp uint64) bool {
	return timeUnits(v, k.notBefore) <= midp && midp <= timeUnits(v, k.notAfter)
}

func (k *onlineKey) cert(v Version) []byte {
	if v.ietf() {
		return k.certIETF
	}
	return k.certGoog
}

func mustEncode(fields ...Field) ([]byte, error) {
	m, err := NewMessage(fields...)
	if err != nil {
		return nil, err
	}
	return m.Encode()
}

// signBatch answers nonces (all of version v) with one signature over the
// Merkle root: reply i carries INDX i and the PATH from its leaf.
func signBatch(v Version, nonces [][]byte, midp uint64, radi uint32, k *onlineKey) ([][]byte, error) {
	tree := newMerkleTree(v.hashSize(), nonces)
	srep, err := mustEncode(Field{TagROOT, tree.root()}, Field{TagMIDP, le64(midp)}, Field{TagRADI, le32(radi)})
	if err != nil {
		return nil, err
	}
	sig, err := k.key.Sign(append([]byte(responseContext), srep...))
	if err != nil {
		return nil, fmt.Errorf("roughtime: sign response: %w", err)
	}
	replies := make([][]byte, len(nonces))
	for i, nonce := range nonces {
		fields := []Field{
			{TagSIG, sig}, {TagSREP, srep}, {TagCERT, k.cert(v)},
			{TagPATH, tree.path(i)}, {TagINDX, le32(uint32(i))},
		}
		if v.ietf() {
			fields = append(fields, Field{TagVER, le32(uint32(v))}, Field{TagNONC, nonce})
		}
		body, err := mustEncode(fields...)
		if err != nil {
			return nil, err
		}
		if v.ietf() {
			framed := make([]byte, 0, 12+len(body))
			framed = append(framed, ietfFrame...)
			framed = append(framed, le32(uint32(len(body)))...)
			body = append(framed, body...)
		}
		replies[i] = body
	}
	return replies, nil
}
