package signer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"filippo.io/edwards25519"

	"github.com/aunsorm/timenode/signer/lockedmem"
)

// edTest1024Msg is the 1023-byte message of RFC 8032, section 7.1, TEST 1024.
const edTest1024Msg = "" +
	"08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98" +
	"fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8" +
	"79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d" +
	"658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc" +
	"1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe" +
	"ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e" +
	"06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef" +
	"efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7" +
	"aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1" +
	"85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2" +
	"d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24" +
	"554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270" +
	"88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc" +
	"2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07" +
	"07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba" +
	"b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a" +
	"ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e" +
	"c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7" +
	"51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c" +
	"42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8" +
	"ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df" +
	"f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08" +
	"d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649" +
	"de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4" +
	"88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3" +
	"2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e" +
	"6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f" +
	"b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5" +
	"0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1" +
	"369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d" +
	"b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c" +
	"0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"

// edRFC8032Vectors are RFC 8032, section 7.1, TEST 1, 2, 3 and 1024 (hex).
var edRFC8032Vectors = []struct {
	name, seed, pub, msg, sig string
}{
	{"TEST 1",
		"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
		"",
		"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
	{"TEST 2",
		"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
		"72",
		"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
	{"TEST 3",
		"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
		"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
		"af82",
		"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	{"TEST 1024",
		"f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
		"278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
		edTest1024Msg,
		"0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"},
}

func edUnhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTestEdKey makes an edKey that may stay unlocked: the test machine's
// RLIMIT_MEMLOCK is not this test's business.
func newTestEdKey(t testing.TB, seed []byte) *edKey {
	t.Helper()
	k, err := newEdKey(seed, lockedmem.Options{})
	if k == nil {
		t.Fatalf("newEdKey: %v", err)
	}
	if err != nil && !errors.Is(err, lockedmem.ErrLock) {
		t.Fatalf("newEdKey: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func TestEdLockedRFC8032Vectors(t *testing.T) {
	for _, v := range edRFC8032Vectors {
		t.Run(v.name, func(t *testing.T) {
			k := newTestEdKey(t, edUnhex(t, v.seed))
			if got := hex.EncodeToString(k.public()); got != v.pub {
				t.Errorf("public key %s, want %s", got, v.pub)
			}
			msg := edUnhex(t, v.msg)
			sig, err := k.sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(sig); got != v.sig {
				t.Errorf("signature %s, want %s", got, v.sig)
			}
		})
	}
}

// checkEdAgainstStdlib signs msg with both implementations from seed.
func checkEdAgainstStdlib(t *testing.T, seed, msg []byte) {
	t.Helper()
	k := newTestEdKey(t, seed)
	std := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(k.public(), std.Public().(ed25519.PublicKey)) {
		t.Fatalf("seed %x: public key %x, crypto/ed25519 %x", seed, k.public(), std[32:])
	}
	sig, err := k.sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := ed25519.Sign(std, msg); !bytes.Equal(sig, want) {
		t.Fatalf("seed %x, %d-byte message: signature %x, crypto/ed25519 %x", seed, len(msg), sig, want)
	}
	if !ed25519.Verify(k.public(), msg, sig) {
		t.Fatalf("seed %x, %d-byte message: crypto/ed25519 rejects the signature", seed, len(msg))
	}
}

func TestEdLockedMatchesStdlib(t *testing.T) {
	// Message lengths around SHA-512's 128-byte block, where the 32-byte
	// prefix or R || A (64 bytes) plus the message crosses block and
	// padding boundaries.
	for _, n := range []int{0, 1, 31, 32, 63, 64, 79, 80, 95, 96, 111, 112, 127, 128, 129, 160, 255, 256, 1000, 4096} {
		for _, fill := range []byte{0x00, 0xff, 0x5a} {
			t.Run(fmt.Sprintf("len=%d,fill=%#x", n, fill), func(t *testing.T) {
				seed := bytes.Repeat([]byte{fill ^ byte(n)}, ed25519.SeedSize)
				checkEdAgainstStdlib(t, seed, bytes.Repeat([]byte{fill}, n))
			})
		}
	}
	t.Run("random", func(t *testing.T) {
		var s [32]byte
		if _, err := rand.Read(s[:]); err != nil {
			t.Fatal(err)
		}
		t.Logf("random source seed %x", s)
		r := mrand.New(mrand.NewChaCha8(s))
		for range 300 {
			seed := make([]byte, ed25519.SeedSize)
			msg := make([]byte, r.IntN(600))
			for _, b := range [][]byte{seed, msg} {
				for i := range b {
					b[i] = byte(r.Uint32())
				}
			}
			checkEdAgainstStdlib(t, seed, msg)
		}
	})
}

func TestEdLockedConcurrentSigning(t *testing.T) {
	seed := edUnhex(t, edRFC8032Vectors[0].seed)
	k := newTestEdKey(t, seed)
	std := ed25519.NewKeyFromSeed(seed)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
				sig, err := k.sign(msg)
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(sig, ed25519.Sign(std, msg)) {
					t.Errorf("goroutine %d message %d: signature differs from crypto/ed25519", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEdLockedScratchIsZeroBetweenSignatures(t *testing.T) {
	k := newTestEdKey(t, edUnhex(t, edRFC8032Vectors[1].seed))
	check := func(when string) {
		t.Helper()
		if k.sec.wide != [sha512.Size]byte{} {
			t.Errorf("%s: the digest scratch is not zero", when)
		}
		if k.sec.r != (edwards25519.Scalar{}) {
			t.Errorf("%s: the nonce scratch is not zero", when)
		}
	}
	check("after construction")
	if _, err := k.sign([]byte("message")); err != nil {
		t.Fatal(err)
	}
	check("after a signature")
}

func TestEdLockedCloseWipes(t *testing.T) {
	k := newTestEdKey(t, edUnhex(t, edRFC8032Vectors[2].seed))
	mem := k.buf.Bytes()
	if bytes.Equal(mem, make([]byte, len(mem))) {
		t.Fatal("the key memory is zero before Close")
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	// The pages are unmapped now; lockedmem's tests show Close zeroes them
	// first. Here: the key gave its buffer up.
	if k.buf.Bytes() != nil {
		t.Error("the key's buffer is still open after Close")
	}
	if _, err := k.sign([]byte("x")); !errors.Is(err, lockedmem.ErrClosed) {
		t.Errorf("sign after Close: %v, want lockedmem.ErrClosed", err)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestWipeHashClearsBlockBuffer looks inside crypto/sha512's digest: Reset
// alone leaves the buffered bytes of a partial block, wipeHash does not.
// If Go changes the digest's layout, wipeHash needs a new look.
func TestWipeHashClearsBlockBuffer(t *testing.T) {
	secret := bytes.Repeat([]byte{0xa5}, 32)
	blockBuffer := func(h any) []byte {
		t.Helper()
		v := reflect.ValueOf(h)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			t.Fatalf("sha512.New() is a %T, not a pointer to a struct", h)
		}
		x := v.Elem().FieldByName("x")
		if x.Kind() != reflect.Array || x.Len() != sha512.BlockSize || x.Type().Elem().Kind() != reflect.Uint8 {
			t.Fatalf("%T has no [%d]byte block buffer x: re-check wipeHash", h, sha512.BlockSize)
		}
		b := make([]byte, x.Len())
		for i := range b {
			b[i] = byte(x.Index(i).Uint())
		}
		return b
	}

	h := sha512.New()
	h.Write(secret)
	h.Sum(nil)
	h.Reset()
	if !bytes.Contains(blockBuffer(h), secret) {
		t.Log("Reset now clears the block buffer; wipeHash is more than needed")
	}

	h = sha512.New()
	h.Write(secret)
	h.Sum(nil)
	wipeHash(h)
	if b := blockBuffer(h); !bytes.Equal(b, make([]byte, len(b))) {
		t.Errorf("block buffer after wipeHash: %x", b)
	}
	// And the hash is usable afterwards.
	h.Write([]byte("abc"))
	if got, want := h.Sum(nil), sha512.Sum512([]byte("abc")); !bytes.Equal(got, want[:]) {
		t.Error("the hash is wrong after wipeHash")
	}
}

func TestEdLockedCryptoSigner(t *testing.T) {
	k := newTestEdKey(t, edUnhex(t, edRFC8032Vectors[3].seed))
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "edlocked"},
	}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("crypto/x509 rejects the CSR signature: %v", err)
	}
	if !bytes.Equal(csr.PublicKey.(ed25519.PublicKey), k.public()) {
		t.Error("the CSR carries another public key")
	}
	if _, err := k.Sign(nil, make([]byte, 64), crypto.SHA512); err == nil {
		t.Error("Ed25519ph was accepted")
	}
	if _, err := k.Sign(nil, []byte("m"), &ed25519.Options{Context: "c"}); err == nil {
		t.Error("Ed25519ctx was accepted")
	}
}

func TestKeyPairEd25519MatchesStdlib(t *testing.T) {
	edSeed := bytes.Repeat([]byte{7}, 32)
	mlSeed := bytes.Repeat([]byte{9}, 32)
	kp, err := NewKeyPair(edSeed, mlSeed, KeyOptions{Development: true, NotBefore: t0})
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	std := ed25519.NewKeyFromSeed(edSeed)
	if !bytes.Equal(kp.Public().Ed25519, std.Public().(ed25519.PublicKey)) {
		t.Fatalf("public key %x, crypto/ed25519 %x", kp.Public().Ed25519, std[32:])
	}
	for _, msg := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("attestation "), 40)} {
		edSig, _, err := kp.sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(kp.Public().Ed25519, msg, edSig) {
			t.Errorf("%d-byte message: crypto/ed25519 rejects the key pair's signature", len(msg))
		}
		if !bytes.Equal(edSig, ed25519.Sign(std, msg)) {
			t.Errorf("%d-byte message: signature differs from crypto/ed25519's", len(msg))
		}
	}
}

func TestKeyPairSignAfterClose(t *testing.T) {
	kp, err := GenerateDevelopment(rand.Reader, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kp.sign([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := kp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kp.sign([]byte("after")); !errors.Is(err, ErrNoKey) {
		t.Errorf("sign after Close: %v, want ErrNoKey", err)
	}
	if err := kp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// edBenchMsg is what both benchmarks sign: 160 bytes, as in
// BenchmarkAlgorithms, about the size of an attestation's signed bytes.
var edBenchMsg = bytes.Repeat([]byte{0x42}, 160)

func BenchmarkEd25519Locked(b *testing.B) {
	k := newTestEdKey(b, edUnhex(b, edRFC8032Vectors[0].seed))
	for b.Loop() {
		if _, err := k.sign(edBenchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Stdlib(b *testing.B) {
	std := ed25519.NewKeyFromSeed(edUnhex(b, edRFC8032Vectors[0].seed))
	for b.Loop() {
		ed25519.Sign(std, edBenchMsg)
	}
}
