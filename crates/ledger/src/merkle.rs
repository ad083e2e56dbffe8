//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.
//!
//! Leaf hash = SHA-256(0x00 ‖ leaf), node hash = SHA-256(0x01 ‖ left ‖ right); a tree of `n`
//! leaves splits at the largest power of two below `n`. Proof generation reads complete
//! subtree hashes through [`Nodes`], so a store answers in O(log n) lookups per subtree;
//! verification is pure and needs only the proof, the sizes and the roots.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// SHA-256 of the empty string: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 6962 leaf hash.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// RFC 6962 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (n ≥ 2): RFC 6962's split point.
pub fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (n - 1).ilog2()
}

/// Where complete subtree hashes come from.
pub trait Nodes {
    /// The error reading them.
    type Error;
    /// The hash of the complete subtree of `2^level` leaves starting at leaf
    /// `index << level`.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
    /// Several nodes, as `(level, index)`, in the order asked (a store may fetch them in
    /// one round trip).
    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Hash>, Self::Error> {
        wanted.iter().map(|&(level, index)| self.node(level, index)).collect()
    }
}

/// The root of leaves `[start, end)` (start aligned to the subtree, as RFC 6962 recursion
/// guarantees): the perfect subtrees of the range, folded right to left.
pub fn subtree_root<N: Nodes>(nodes: &N, start: u64, end: u64) -> Result<Hash, N::Error> {
    if start == end {
        return Ok(empty_root());
    }
    let mut parts = Vec::with_capacity(64);
    let mut at = start;
    while at < end {
        // The largest aligned perfect subtree starting at `at` and fitting in the range.
        let mut level = if at == 0 { 63 } else { at.trailing_zeros() };
        while (1u64 << level) > end - at {
            level -= 1;
        }
        parts.push(nodes.node(level, at >> level)?);
        at += 1 << level;
    }
    let mut root = parts.pop().expect("a non-empty range has a part");
    while let Some(left) = parts.pop() {
        root = node_hash(&left, &root);
    }
    Ok(root)
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size` leaves
/// (RFC 6962 §2.1.1 PATH).
pub fn inclusion_proof<N: Nodes>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    let mut proof = Vec::new();
    path(nodes, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<N: Nodes>(
    nodes: &N,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(nodes, m, start, start + k, out)?;
        out.push(subtree_root(nodes, start + k, end)?);
    } else {
        path(nodes, m - k, start + k, end, out)?;
        out.push(subtree_root(nodes, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of `old` and `new` leaves
/// (RFC 6962 §2.1.2 PROOF).
pub fn consistency_proof<N: Nodes>(nodes: &N, old: u64, new: u64) -> Result<Vec<Hash>, N::Error> {
    let mut proof = Vec::new();
    if old > 0 && old < new {
        subproof(nodes, old, 0, new, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<N: Nodes>(
    nodes: &N,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(subtree_root(nodes, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, start, start + k, complete, out)?;
        out.push(subtree_root(nodes, start + k, end)?);
    } else {
        subproof(nodes, m - k, start + k, end, false, out)?;
        out.push(subtree_root(nodes, start, start + k)?);
    }
    Ok(())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Verifies a consistency proof between `old_root` of `old` leaves and `new_root` of `new`
/// leaves (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut proof = proof.iter();
    // If old is a power of two, the old root itself starts the path.
    let first = if old.is_power_of_two() { Some(*old_root) } else { None };
    let mut fn_ = old - 1;
    let mut sn = new - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some(start) = first.or_else(|| proof.next().copied()) else {
        return false;
    };
    let (mut fr, mut sr) = (start, start);
    for c in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *old_root && sr == *new_root
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first.
/// Appending a leaf merges equal-sized subtrees and reports every node it completes, so a
/// store can persist them; the root is the fold of the edge.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    /// (level, hash) of each perfect subtree, levels strictly decreasing.
    edge: Vec<(u32, Hash)>,
}

impl Frontier {
    /// Rebuilds the edge of a tree of `size` leaves from stored nodes.
    pub fn load<N: Nodes>(nodes: &N, size: u64) -> Result<Self, N::Error> {
        let mut wanted = Vec::new();
        let mut at = 0u64;
        for level in (0..64).rev() {
            if size & (1 << level) != 0 {
                wanted.push((level, at >> level));
                at += 1 << level;
            }
        }
        let hashes = nodes.nodes(&wanted)?;
        let edge = wanted.iter().zip(hashes).map(|(&(level, _), hash)| (level, hash)).collect();
        Ok(Self { size, edge })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; calls `completed(level, index, hash)` for the leaf and every
    /// interior node it completes.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let index = self.size;
        completed(0, index, &leaf);
        let mut level = 0u32;
        let mut hash = leaf;
        while let Some(&(l, left)) = self.edge.last() {
            if l != level {
                break;
            }
            self.edge.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, index >> level, &hash);
        }
        self.edge.push((level, hash));
        self.size += 1;
    }

    /// The root hash of the tree.
    pub fn root(&self) -> Hash {
        let mut parts = self.edge.iter().rev();
        let Some(&(_, mut root)) = parts.next() else {
            return empty_root();
        };
        for (_, left) in parts {
            root = node_hash(left, &root);
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;

    use proptest::prelude::*;

    use super::*;

    /// An in-memory tree built with the frontier.
    #[derive(Default)]
    struct Memory {
        nodes: HashMap<(u32, u64), Hash>,
        frontier: Frontier,
        roots: Vec<Hash>,
    }

    impl Memory {
        fn with_leaves(leaves: &[Vec<u8>]) -> Self {
            let mut m = Memory { roots: vec![empty_root()], ..Memory::default() };
            for leaf in leaves {
                let nodes = &mut m.nodes;
                m.frontier.push(leaf_hash(leaf), |l, i, h| {
                    nodes.insert((l, i), *h);
                });
                m.roots.push(m.frontier.root());
            }
            m
        }
    }

    impl Nodes for Memory {
        type Error = Infallible;
        fn node(&self, level: u32, index: u64) -> Result<Hash, Infallible> {
            Ok(self.nodes[&(level, index)])
        }
    }

    fn h(s: &str) -> Hash {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    /// The Certificate Transparency reference leaves (transparency-dev/merkle testonly).
    fn reference_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
        })
        .collect()
    }

    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn reference_roots() {
        let m = Memory::with_leaves(&reference_leaves());
        for (n, want) in ROOTS.iter().enumerate() {
            assert_eq!(m.roots[n], h(want), "size {n}");
            assert_eq!(subtree_root(&m, 0, n as u64).unwrap(), h(want), "size {n} from nodes");
        }
    }

    #[test]
    fn reference_inclusion_proofs() {
        let m = Memory::with_leaves(&reference_leaves());
        let cases: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (0, 1, &[]),
            (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        ];
        let leaves = reference_leaves();
        for (index, size, want) in cases {
            let proof = inclusion_proof(&m, index, size).unwrap();
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "{index}/{size}");
            assert!(verify_inclusion(
                &leaf_hash(&leaves[index as usize]),
                index,
                size,
                &proof,
                &m.roots[size as usize]
            ));
        }
    }

    #[test]
    fn reference_consistency_proofs() {
        let m = Memory::with_leaves(&reference_leaves());
        let cases: [(u64, u64, &[&str]); 3] = [
            (
                2,
                8,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, want) in cases {
            let proof = consistency_proof(&m, old, new).unwrap();
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "{old}->{new}");
            assert!(verify_consistency(
                old,
                new,
                &m.roots[old as usize],
                &m.roots[new as usize],
                &proof
            ));
        }
    }

    #[test]
    fn split_is_rfc6962s() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "{n}");
        }
    }

    proptest! {
        #[test]
        fn every_inclusion_proof_verifies_and_tampering_fails(size in 1u64..200, pick in any::<u64>(), flip in 0usize..256) {
            let leaves: Vec<Vec<u8>> = (0..size).map(|i| i.to_le_bytes().to_vec()).collect();
            let m = Memory::with_leaves(&leaves);
            let index = pick % size;
            let root = m.roots[size as usize];
            let proof = inclusion_proof(&m, index, size).unwrap();
            let leaf = leaf_hash(&leaves[index as usize]);
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root));
            // Any flipped bit in the proof, the wrong index or a wrong size fails.
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let (which, bit) = (flip % bad.len(), flip % 256);
                bad[which][bit / 8] ^= 1 << (bit % 8);
                prop_assert!(!verify_inclusion(&leaf, index, size, &bad, &root));
            }
            if size > 1 {
                prop_assert!(!verify_inclusion(&leaf, (index + 1) % size, size, &proof, &root));
            }
            // (A proof is tied to a size through the root signed for that size; the same
            // path can fit another size, whose root would differ.)
        }

        #[test]
        fn every_consistency_proof_verifies(new in 1u64..200, pick in any::<u64>()) {
            let leaves: Vec<Vec<u8>> = (0..new).map(|i| i.to_be_bytes().to_vec()).collect();
            let m = Memory::with_leaves(&leaves);
            let old = pick % (new + 1);
            let proof = consistency_proof(&m, old, new).unwrap();
            prop_assert!(verify_consistency(old, new, &m.roots[old as usize], &m.roots[new as usize], &proof));
            if old > 0 && old < new {
                // A different old root (a rewritten history) fails.
                let mut forged = m.roots[old as usize];
                forged[0] ^= 1;
                prop_assert!(!verify_consistency(old, new, &forged, &m.roots[new as usize], &proof));
            }
        }
    }
}
