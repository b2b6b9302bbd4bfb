//! The append side: the in-memory frontier and a tree that pairs it with a node store.

use std::marker::PhantomData;

use super::prove::{ProveError, consistency_path, inclusion_path, root_at, subtree_root};
use super::{ConsistencyProof, InclusionProof, MerkleHasher, NodeId, NodeReader, NodeWriter};
use crate::hash::Digest;

/// The right edge of an append-only tree: the roots of its perfect subtrees ("peaks"), largest
/// first, one per set bit of the size. Enough to append and to compute the current root without
/// reading the store.
#[derive(Debug)]
pub struct Frontier<H> {
    size: u64,
    peaks: Vec<Digest>,
    hasher: PhantomData<fn() -> H>,
}

// Manual impls: derives would demand `H: Clone`/`H: PartialEq` of the marker type.
impl<H> Clone for Frontier<H> {
    fn clone(&self) -> Self {
        Frontier { size: self.size, peaks: self.peaks.clone(), hasher: PhantomData }
    }
}

impl<H> PartialEq for Frontier<H> {
    fn eq(&self, other: &Self) -> bool {
        self.size == other.size && self.peaks == other.peaks
    }
}

impl<H> Eq for Frontier<H> {}

impl<H: MerkleHasher> Default for Frontier<H> {
    fn default() -> Self {
        Frontier { size: 0, peaks: Vec::new(), hasher: PhantomData }
    }
}

impl<H: MerkleHasher> Frontier<H> {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored peaks: one read a peak.
    pub fn load<R: NodeReader + ?Sized>(reader: &R, size: u64) -> Result<Self, ProveError<R::Error>> {
        let mut peaks = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0;
        for level in (0..64u8).rev().filter(|level| size & (1 << level) != 0) {
            let end = start + (1 << level);
            peaks.push(subtree_root::<H, R>(reader, start, end)?);
            start = end;
        }
        Ok(Frontier { size, peaks, hasher: PhantomData })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peaks, largest subtree first.
    pub fn peaks(&self) -> &[Digest] {
        &self.peaks
    }

    /// The root of the tree: the peaks folded right to left.
    pub fn root(&self) -> Digest {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => H::empty_root(),
            Some(last) => peaks.fold(*last, |acc, peak| H::hash_children(peak, &acc)),
        }
    }

    /// Appends one leaf hash, pushing onto `new_nodes` the leaf and every subtree it completes,
    /// lowest first: exactly what a store must persist.
    pub fn push(&mut self, leaf_hash: Digest, new_nodes: &mut Vec<(NodeId, Digest)>) {
        let mut id = NodeId::new(0, self.size);
        let mut hash = leaf_hash;
        new_nodes.push((id, hash));
        while id.index & 1 == 1 {
            // An odd index completes a pair: the left sibling is the last peak.
            let left = self.peaks.pop().expect("an odd index always has a left peak");
            hash = H::hash_children(&left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
            new_nodes.push((id, hash));
        }
        self.peaks.push(hash);
        self.size += 1;
    }
}

/// An append-only Merkle tree over a node store.
#[derive(Debug)]
pub struct MerkleTree<H, S> {
    frontier: Frontier<H>,
    store: S,
    pending: Vec<(NodeId, Digest)>,
}

impl<H: MerkleHasher, S: NodeWriter> MerkleTree<H, S> {
    /// An empty tree over an empty store.
    pub fn new(store: S) -> Self {
        MerkleTree { frontier: Frontier::new(), store, pending: Vec::new() }
    }

