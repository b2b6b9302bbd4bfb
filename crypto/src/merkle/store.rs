//! Where interior nodes live: a small read/write trait pair and the in-memory implementation.
//!
//! The cluster implements [`NodeReader`] over RocksDB and writes the nodes a [`super::Frontier`]
//! emits inside its own write batch, so tree nodes and partition state commit atomically.

use super::NodeId;
use crate::hash::Digest;

/// Reads stored perfect-subtree roots.
pub trait NodeReader {
    /// The storage backend's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The root of the perfect subtree `id`, or `None` if it was never written.
    fn node(&self, id: NodeId) -> Result<Option<Digest>, Self::Error>;
}

/// Writes perfect-subtree roots. Durability is the implementation's contract to document.
pub trait NodeWriter: NodeReader {
    /// Stores `nodes`, in the order an append produced them.
    fn put_nodes(&mut self, nodes: &[(NodeId, Digest)]) -> Result<(), Self::Error>;
}

/// Nodes in memory, one vector a level: 64 bytes a leaf on average.
#[derive(Debug, Clone, Default)]
pub struct MemoryNodeStore {
    levels: Vec<Vec<Digest>>,
}

/// A write that would leave a hole in a level of a [`MemoryNodeStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {id:?} written before node {expected} of level {}", id.level)]
pub struct MemoryStoreError {
    /// The rejected position.
    pub id: NodeId,
    /// The next index that level accepts.
    pub expected: u64,
}

impl MemoryNodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many nodes are stored in all.
    pub fn len(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.levels.iter().all(Vec::is_empty)
    }
}

impl NodeReader for MemoryNodeStore {
    type Error = MemoryStoreError;

    fn node(&self, id: NodeId) -> Result<Option<Digest>, Self::Error> {
        let level = self.levels.get(usize::from(id.level));
        Ok(level.and_then(|nodes| usize::try_from(id.index).ok().and_then(|i| nodes.get(i))).copied())
    }
}

impl NodeWriter for MemoryNodeStore {
    fn put_nodes(&mut self, nodes: &[(NodeId, Digest)]) -> Result<(), Self::Error> {
        for &(id, hash) in nodes {
            let level = usize::from(id.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            let row = &mut self.levels[level];
            let expected = row.len() as u64;
            match id.index {
                i if i == expected => row.push(hash),
                // Rewriting an existing node (a replayed append) is idempotent.
                i if i < expected => row[i as usize] = hash,
                _ => return Err(MemoryStoreError { id, expected }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_holes_and_reads_back() {
        let mut store = MemoryNodeStore::new();
        let h = Digest([7; 32]);
        store.put_nodes(&[(NodeId::new(0, 0), h)]).unwrap();
        assert_eq!(store.node(NodeId::new(0, 0)), Ok(Some(h)));
        assert_eq!(store.node(NodeId::new(0, 1)), Ok(None));
        assert_eq!(store.node(NodeId::new(9, u64::MAX)), Ok(None));
        assert_eq!(
            store.put_nodes(&[(NodeId::new(0, 2), h)]),
            Err(MemoryStoreError { id: NodeId::new(0, 2), expected: 1 })
        );
        assert_eq!(store.len(), 1);
    }
}
