//! Proof generation over any [`NodeReader`]: O(log n) node reads for any size the store covers.

use super::proof::{ConsistencyShape, inclusion_steps};
use super::{MerkleHasher, NodeId, NodeReader, split_point};
use crate::hash::Digest;

/// Why a root or proof could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError<E> {
    /// The leaf index is not below the requested size.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// Requested leaf.
        index: u64,
        /// Requested tree size.
        size: u64,
    },
    /// The requested size is larger than the tree.
    #[error("tree size {size} requested, the tree has {tree_size} leaves")]
    SizeBeyondTree {
        /// Requested size.
        size: u64,
        /// Current size.
        tree_size: u64,
    },
    /// A consistency proof was asked to go backwards.
    #[error("old size {old_size} is larger than new size {new_size}")]
    SizeDecreased {
        /// Requested old size.
        old_size: u64,
        /// Requested new size.
        new_size: u64,
    },
    /// The store lacks a node that a tree of the requested size must have: the store is behind
    /// the caller's idea of the size, or damaged.
    #[error("node {0:?} is missing from the store")]
    MissingNode(NodeId),
    /// The store failed.
    #[error("node store: {0}")]
    Store(#[source] E),
}

/// The root of leaves `[start, end)` (`start < end`) as RFC 9162 defines it.
///
/// Called on the ranges of RFC 9162's recursion, every perfect part is aligned and read as one
/// stored node, so a right-edge range costs one read per set bit of its length.
pub fn subtree_root<H: MerkleHasher, R: NodeReader + ?Sized>(
    reader: &R,
    start: u64,
    end: u64,
) -> Result<Digest, ProveError<R::Error>> {
    debug_assert!(start < end);
    let len = end - start;
    if len.is_power_of_two() && start.is_multiple_of(len) {
        let level = len.trailing_zeros() as u8;
        let id = NodeId::new(level, start >> level);
        return reader.node(id).map_err(ProveError::Store)?.ok_or(ProveError::MissingNode(id));
    }
    let split = start + split_point(len);
    let left = subtree_root::<H, R>(reader, start, split)?;
    let right = subtree_root::<H, R>(reader, split, end)?;
    Ok(H::hash_children(&left, &right))
}

/// The root of the first `size` leaves.
pub fn root_at<H: MerkleHasher, R: NodeReader + ?Sized>(
    reader: &R,
    size: u64,
) -> Result<Digest, ProveError<R::Error>> {
    match size {
        0 => Ok(H::empty_root()),
        _ => subtree_root::<H, R>(reader, 0, size),
    }
}

/// The audit path of leaf `index` in the tree of `size` leaves, leaf level first.
pub fn inclusion_path<H: MerkleHasher, R: NodeReader + ?Sized>(
    reader: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Digest>, ProveError<R::Error>> {
    if index >= size {
        return Err(ProveError::IndexOutOfRange { index, size });
    }
    inclusion_steps(index, size)
        .iter()
        .rev()
        .map(|step| subtree_root::<H, R>(reader, step.start, step.end))
        .collect()
}

/// The consistency proof from `old_size` to `new_size` leaves in RFC 9162 order (empty when
/// `old_size` is 0 or equals `new_size`).
pub fn consistency_path<H: MerkleHasher, R: NodeReader + ?Sized>(
    reader: &R,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Digest>, ProveError<R::Error>> {
    if old_size > new_size {
        return Err(ProveError::SizeDecreased { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let shape = ConsistencyShape::new(old_size, new_size);
    let mut path = Vec::with_capacity(shape.proof_len());
    if let Some((start, end)) = shape.seed {
        path.push(subtree_root::<H, R>(reader, start, end)?);
    }
    for step in shape.steps.iter().rev() {
        path.push(subtree_root::<H, R>(reader, step.start, step.end)?);
    }
    Ok(path)
}
