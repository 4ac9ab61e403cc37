package roughtime

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/aunsorm/timenode/signer"
	"github.com/aunsorm/timenode/signer/lockedmem"
)

// epoch is a fixed instant for the tests; nothing depends on today's date.
var epoch = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func TestQuantise(t *testing.T) {
	tests := []struct {
		name   string
		v      Version
		t      time.Time
		bound  time.Duration
		midp   uint64
		radi   uint32
		failed bool
	}{
		{"google 3.2us rounds up", VersionGoogle, epoch, 3200 * time.Nanosecond, uint64(epoch.UnixMicro()), 4, false},
		{"google exact 3us stays 3", VersionGoogle, epoch, 3 * time.Microsecond, uint64(epoch.UnixMicro()), 3, false},
		{"google zero bound is one unit", VersionGoogle, epoch, 0, uint64(epoch.UnixMicro()), 1, false},
		{"google rounding of MIDP is covered", VersionGoogle, epoch.Add(400 * time.Nanosecond), 3 * time.Microsecond, uint64(epoch.UnixMicro()), 4, false},
		{"google MIDP rounds to nearest", VersionGoogle, epoch.Add(600 * time.Nanosecond), 0, uint64(epoch.UnixMicro()) + 1, 1, false},
		{"google bound beyond 32 bits of us", VersionGoogle, epoch, (math.MaxUint32 + 1) * time.Microsecond, 0, 0, true},
		{"ietf 3.2us is one second", VersionDraft11, epoch, 3200 * time.Nanosecond, uint64(epoch.Unix()), 1, false},
		{"ietf 5ms at +0.7s rounds MIDP up", VersionDraft11, epoch.Add(700 * time.Millisecond), 5 * time.Millisecond, uint64(epoch.Unix()) + 1, 1, false},
		{"ietf 0.8s at +0.4s needs two seconds", VersionDraft11, epoch.Add(400 * time.Millisecond), 800 * time.Millisecond, uint64(epoch.Unix()), 2, false},
		{"ietf exactly 3s", VersionDraft11, epoch, 3 * time.Second, uint64(epoch.Unix()), 3, false},
		{"ietf 3s and 1ns", VersionDraft11, epoch, 3*time.Second + 1, uint64(epoch.Unix()), 4, false},
		{"negative bound", VersionDraft11, epoch, -1, 0, 0, true},
		{"before 1970", VersionGoogle, time.Unix(-5, 0), 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			midp, radi, ok := quantise(tc.v, tc.t, tc.bound)
			if ok == tc.failed {
				t.Fatalf("ok = %v", ok)
			}
			if tc.failed {
				return
			}
			if midp != tc.midp || radi != tc.radi {
				t.Fatalf("MIDP %d RADI %d, want %d %d", midp, radi, tc.midp, tc.radi)
			}
			if !(verified{midp: midp, radi: uint64(radi)}).covers(tc.v, tc.t, tc.bound) {
				t.Fatal("MIDP±RADI does not contain t±bound")
			}
		})
	}
}

func nonceOf(v Version, b byte) []byte { return bytes.Repeat([]byte{b}, v.hashSize()) }

func TestParseRequest(t *testing.T) {
	n32, n64 := nonceOf(VersionDraft11, 1), nonceOf(VersionGoogle, 2)
	srv := bytes.Repeat([]byte{9}, 32)
	ietf := makeRequest(t, VersionDraft11, n32, srv, 1024)
	badFrameLen := bytes.Clone(ietf)
	binary.LittleEndian.PutUint32(badFrameLen[8:], 1000)
	tests := []struct {
		name    string
		pkt     []byte
		err     error
		version Version
		nonce   []byte
	}{
		{"ietf", ietf, nil, VersionDraft11, n32},
		{"ietf larger", makeRequest(t, VersionDraft11, n32, nil, 1400), nil, VersionDraft11, n32},
		{"ietf only draft 11", makeRequest(t, VersionDraft11, n32, nil, 1024, uint32(VersionDraft11)), nil, VersionDraft11, n32},
		{"google", makeRequest(t, VersionGoogle, n64, nil, 1024), nil, VersionGoogle, n64},
		{"ietf short", makeRequest(t, VersionDraft11, n32, nil, 1020), ErrShort, 0, nil},
		{"google short", makeRequest(t, VersionGoogle, n64, nil, 1020), ErrShort, 0, nil},
		{"ietf only draft 08", makeRequest(t, VersionDraft11, n32, nil, 1024, 0x80000008), ErrUnsupported, 0, nil},
		{"ietf without VER", append(append([]byte("ROUGHTIM"), words(1012)...), makeRequest(t, VersionGoogle, n32, nil, 1012)...), ErrMalformed, 0, nil},
		{"ietf 64-byte nonce", makeRequest(t, VersionDraft11, n64, nil, 1024), ErrMalformed, 0, nil},
		{"google 32-byte nonce", makeRequest(t, VersionGoogle, n32, nil, 1024), ErrMalformed, 0, nil},
		{"ietf frame length wrong", badFrameLen, ErrMalformed, 0, nil},
		{"ietf bad SRV size", makeRequest(t, VersionDraft11, n32, srv[:28], 1024), ErrMalformed, 0, nil},
		{"garbage", bytes.Repeat([]byte{0xff}, 1024), ErrMalformed, 0, nil},
		{"zeros", make([]byte, 1024), ErrMalformed, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseRequest(tc.pkt)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Version != tc.version || !bytes.Equal(req.Nonce, tc.nonce) || req.Size != len(tc.pkt) {
				t.Fatalf("got %v %x %d", req.Version, req.Nonce, req.Size)
			}
		})
	}
	if req, _ := ParseRequest(ietf); !bytes.Equal(req.SRV, srv) {
		t.Fatal("SRV not returned")
	}
}