    /// Reopens a tree of `size` leaves from its store.
    pub fn open(store: S, size: u64) -> Result<Self, ProveError<S::Error>> {
        let frontier = Frontier::load(&store, size)?;
        Ok(MerkleTree { frontier, store, pending: Vec::new() })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The current root.
    pub fn root(&self) -> Digest {
        self.frontier.root()
    }

    /// The node store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Appends one leaf; returns its index.
    pub fn append(&mut self, leaf: &[u8]) -> Result<u64, S::Error> {
        self.append_batch(std::iter::once(leaf)).map(|first| first.start)
    }

    /// Appends leaves with one store write; returns their index range.
    ///
    /// If the store write fails the tree is unchanged.
    pub fn append_batch<'a>(
        &mut self,
        leaves: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<std::ops::Range<u64>, S::Error> {
        let before = self.frontier.clone();
        self.pending.clear();
        for leaf in leaves {
            self.frontier.push(H::hash_leaf(leaf), &mut self.pending);
        }
        if let Err(err) = self.store.put_nodes(&self.pending) {
            self.frontier = before;
            return Err(err);
        }
        Ok(before.size()..self.size())
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Digest, ProveError<S::Error>> {
        self.check_size(size)?;
        root_at::<H, S>(&self.store, size)
    }

    /// Proves that leaf `index` is in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof<H>, ProveError<S::Error>> {
        self.check_size(size)?;
        let path = inclusion_path::<H, S>(&self.store, index, size)?;
        Ok(InclusionProof::new(index, size, path))
    }

    /// Proves that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof<H>, ProveError<S::Error>> {
        self.check_size(new_size)?;
        let path = consistency_path::<H, S>(&self.store, old_size, new_size)?;
        Ok(ConsistencyProof::new(old_size, new_size, path))
    }

    fn check_size(&self, size: u64) -> Result<(), ProveError<S::Error>> {
        match self.size() {
            tree_size if size > tree_size => Err(ProveError::SizeBeyondTree { size, tree_size }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Blake3Merkle, MemoryNodeStore};

    /// RFC 9162 §2.1.1 computed directly from the leaves: the reference the tree must match.
    fn reference_root(leaves: &[Vec<u8>]) -> Digest {
        match leaves.len() {
            0 => Blake3Merkle::empty_root(),
            1 => Blake3Merkle::hash_leaf(&leaves[0]),
            n => {
                let k = crate::merkle::split_point(n as u64) as usize;
                Blake3Merkle::hash_children(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_reference_at_every_size() {
        let leaves: Vec<Vec<u8>> = (0..70u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        assert_eq!(tree.root(), reference_root(&[]));
        for (i, leaf) in leaves.iter().enumerate() {
            tree.append(leaf).unwrap();
            assert_eq!(tree.root(), reference_root(&leaves[..=i]), "size {}", i + 1);
        }
        for size in 0..=leaves.len() {
            assert_eq!(tree.root_at(size as u64).unwrap(), reference_root(&leaves[..size]));
        }
        // Each leaf is stored once and each completed pair once: 2n - popcount(n) nodes.
        assert_eq!(tree.store().len(), 2 * 70 - 70u32.count_ones() as usize);
    }

    #[test]
    fn reopen_restores_frontier() {
        let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        let leaves: Vec<[u8; 4]> = (0..1000u32).map(u32::to_be_bytes).collect();
        tree.append_batch(leaves.iter().map(|l| &l[..])).unwrap();
        let root = tree.root();
        let mut reopened = MerkleTree::<Blake3Merkle, _>::open(tree.store().clone(), 1000).unwrap();
        assert_eq!(reopened.root(), root);
        tree.append(b"next").unwrap();
        reopened.append(b"next").unwrap();
        assert_eq!(reopened.root(), tree.root());
    }

    #[test]
    fn sizes_beyond_the_tree_are_refused() {
        let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        tree.append(b"a").unwrap();
        assert_eq!(tree.root_at(2), Err(ProveError::SizeBeyondTree { size: 2, tree_size: 1 }));
        assert_eq!(
            tree.inclusion_proof(1, 1).map(|_| ()),
            Err(ProveError::IndexOutOfRange { index: 1, size: 1 })
        );
        assert_eq!(
            tree.consistency_proof(1, 0).map(|_| ()),
            Err(ProveError::SizeDecreased { old_size: 1, new_size: 0 })
        );
    }

    #[test]
    fn reopening_beyond_the_store_reports_the_missing_node() {
        let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        tree.append(b"a").unwrap();
        let err = MerkleTree::<Blake3Merkle, _>::open(tree.store().clone(), 2).unwrap_err();
        assert_eq!(err, ProveError::MissingNode(NodeId::new(1, 0)));
    }
}
