//! Read-only views of a partition: records, the key index and Merkle proofs, bounded by the
//! size the view was taken at, so a reader never sees past what was applied when it was made.

use pyralog_crypto::merkle::{
    Blake3Merkle, ConsistencyProof, InclusionProof, NodeId, NodeReader, ProveError, consistency_path,
    inclusion_path, root_at,
};
use std::collections::{BTreeMap, BTreeSet};

use pyralog_crypto::{Digest, ZkTree};
use pyralog_zk::poseidon::{Fr, PoseidonHasher};
use pyralog_zk::rescue::{RescueDigest, RescueHasher};
use pyralog_zk::tree::AuthPath;
use rocksdb::{Direction, IteratorMode};

use super::zk::{self, RocksZkNodes};
use super::{PartitionId, Storage, StorageError};
use crate::model::StoredRecord;

/// A read-only view of one partition up to `size` records. Cheap to make and to clone.
#[derive(Debug, Clone)]
pub struct PartitionReader {
    storage: Storage,
    id: PartitionId,
    size: u64,
}

impl PartitionReader {
    /// A view of partition `id` in `storage` holding its first `size` records.
    pub fn new(storage: Storage, id: PartitionId, size: u64) -> Self {
        PartitionReader { storage, id, size }
    }

    /// Records in the view.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `max_records` records from `from` on.
    pub fn read(&self, from: u64, max_records: usize) -> Result<Vec<StoredRecord>, StorageError> {
        let start = self.id.record_key(from);
        let iter = self
            .storage
            .db()
            .iterator_cf(self.storage.cf("records"), IteratorMode::From(&start, Direction::Forward));
        let mut out = Vec::new();
        for item in iter.take(max_records) {
            let (key, value) = item?;
            if !key.starts_with(&self.id.prefix()) {
                break;
            }
            let offset = u64::from_be_bytes(
                key.get(8..16)
                    .and_then(|k| k.try_into().ok())
                    .ok_or_else(|| corrupt(self.id, "record key", "bad length"))?,
            );
            if offset >= self.size {
                break;
            }
            out.push(
                StoredRecord::decode(offset, &value)
                    .map_err(|err| corrupt(self.id, "record", &err.to_string()))?,
            );
        }
        Ok(out)
    }

    /// The record at `offset`, if it exists.
    pub fn get(&self, offset: u64) -> Result<Option<StoredRecord>, StorageError> {
        if offset >= self.size {
            return Ok(None);
        }
        self.fetch(offset)
    }

    /// The record at `offset` as stored now, even past the view's size.
    fn fetch(&self, offset: u64) -> Result<Option<StoredRecord>, StorageError> {
        let bytes = self.storage.db().get_cf(self.storage.cf("records"), self.id.record_key(offset))?;
        bytes
            .map(|bytes| {
                StoredRecord::decode(offset, &bytes)
                    .map_err(|err| corrupt(self.id, "record", &err.to_string()))
            })
            .transpose()
    }

    /// The latest sequence `producer` stored in this partition, if any.
    pub fn producer_sequence(&self, producer: u64) -> Result<Option<u64>, StorageError> {
        Ok(super::partition::read_producer(&self.storage, self.id, producer)?.map(|(sequence, _)| sequence))
    }

    /// The latest record written with `key`.
    pub fn latest_by_key(&self, key: &[u8]) -> Result<Option<StoredRecord>, StorageError> {
        let index = self.storage.db().get_cf(self.storage.cf("key_index"), self.id.key_index_key(key))?;
        let Some(index) = index else { return Ok(None) };
        let offset = u64::from_be_bytes(
            index.as_slice().try_into().map_err(|_| corrupt(self.id, "key index", "bad length"))?,
        );
        // The index may already name a record applied after this view was taken; it is
        // committed and stored in the same write as the index entry, so serve it.
        self.fetch(offset)?
            .map(Some)
            .ok_or_else(|| corrupt(self.id, "key index", "points at a missing record"))
    }

    /// The Merkle root when the partition had `size` records.
    pub fn root_at(&self, size: u64) -> Result<Digest, StorageError> {
        self.check_size(size)?;
        root_at::<Blake3Merkle, _>(&self.nodes(), size).map_err(|err| prove_error(self.id, err))
    }

    /// Proof that the record at `offset` is in the tree of `size` records.
    pub fn inclusion_proof(
        &self,
        offset: u64,
        size: u64,
    ) -> Result<InclusionProof<Blake3Merkle>, StorageError> {
        self.check_size(size)?;
        let path = inclusion_path::<Blake3Merkle, _>(&self.nodes(), offset, size)
            .map_err(|err| prove_error(self.id, err))?;
        Ok(InclusionProof::new(offset, size, path))
    }

