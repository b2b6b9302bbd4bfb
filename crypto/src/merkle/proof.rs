//! Proof types, the tree shapes they follow, and their verifiers (RFC 9162 §2.1.3 and §2.1.4).
//!
//! The verifiers walk the same recursive decomposition the prover uses (RFC 9162 `PATH` and
//! `SUBPROOF`) to learn, for every proof element, which side it sits on. That fixes the exact proof
//! length up front, so a proof with a missing, extra or reordered element is rejected by length or
//! by root, never silently accepted.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{MerkleHasher, split_point};
use crate::hash::Digest;

/// One level of a path, top-down: the leaf range of the sibling subtree and its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// First leaf of the sibling subtree.
    pub(crate) start: u64,
    /// One past its last leaf.
    pub(crate) end: u64,
    /// The sibling is the left child, so it is hashed before the running value.
    pub(crate) sibling_on_left: bool,
}

/// The siblings of leaf `index` in a tree of `size` leaves, root first (`index < size`).
pub(crate) fn inclusion_steps(index: u64, size: u64) -> Vec<Step> {
    debug_assert!(index < size);
    let (mut start, mut end) = (0, size);
    let mut steps = Vec::with_capacity(64);
    while end - start > 1 {
        let split = start + split_point(end - start);
        if index < split {
            steps.push(Step { start: split, end, sibling_on_left: false });
            end = split;
        } else {
            steps.push(Step { start, end: split, sibling_on_left: true });
            start = split;
        }
    }
    steps
}

/// The shape of a consistency proof from `old` to `new` leaves (`0 < old < new`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsistencyShape {
    /// The subtree shared by both trees where the descent stops, when the proof must carry its
    /// hash; `None` when it is the whole old tree (`old` is a power of two), whose root the
    /// verifier already holds.
    pub(crate) seed: Option<(u64, u64)>,
    /// Siblings on the way down, root first.
    pub(crate) steps: Vec<Step>,
}

impl ConsistencyShape {
    /// RFC 9162 `SUBPROOF(old, D[0:new], true)`, iteratively.
    pub(crate) fn new(old: u64, new: u64) -> Self {
        debug_assert!(0 < old && old < new);
        let (mut start, mut end, mut within) = (0, new, old);
        let mut whole_old_tree = true;
        let mut steps = Vec::with_capacity(64);
        while within != end - start {
            let half = split_point(end - start);
            if within <= half {
                steps.push(Step { start: start + half, end, sibling_on_left: false });
                end = start + half;
            } else {
                steps.push(Step { start, end: start + half, sibling_on_left: true });
                start += half;
                within -= half;
                whole_old_tree = false;
            }
        }
        let seed = (!whole_old_tree).then_some((start, end));
        ConsistencyShape { seed, steps }
    }