// FuzzParseRequest checks ParseRequest against an oracle: whatever it
// accepts is at least 1024 bytes, is framed exactly when it is an IETF
// request, and carries the returned nonce, of the version's size, as NONC
// according to the reference decoder.
func FuzzParseRequest(f *testing.F) {
	f.Add(makeRequest(f, VersionDraft11, nonceOf(VersionDraft11, 1), nil, 1024))
	f.Add(makeRequest(f, VersionDraft11, nonceOf(VersionDraft11, 1), bytes.Repeat([]byte{3}, 32), 1024))
	f.Add(makeRequest(f, VersionGoogle, nonceOf(VersionGoogle, 1), nil, 1024))
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		req, err := ParseRequest(pkt)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unclassified error %v", err)
			}
			if (len(pkt) < MinRequestSize) != errors.Is(err, ErrShort) {
				t.Fatalf("ErrShort for %d bytes", len(pkt))
			}
			return
		}
		if len(pkt) < MinRequestSize || req.Size != len(pkt) {
			t.Fatalf("accepted %d bytes, Size %d", len(pkt), req.Size)
		}
		framed := string(pkt[:8]) == "ROUGHTIM"
		if framed != (req.Version == VersionDraft11) || (!framed && req.Version != VersionGoogle) {
			t.Fatalf("version %v for framed=%v", req.Version, framed)
		}
		body := pkt
		if framed {
			body = pkt[12:]
		}
		m, _, ok := refDecode(body)
		if !ok {
			t.Fatal("accepted a body the reference decoder refuses")
		}
		if nc := m[uint32(TagNONC)]; !bytes.Equal(nc, req.Nonce) || len(nc) != req.Version.hashSize() {
			t.Fatalf("nonce %x, reference NONC %x", req.Nonce, nc)
		}
		if framed {
			found := false
			vers := m[uint32(TagVER)]
			for i := 0; i+4 <= len(vers); i += 4 {
				found = found || binary.LittleEndian.Uint32(vers[i:]) == uint32(VersionDraft11)
			}
			if !found {
				t.Fatal("accepted an IETF request that does not offer draft 11")
			}
		}
	})
}

// testLongTerm is a long-term key from a fixed seed.
func testLongTerm(t testing.TB, b byte) *signer.LockedEd25519 {
	t.Helper()
	k, err := signer.NewLockedEd25519(bytes.Repeat([]byte{b}, 32), lockedmem.Options{})
	if err != nil && !errors.Is(err, lockedmem.ErrLock) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// fixedOnlineKey is an online key from a fixed seed, so replies are
// reproducible byte for byte.
func fixedOnlineKey(t testing.TB, lt LongTermSigner, from time.Time) *onlineKey {
	t.Helper()
	key, err := signer.NewLockedEd25519(bytes.Repeat([]byte{0x77}, 32), lockedmem.Options{})
	if err != nil && !errors.Is(err, lockedmem.ErrLock) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = key.Close() })
	k := &onlineKey{key: key, notBefore: from, notAfter: from.Add(time.Hour)}
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		c, err := certify(lt, key.Public(), timeUnits(v, k.notBefore), timeUnits(v, k.notAfter))
		if err != nil {
			t.Fatal(err)
		}
		if v.ietf() {
			k.certIETF = c
		} else {
			k.certGoog = c
		}
	}
	return k
}

