package siv

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestCMAC checks the four examples of RFC 4493 section 4 and the subkeys
// of its section 4 "Subkey Generation".
func TestCMAC(t *testing.T) {
	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172a"+
		"ae2d8a571e03ac9c9eb76fac45af8e51"+
		"30c81c46a35ce411e5fbc1191a0a52ef"+
		"f69f2445df4f9b17ad2b417be66c3710")
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	c := newCMAC(b)
	if got := hex.EncodeToString(c.k1[:]); got != "fbeed618357133667c85e08f7236a8de" {
		t.Errorf("K1 = %s", got)
	}
	if got := hex.EncodeToString(c.k2[:]); got != "f7ddac306ae266ccf90bc11ee46d513b" {
		t.Errorf("K2 = %s", got)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		var out [blockSize]byte
		var st0 cmacState
		c.sum(&st0, &out, msg[:tc.n])
		if got := hex.EncodeToString(out[:]); got != tc.want {
			t.Errorf("CMAC of %d bytes = %s, want %s", tc.n, got, tc.want)
		}
		// The same message fed one byte at a time gives the same tag.
		var st cmacState
		st.reset(c)
		for i := range tc.n {
			st.write(msg[i : i+1])
		}
		var split [blockSize]byte
		st.finish(&split)
		if split != out {
			t.Errorf("CMAC of %d bytes in pieces = %x, want %x", tc.n, split, out)
		}
		// And in two writes cut anywhere, which moves whole blocks
		// between the direct path and the buffer.
		for cut := range tc.n + 1 {
			st.reset(c)
			st.write(msg[:cut])
			st.write(msg[cut:tc.n])
			st.finish(&split)
			if split != out {
				t.Errorf("CMAC of %d bytes cut at %d = %x, want %x", tc.n, cut, split, out)
			}
		}
	}
}

// RFC 5297 appendix A.
const (
	a1Key = "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
	a1AD  = "101112131415161718191a1b1c1d1e1f2021222324252627"
	a1PT  = "112233445566778899aabbccddee"
	a1Out = "85632d07c6e8f37f950acd320a2ecc93" + "40c02b9690c4dc04daef7f6afe5c"

	a2Key   = "7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f"
	a2AD1   = "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100"
	a2AD2   = "102030405060708090a0"
	a2Nonce = "09f911029d74e35bd84156c5635688c0"
	a2PT    = "7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553"
	a2Out   = "7bdb6e3b432667eb06f4d14bff2fbd0f" +
		"cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d"
)

func TestRFC5297Vectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   string
		ad    []string
		nonce string
		pt    string
		out   string
	}{
		{"A.1 deterministic", a1Key, []string{a1AD}, "", a1PT, a1Out},
		{"A.2 nonce-based", a2Key, []string{a2AD1, a2AD2}, a2Nonce, a2PT, a2Out},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			var ad [][]byte
			for _, s := range tc.ad {
				ad = append(ad, unhex(t, s))
			}
			nonce, pt := unhex(t, tc.nonce), unhex(t, tc.pt)
			prefix := []byte("prefix")
			got := a.Seal(bytes.Clone(prefix), nonce, pt, ad...)
			if want := append(bytes.Clone(prefix), unhex(t, tc.out)...); !bytes.Equal(got, want) {
				t.Fatalf("Seal = %x\nwant   %x", got, want)
			}
			back, err := a.Open(nil, nonce, got[len(prefix):], ad...)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("Open = %x, %v; want %x", back, err, pt)
			}
			// The nonce of A.2 as a plain associated data component is
			// the same S2V input, so the output must not change.
			if len(nonce) > 0 {
				again := a.Seal(nil, nil, pt, append(ad, nonce)...)
				if !bytes.Equal(again, got[len(prefix):]) {
					t.Fatalf("nonce as last AD component: %x", again)
				}
			}
		})
	}
}

func TestNewKeySizes(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 65} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
	for _, n := range []int{32, 48, 64} {
		a, err := New(make([]byte, n))
		if err != nil {
			t.Errorf("New rejected a %d-byte key: %v", n, err)
			continue
		}
		if a.Overhead() != TagSize {
			t.Errorf("Overhead = %d", a.Overhead())
		}
	}
}