    /// Number of hashes a valid proof carries.
    pub(crate) fn proof_len(&self) -> usize {
        self.steps.len() + usize::from(self.seed.is_some())
    }
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// A consistency proof was asked to go backwards.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeDecreased {
        /// Claimed old size.
        old_size: u64,
        /// Claimed new size.
        new_size: u64,
    },
    /// The proof has the wrong number of hashes for the claimed sizes.
    #[error("proof has {actual} hashes, the claimed sizes need {expected}")]
    WrongProofLength {
        /// Hashes the shape needs.
        expected: usize,
        /// Hashes supplied.
        actual: usize,
    },
    /// The proof is for a different tree size than the signed statement it is checked against.
    #[error("proof is for tree size {claimed}, the signed checkpoint has size {signed}")]
    WrongTreeSize {
        /// Size the proof claims.
        claimed: u64,
        /// Size in the signed checkpoint.
        signed: u64,
    },
    /// The inclusion proof leads to a different root.
    #[error("inclusion proof leads to root {computed}, expected {expected}")]
    RootMismatch {
        /// The trusted root.
        expected: Digest,
        /// The root the proof leads to.
        computed: Digest,
    },
    /// The consistency proof does not reproduce the old root.
    #[error("consistency proof does not reproduce the old root {expected} (got {computed})")]
    OldRootMismatch {
        /// The trusted old root.
        expected: Digest,
        /// What the proof yields.
        computed: Digest,
    },
    /// The consistency proof does not reproduce the new root.
    #[error("consistency proof does not reproduce the new root {expected} (got {computed})")]
    NewRootMismatch {
        /// The claimed new root.
        expected: Digest,
        /// What the proof yields.
        computed: Digest,
    },
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion<H: MerkleHasher>(
    index: u64,
    size: u64,
    leaf_hash: &Digest,
    path: &[Digest],
    root: &Digest,
) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let steps = inclusion_steps(index, size);
    if path.len() != steps.len() {
        return Err(VerifyError::WrongProofLength { expected: steps.len(), actual: path.len() });
    }
    let mut running = *leaf_hash;
    for (step, sibling) in steps.iter().rev().zip(path) {
        running = if step.sibling_on_left {
            H::hash_children(sibling, &running)
        } else {
            H::hash_children(&running, sibling)
        };
    }
    if running != *root {
        return Err(VerifyError::RootMismatch { expected: *root, computed: running });
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`.
pub fn verify_consistency<H: MerkleHasher>(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    path: &[Digest],
) -> Result<(), VerifyError> {
    let expect_empty = |path: &[Digest]| match path.len() {
        0 => Ok(()),
        actual => Err(VerifyError::WrongProofLength { expected: 0, actual }),
    };
    if old_size > new_size {
        return Err(VerifyError::SizeDecreased { old_size, new_size });
    }
    if old_size == new_size {
        expect_empty(path)?;
        if old_root != new_root {
            return Err(VerifyError::NewRootMismatch { expected: *new_root, computed: *old_root });
        }
        return Ok(());
    }
    if old_size == 0 {
        // Every tree extends the empty tree; only the old root itself can be wrong.
        expect_empty(path)?;
        let empty = H::empty_root();
        if *old_root != empty {
            return Err(VerifyError::OldRootMismatch { expected: *old_root, computed: empty });
        }
        return Ok(());
    }
    let shape = ConsistencyShape::new(old_size, new_size);
    if path.len() != shape.proof_len() {
        return Err(VerifyError::WrongProofLength { expected: shape.proof_len(), actual: path.len() });
    }
    let (seed, siblings) = match shape.seed {
        Some(_) => (path[0], &path[1..]),
        None => (*old_root, path),
    };
    // `old` folds only the left siblings (the old tree's part of each level), `new` folds all.
    let (mut old, mut new) = (seed, seed);
    for (step, sibling) in shape.steps.iter().rev().zip(siblings) {
        if step.sibling_on_left {
            old = H::hash_children(sibling, &old);
            new = H::hash_children(sibling, &new);
        } else {
            new = H::hash_children(&new, sibling);
        }
    }
    if old != *old_root {
        return Err(VerifyError::OldRootMismatch { expected: *old_root, computed: old });
    }
    if new != *new_root {
        return Err(VerifyError::NewRootMismatch { expected: *new_root, computed: new });
    }
    Ok(())
}

/// An audit path: leaf `index` is in the tree of `size` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct InclusionProof<H> {
    /// The leaf's position.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// Sibling hashes, leaf level first.
    pub path: Vec<Digest>,
    #[serde(skip)]
    hasher: PhantomData<fn() -> H>,
}

impl<H: MerkleHasher> InclusionProof<H> {
    /// A proof from its parts.
    pub fn new(index: u64, size: u64, path: Vec<Digest>) -> Self {
        InclusionProof { index, size, path, hasher: PhantomData }
    }

    /// Checks the proof for leaf data `leaf` against `root`.
    pub fn verify(&self, leaf: &[u8], root: &Digest) -> Result<(), VerifyError> {
        self.verify_leaf_hash(&H::hash_leaf(leaf), root)
    }

    /// Checks the proof for an already hashed leaf against `root`.
    pub fn verify_leaf_hash(&self, leaf_hash: &Digest, root: &Digest) -> Result<(), VerifyError> {
        verify_inclusion::<H>(self.index, self.size, leaf_hash, &self.path, root)
    }
}

/// A consistency proof: the tree of `old_size` leaves is a prefix of the tree of `new_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ConsistencyProof<H> {
    /// The older (smaller) size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// Proof hashes in RFC 9162 order.
    pub path: Vec<Digest>,
    #[serde(skip)]
    hasher: PhantomData<fn() -> H>,
}

impl<H: MerkleHasher> ConsistencyProof<H> {
    /// A proof from its parts.
    pub fn new(old_size: u64, new_size: u64, path: Vec<Digest>) -> Self {
        ConsistencyProof { old_size, new_size, path, hasher: PhantomData }
    }

    /// Checks the proof between the two roots.
    pub fn verify(&self, old_root: &Digest, new_root: &Digest) -> Result<(), VerifyError> {
        verify_consistency::<H>(self.old_size, self.new_size, old_root, new_root, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusion_steps_match_rfc_example() {
        // RFC 9162 §2.1.5: in the 7-leaf tree, the audit path of leaf 3 (d) is [c, g, l].
        let steps = inclusion_steps(3, 7);
        let ranges: Vec<_> = steps.iter().map(|s| (s.start, s.end, s.sibling_on_left)).collect();
        assert_eq!(ranges, vec![(4, 7, false), (0, 2, true), (2, 3, true)]);
    }

    #[test]
    fn consistency_shape_matches_rfc_example() {
        // RFC 9162 §2.1.5: proof between sizes 3 and 7 is [c, d, g, l]: seed c = leaf 2.
        let shape = ConsistencyShape::new(3, 7);
        assert_eq!(shape.seed, Some((2, 3)));
        let ranges: Vec<_> = shape.steps.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(ranges, vec![(4, 7), (0, 2), (3, 4)]);
        // Sizes 4 -> 7: the old tree is a power of two, so no seed: [l].
        let shape = ConsistencyShape::new(4, 7);
        assert_eq!((shape.seed, shape.proof_len()), (None, 1));
    }
}
