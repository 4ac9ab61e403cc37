package signer

import "crypto/sha256"

// Merkle tree over a batch's nonces, as in Roughtime: leaf = H(0x00 ||
// nonce), node = H(0x01 || left || right). A response proves its nonce is
// in the signed batch with its leaf index and the sibling hashes from the
// leaf up to the root. A batch of one has an empty path and root = leaf.

// LeafHash hashes one nonce into a leaf.
func LeafHash(nonce []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(nonce)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func nodeHash(l, r [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l[:])
	h.Write(r[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// RootFromPath recomputes the root from a leaf, its index and its path.
// At each level the index's low bit says whether the sibling is on the
// left (1) or the right (0).
func RootFromPath(leaf [32]byte, index uint64, path [][32]byte) [32]byte {
	cur := leaf
	for _, sib := range path {
		if index&1 == 1 {
			cur = nodeHash(sib, cur)
		} else {
			cur = nodeHash(cur, sib)
		}
		index >>= 1
	}
	return cur
}

// BuildTree returns the root of a tree over leaves and the path of each
// leaf. An odd node at any level is paired with itself.
func BuildTree(leaves [][32]byte) (root [32]byte, paths [][][32]byte) {
	if len(leaves) == 0 {
		return LeafHash(nil), nil
	}
	paths = make([][][32]byte, len(leaves))
	level := append([][32]byte(nil), leaves...)
	// members[i] lists the original leaves under node i of the level.
	members := make([][]int, len(leaves))
	for i := range members {
		members[i] = []int{i}
	}
	for len(level) > 1 {
		var next [][32]byte
		var nextMembers [][]int
		for i := 0; i < len(level); i += 2 {
			j := i + 1
			if j == len(level) {
				j = i
			}
			for _, m := range members[i] {
				paths[m] = append(paths[m], level[j])
			}
			if j != i {
				for _, m := range members[j] {
					paths[m] = append(paths[m], level[i])
				}
			}
			next = append(next, nodeHash(level[i], level[j]))
			nextMembers = append(nextMembers, append(append([]int(nil), members[i]...), members[j]...))
			if j == i {
				nextMembers[len(nextMembers)-1] = members[i]
			}
		}
		level, members = next, nextMembers
	}
	return level[0], paths
}