// TestTamper flips every bit of the sealed message, the nonce and the
// associated data in turn: each change must fail to open.
func TestTamper(t *testing.T) {
	a, err := New(unhex(t, a2Key))
	if err != nil {
		t.Fatal(err)
	}
	ad, nonce, pt := unhex(t, a2AD1), unhex(t, a2Nonce), unhex(t, a2PT)
	sealed := a.Seal(nil, nonce, pt, ad)
	flip := func(b []byte, bit int) []byte {
		c := bytes.Clone(b)
		c[bit/8] ^= 1 << (bit % 8)
		return c
	}
	for bit := range len(sealed) * 8 {
		dst := make([]byte, 0, len(sealed))
		out, err := a.Open(dst, nonce, flip(sealed, bit), ad)
		if !errors.Is(err, ErrOpen) || out != nil {
			t.Fatalf("bit %d of the ciphertext flipped: %x, %v", bit, out, err)
		}
		if !bytes.Equal(dst[:cap(dst)], make([]byte, cap(dst))) {
			t.Fatalf("bit %d: unauthenticated plaintext left in dst", bit)
		}
	}
	for bit := range len(nonce) * 8 {
		if _, err := a.Open(nil, flip(nonce, bit), sealed, ad); err == nil {
			t.Fatalf("nonce bit %d flipped: opened", bit)
		}
	}
	for bit := range len(ad) * 8 {
		if _, err := a.Open(nil, nonce, sealed, flip(ad, bit)); err == nil {
			t.Fatalf("AD bit %d flipped: opened", bit)
		}
	}
	for _, tc := range []struct {
		name string
		ct   []byte
		ad   [][]byte
	}{
		{"truncated", sealed[:len(sealed)-1], [][]byte{ad}},
		{"extended", append(bytes.Clone(sealed), 0), [][]byte{ad}},
		{"shorter than a tag", sealed[:TagSize-1], [][]byte{ad}},
		{"empty", nil, [][]byte{ad}},
		{"AD missing", sealed, nil},
		{"AD added", sealed, [][]byte{ad, nil}},
		{"AD split", sealed, [][]byte{ad[:3], ad[3:]}},
	} {
		if _, err := a.Open(nil, nonce, tc.ct, tc.ad...); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open returned %v, want ErrOpen", tc.name, err)
		}
	}
	other, _ := New(unhex(t, a1Key))
	if _, err := other.Open(nil, nonce, sealed, ad); err == nil {
		t.Errorf("opened under another key")
	}
}

// TestLengths round-trips plaintexts around the block boundaries, where S2V
// switches between xorend and padding and CTR between whole and partial
// blocks.
func TestLengths(t *testing.T) {
	a, _ := New(unhex(t, a1Key))
	for n := range 70 {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		for _, nonce := range [][]byte{nil, {1}, unhex(t, a2Nonce)} {
			sealed := a.Seal(nil, nonce, pt, []byte("ad"))
			if len(sealed) != n+TagSize {
				t.Fatalf("n=%d: sealed %d bytes", n, len(sealed))
			}
			back, err := a.Open(nil, nonce, sealed, []byte("ad"))
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("n=%d nonce=%x: %x, %v", n, nonce, back, err)
			}
		}
	}
}

// TestTooManyComponents: past the component limit Open fails and Seal
// panics, and a Prefix's components count against it.
func TestTooManyComponents(t *testing.T) {
	a, _ := New(unhex(t, a1Key))
	p := a.Prefix([]byte("one"), []byte("two"))
	for _, tc := range []struct {
		name string
		seal func(ad ...[]byte) []byte
		open func(ad ...[]byte) ([]byte, error)
		max  int
	}{
		{"AEAD", func(ad ...[]byte) []byte { return a.Seal(nil, nil, nil, ad...) },
			func(ad ...[]byte) ([]byte, error) { return a.Open(nil, nil, make([]byte, TagSize), ad...) }, MaxAssociatedData},
		{"Prefix of 2", func(ad ...[]byte) []byte { return p.Seal(nil, nil, nil, ad...) },
			func(ad ...[]byte) ([]byte, error) { return p.Open(nil, nil, make([]byte, TagSize), ad...) }, MaxAssociatedData - 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ad := make([][]byte, tc.max+1)
			if _, err := tc.open(ad...); !errors.Is(err, ErrOpen) {
				t.Errorf("Open with %d components: %v", len(ad), err)
			}
			defer func() {
				if recover() == nil {
					t.Errorf("Seal with %d components did not panic", len(ad))
				}
			}()
			tc.seal(ad...)
		})
	}
}

// FuzzSIV is the round-trip oracle: whatever is sealed opens to itself
// under the same nonce and associated data, and flipping any one bit of the
// result (chosen by the fuzzer) makes it fail.
func FuzzSIV(f *testing.F) {
	f.Add(unhex(f, a2Key), unhex(f, a2Nonce), unhex(f, a2AD1), unhex(f, a2PT), uint16(0))
	f.Add(unhex(f, a1Key), []byte{}, unhex(f, a1AD), unhex(f, a1PT), uint16(200))
	f.Add(make([]byte, 32), []byte{}, []byte{}, []byte{}, uint16(127))
	f.Fuzz(func(t *testing.T, key, nonce, ad, pt []byte, bit uint16) {
		k := make([]byte, KeySize)
		copy(k, key)
		a, err := New(k)
		if err != nil {
			t.Fatal(err)
		}
		sealed := a.Seal(nil, nonce, pt, ad)
		back, err := a.Open(nil, nonce, sealed, ad)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("round trip: %x, %v; want %x", back, err, pt)
		}
		i := int(bit) % (len(sealed) * 8)
		sealed[i/8] ^= 1 << (i % 8)
		if out, err := a.Open(nil, nonce, sealed, ad); err == nil {
			t.Fatalf("bit %d flipped, still opened to %x", i, out)
		}
	})
}

