//! Append-only Merkle trees in the RFC 6962 / RFC 9162 shape, generic over the hash function.
//!
//! Leaves hash as `H(0x00 || data)`, interior nodes as `H(0x01 || left || right)`, and a tree of
//! `n > 1` leaves splits at the largest power of two below `n` (RFC 9162 §2.1.1). With
//! [`Sha256Rfc6962`] the roots and proofs are exactly those of Certificate Transparency; Pyralog's
//! partitions use [`Blake3Merkle`].
//!
//! Storage: only the roots of *perfect* subtrees are stored, addressed by [`NodeId`]. Appending
//! writes the new leaf and every subtree it completes (amortised two nodes a leaf); the
//! [`Frontier`] keeps the O(log n) right-edge peaks in memory. Any root, inclusion proof or
//! consistency proof for any past size is then O(log n) node reads from a [`NodeReader`].
//!
//! A Merkle root does not commit to the tree size: the same `(root, proof)` can verify for two
//! sizes whose trees have the same shape along the path. Verify proofs only against a *signed*
//! `(size, root)` pair such as a [`crate::Checkpoint`].

mod hasher;
mod proof;
mod prove;
mod store;
mod tree;

pub use hasher::{Blake3Merkle, MerkleHasher, Sha256Rfc6962};
pub use proof::{ConsistencyProof, InclusionProof, VerifyError, verify_consistency, verify_inclusion};
pub use prove::{ProveError, consistency_path, inclusion_path, root_at, subtree_root};
pub use store::{MemoryNodeStore, MemoryStoreError, NodeReader, NodeWriter};
pub use tree::{Frontier, MerkleTree};

use serde::{Deserialize, Serialize};

/// The position of a perfect subtree: it covers leaves `[index << level, (index + 1) << level)`.
/// Level 0 nodes are leaf hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position among the nodes of that level, left to right.
    pub index: u64,
}

impl NodeId {
    /// A node position.
    pub const fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }
}

/// The largest power of two strictly below `n` (`n >= 2`): where RFC 9162 splits a tree of `n` leaves.
pub(crate) const fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::split_point;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        for n in 2u64..2000 {
            let k = split_point(n);
            assert!(k.is_power_of_two() && k < n && 2 * k >= n, "n={n} k={k}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }
}