// TestMerkleBatches signs batches of every size up to 9 and checks every
// reply's PATH, INDX and signatures with the independent verifier.
func TestMerkleBatches(t *testing.T) {
	lt := testLongTerm(t, 1)
	ok := fixedOnlineKey(t, lt, epoch)
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		for n := 1; n <= 9; n++ {
			var nonces [][]byte
			for i := range n {
				nonces = append(nonces, nonceOf(v, byte(i+1)))
			}
			midp, radi, _ := quantise(v, epoch, time.Millisecond)
			replies, err := signBatch(v, nonces, midp, radi, ok)
			if err != nil {
				t.Fatal(err)
			}
			var root []byte
			for i, r := range replies {
				got, err := verifyReply(v, r, lt.Public(), nonces[i])
				if err != nil {
					t.Fatalf("%v batch %d reply %d: %v", v, n, i, err)
				}
				if got.index != uint32(i) || (root != nil && !bytes.Equal(root, got.root)) {
					t.Fatalf("%v batch %d reply %d: index %d or root differs", v, n, i, got.index)
				}
				root = got.root
				// A reply must not verify for another batch member's nonce.
				if n > 1 {
					if _, err := verifyReply(v, r, lt.Public(), nonces[(i+1)%n]); err == nil {
						t.Fatalf("%v batch %d reply %d verifies for a foreign nonce", v, n, i)
					}
				}
				if len(r) >= MinRequestSize {
					t.Fatalf("%v reply of %d bytes", v, len(r))
				}
			}
		}
	}
	// The largest batch allowed still answers under 1024 bytes.
	for _, v := range []Version{VersionDraft11, VersionGoogle} {
		nonces := make([][]byte, maxBatchSize)
		for i := range nonces {
			nonces[i] = nonceOf(v, byte(i))
		}
		replies, err := signBatch(v, nonces, 1, 1, ok)
		if err != nil {
			t.Fatal(err)
		}
		if len(replies[0]) >= MinRequestSize {
			t.Fatalf("%v: batch of %d gives %d-byte replies", v, maxBatchSize, len(replies[0]))
		}
	}
}

// TestGoldenReplies pins the wire bytes of replies made from fixed keys,
// nonces and time, and checks them with the independent verifier. A
// change of the digest is a change of the wire format.
func TestGoldenReplies(t *testing.T) {
	lt := testLongTerm(t, 1)
	ok := fixedOnlineKey(t, lt, epoch.Add(-time.Minute))
	golden := []struct {
		v     Version
		bound time.Duration
		radi  uint64
	}{
		{VersionDraft11, 5 * time.Millisecond, 1},
		{VersionGoogle, 5 * time.Millisecond, 5000},
	}
	for i, g := range golden {
		nonce := nonceOf(g.v, 0x5a)
		req := makeRequest(t, g.v, nonce, nil, 1024)
		parsed, err := ParseRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		midp, radi, _ := quantise(g.v, epoch, g.bound)
		replies, err := signBatch(g.v, [][]byte{parsed.Nonce}, midp, radi, ok)
		if err != nil {
			t.Fatal(err)
		}
		got, err := verifyReply(g.v, replies[0], lt.Public(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		if got.radi != g.radi || !got.covers(g.v, epoch, g.bound) || !bytes.Equal(got.online, ok.key.Public()) {
			t.Fatalf("%v: RADI %d", g.v, got.radi)
		}
		rq, rp := sha256.Sum256(req), sha256.Sum256(replies[0])
		if hex.EncodeToString(rq[:]) != goldenDigests[i][0] || hex.EncodeToString(rp[:]) != goldenDigests[i][1] {
			t.Errorf("%v: request %x reply %x, want %s %s", g.v, rq, rp, goldenDigests[i][0], goldenDigests[i][1])
		}
	}
	if pub := lt.Public(); !bytes.Equal(pub, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)) {
		t.Fatal("long-term key")
	}
}

// goldenDigests are the SHA-256 of TestGoldenReplies' request and reply,
// per version (draft 11, then Google).
var goldenDigests = [2][2]string{
	{"78687cbeb05e0cd28d4b9f363f85a86cb6fbf278ab3d1ace9cfffb123e6e907c", "af85223b90ecdaceeee1839dc65c3dd87e2c269a1f1b696f2268f3336026dbe6"},
	{"e3a59c63f2e88f7bfb7f78be3cdf6679ab9a1398a4a7e4a4fbcf1a2f8b52d8d5", "e0537637527b8fbdee6acf3a108c2ffd6aa32ea1673752f801b7038a6cf28504"},
}
