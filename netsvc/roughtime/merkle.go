package roughtime

import "crypto/sha512"

// merkleTree is the hash tree over one batch's nonces, of one version's
// hash size: leaves are SHA-512(0x00 || nonce), nodes SHA-512(0x01 ||
// left || right), each truncated to the hash size. The leaf count is
// padded to a power of two with copies of the first leaf, so only hashes
// of nonces actually received are ever signed.
type merkleTree struct {
	levels [][][]byte // levels[0] are the leaves, the last level the root
}

func hashLeaf(size int, nonce []byte) []byte {
	h := sha512.New()
	h.Write([]byte{0})
	h.Write(nonce)
	return h.Sum(nil)[:size]
}

func hashNode(size int, left, right []byte) []byte {
	h := sha512.New()
	h.Write([]byte{1})
	h.Write(left)
	h.Write(right)
	return h.Sum(nil)[:size]
}

// newMerkleTree builds the tree over nonces (at least one).
func newMerkleTree(size int, nonces [][]byte) *merkleTree {
	width := 1
	for width < len(nonces) {
		width *= 2
	}
	leaves := make([][]byte, width)
	for i := range leaves {
		if i < len(nonces) {
			leaves[i] = hashLeaf(size, nonces[i])
		} else {
			leaves[i] = leaves[0]
		}
	}
	t := &merkleTree{levels: [][][]byte{leaves}}
	for cur := leaves; len(cur) > 1; {
		next := make([][]byte, len(cur)/2)
		for i := range next {
			next[i] = hashNode(size, cur[2*i], cur[2*i+1])
		}
		t.levels = append(t.levels, next)
		cur = next
	}
	return t
}

func (t *merkleTree) root() []byte { return t.levels[len(t.levels)-1][0] }

// path returns the siblings of leaf i from the bottom up, concatenated:
// the client hashes its leaf with each, on the left when the
// corresponding bit of i is 1.
func (t *merkleTree) path(i int) []byte {
	var out []byte
	for _, level := range t.levels[:len(t.levels)-1] {
		out = append(out, level[i^1]...)
		i >>= 1
	}
	return out
}