    /// Proof that the tree of `old_size` records is a prefix of the tree of `new_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof<Blake3Merkle>, StorageError> {
        self.check_size(new_size)?;
        let path = consistency_path::<Blake3Merkle, _>(&self.nodes(), old_size, new_size)
            .map_err(|err| prove_error(self.id, err))?;
        Ok(ConsistencyProof::new(old_size, new_size, path))
    }

    /// The root of the log's zk tree `tree` at `size` records (the caller knows the log keeps
    /// it: a tree it does not keep reads as corrupt).
    pub fn zk_root_at(&self, tree: ZkTree, size: u64) -> Result<Digest, StorageError> {
        self.check_size(size)?;
        zk::root_at(&self.zk_nodes(tree), size)
    }

    /// The roots of `trees` at `size` records.
    pub fn zk_roots_at(
        &self,
        trees: &BTreeSet<ZkTree>,
        size: u64,
    ) -> Result<BTreeMap<ZkTree, Digest>, StorageError> {
        trees.iter().map(|tree| Ok((*tree, self.zk_root_at(*tree, size)?))).collect()
    }

    /// The Poseidon tree's path of the record at `offset` in the tree of `size` records, with
    /// the leaf.
    pub fn poseidon_path(&self, offset: u64, size: u64) -> Result<(Fr, AuthPath<Fr>), StorageError> {
        self.check_size(size)?;
        if offset >= size {
            return Err(StorageError::OffsetOutOfRange { partition: self.id, offset, size });
        }
        let source = self.zk_nodes(ZkTree::Poseidon);
        Ok((zk::leaf::<PoseidonHasher>(&source, offset)?, zk::path::<PoseidonHasher>(&source, offset, size)?))
    }

    /// What an append-batch STARK over records `from_size..to_size` needs from the Rescue tree:
    /// the append path's siblings at `from_size` and the batch's leaves.
    pub fn rescue_batch(
        &self,
        from_size: u64,
        to_size: u64,
    ) -> Result<(Vec<RescueDigest>, Vec<RescueDigest>), StorageError> {
        self.check_size(to_size)?;
        if from_size > to_size {
            return Err(StorageError::SizeDecreased {
                partition: self.id,
                old_size: from_size,
                new_size: to_size,
            });
        }
        let source = self.zk_nodes(ZkTree::Rescue);
        let siblings = zk::path::<RescueHasher>(&source, from_size, from_size)?.siblings;
        let leaves = (from_size..to_size)
            .map(|index| zk::leaf::<RescueHasher>(&source, index))
            .collect::<Result<_, _>>()?;
        Ok((siblings, leaves))
    }

    fn zk_nodes(&self, tree: ZkTree) -> RocksZkNodes<'_> {
        RocksZkNodes { storage: &self.storage, id: self.id, tree }
    }

    fn nodes(&self) -> RocksNodes<'_> {
        RocksNodes { storage: &self.storage, id: self.id }
    }

    fn check_size(&self, requested: u64) -> Result<(), StorageError> {
        match requested <= self.size {
            true => Ok(()),
            false => {
                Err(StorageError::SizeBeyondPartition { partition: self.id, requested, size: self.size })
            }
        }
    }
}

/// Merkle nodes of one partition, read from the `merkle` column family.
pub(super) struct RocksNodes<'a> {
    pub(super) storage: &'a Storage,
    pub(super) id: PartitionId,
}

impl NodeReader for RocksNodes<'_> {
    type Error = StorageError;

    fn node(&self, node: NodeId) -> Result<Option<Digest>, StorageError> {
        let key = self.id.merkle_key(node.level, node.index);
        match self.storage.db().get_pinned_cf(self.storage.cf("merkle"), key)? {
            None => Ok(None),
            Some(bytes) => {
                let hash: [u8; 32] =
                    bytes.as_ref().try_into().map_err(|_| corrupt(self.id, "merkle node", "not 32 bytes"))?;
                Ok(Some(Digest(hash)))
            }
        }
    }
}

pub(super) fn corrupt(partition: PartitionId, what: &'static str, reason: &str) -> StorageError {
    StorageError::Corrupt { what, partition, reason: reason.to_owned() }
}

pub(super) fn prove_error(partition: PartitionId, err: ProveError<StorageError>) -> StorageError {
    match err {
        ProveError::Store(err) => err,
        ProveError::IndexOutOfRange { index, size } => {
            StorageError::OffsetOutOfRange { partition, offset: index, size }
        }
        ProveError::SizeBeyondTree { size: requested, tree_size } => {
            StorageError::SizeBeyondPartition { partition, requested, size: tree_size }
        }
        ProveError::SizeDecreased { old_size, new_size } => {
            StorageError::SizeDecreased { partition, old_size, new_size }
        }
        other => corrupt(partition, "merkle tree", &other.to_string()),
    }
}