// TestInlineCTR checks the block-by-block key stream against crypto/cipher's
// CTR on every inline length and on counters whose increment carries across
// bytes, the 32-bit word and the 64-bit half (RFC 5297 clears two bits so
// that a carry out of them never happens for real messages, but inc must
// still be a 128-bit counter).
func TestInlineCTR(t *testing.T) {
	a, _ := New(unhex(t, a1Key))
	ivs := map[string][blockSize]byte{
		"zero":         {},
		"byte carry":   {15: 0xfe},
		"word carry":   {12: 0x7f, 13: 0xff, 14: 0xff, 15: 0xfd},
		"half carry":   {8: 0x7f, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0x7f, 13: 0xff, 14: 0xff, 15: 0xfa},
		"cleared bits": {8: 0xff, 12: 0xff, 15: 0xff},
	}
	for name, iv := range ivs {
		for n := 1; n <= ctrInline+2*blockSize; n++ {
			src := bytes.Repeat([]byte{0xa5}, n)
			got := make([]byte, n)
			sc := getScratch()
			a.xorKeyStream(sc, got, src, &iv)
			putScratch(sc)
			q := iv
			q[8] &= 0x7f
			q[12] &= 0x7f
			want := make([]byte, n)
			cipher.NewCTR(a.ctr, q[:]).XORKeyStream(want, src)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, %d bytes: key stream %x, want %x", name, n, got, want)
			}
		}
	}
	// The full 128-bit counter wraps to zero.
	q := [blockSize]byte{}
	for i := range q {
		q[i] = 0xff
	}
	inc(&q)
	if q != ([blockSize]byte{}) {
		t.Errorf("inc of all ones = %x, want zero", q)
	}
}

// BenchmarkSealCookie seals an NTS cookie's 68-byte plaintext, the
// operation an NTS server repeats for every cookie it hands out.
func BenchmarkSealCookie(b *testing.B) {
	a, _ := New(make([]byte, KeySize))
	nonce, ad, pt := make([]byte, 16), make([]byte, 4), make([]byte, 68)
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		dst = a.Seal(dst[:0], nonce, pt, ad)
	}
}

// TestPrefix checks a Prefix against RFC 5297 A.2 split at every point of
// its component list, and that a wrong prefix does not open.
func TestPrefix(t *testing.T) {
	a, _ := New(unhex(t, a2Key))
	ad1, ad2, nonce, pt := unhex(t, a2AD1), unhex(t, a2AD2), unhex(t, a2Nonce), unhex(t, a2PT)
	want := unhex(t, a2Out)
	for _, tc := range []struct {
		name        string
		prefix, ads [][]byte
	}{
		{"no prefix", nil, [][]byte{ad1, ad2}},
		{"AD1 fixed", [][]byte{ad1}, [][]byte{ad2}},
		{"both fixed", [][]byte{ad1, ad2}, nil},
	} {
		p := a.Prefix(tc.prefix...)
		if got := p.Seal(nil, nonce, pt, tc.ads...); !bytes.Equal(got, want) {
			t.Errorf("%s: Seal = %x, want %x", tc.name, got, want)
		}
		back, err := p.Open(nil, nonce, want, tc.ads...)
		if err != nil || !bytes.Equal(back, pt) {
			t.Errorf("%s: Open = %x, %v", tc.name, back, err)
		}
	}
	if _, err := a.Prefix(ad2).Open(nil, nonce, want, ad1); !errors.Is(err, ErrOpen) {
		t.Errorf("components swapped: Open returned %v, want ErrOpen", err)
	}
	if _, err := a.Prefix(ad1).Open(nil, nonce, want, ad1, ad2); !errors.Is(err, ErrOpen) {
		t.Errorf("prefix repeated: Open returned %v, want ErrOpen", err)
	}
}

// TestLazyCTRConcurrent seals from several goroutines with a key whose CTR
// half is not expanded yet; under -race it checks the expansion is safe,
// and every result must still be the RFC's.
func TestLazyCTRConcurrent(t *testing.T) {
	a, _ := New(unhex(t, a2Key))
	ad1, ad2, nonce, pt := unhex(t, a2AD1), unhex(t, a2AD2), unhex(t, a2Nonce), unhex(t, a2PT)
	want := unhex(t, a2Out)
	// An empty message needs no key stream, so it must not expand it.
	a.Seal(nil, nil, nil)
	if a.ctr != nil {
		t.Fatalf("an empty message expanded the CTR key")
	}
	got := make([][]byte, 8)
	done := make(chan int)
	for i := range got {
		go func() {
			got[i] = a.Seal(nil, nonce, pt, ad1, ad2)
			done <- i
		}()
	}
	for range got {
		<-done
	}
	for i, g := range got {
		if !bytes.Equal(g, want) {
			t.Errorf("goroutine %d: %x, want %x", i, g, want)
		}
	}
	if a.ctrKey != [32]byte{} {
		t.Errorf("the CTR key was kept after its expansion")
	}
}
