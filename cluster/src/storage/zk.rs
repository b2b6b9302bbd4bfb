//! A partition's zk trees: the Poseidon and Rescue append-only trees a log created with zk
//! proofs keeps next to its BLAKE3 tree, over the same records in the same order.
//!
//! Every complete node is stored (`zk_nodes`: partition, tree id, level, index -> 32 bytes), in
//! the same `WriteBatch` as the records, so roots and paths are available for any past size and
//! a restart reloads the frontier with one read per level.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use pyralog_crypto::{Digest, ZkTree};
use pyralog_zk::poseidon::{Fr, PoseidonHasher, RecordFields};
use pyralog_zk::rescue::{self, RescueDigest, RescueHasher};
use pyralog_zk::tree::{self as ztree, AuthPath, DigestCodec, Frontier, MAX_DEPTH, NodeSource};
use rocksdb::WriteBatch;

use super::reader::corrupt;
use super::{PartitionId, Storage, StorageError};
use crate::model::Record;

/// The header that carries a record's 32-byte blinding for the Poseidon tree's value commitment
/// (records without it commit with blinding 0).
pub const BLINDING_HEADER: &str = "zk-blinding";

/// The depth of every zk tree (2^32 records per partition, like offsets' practical range).
pub const ZK_TREE_DEPTH: usize = MAX_DEPTH;

/// The blinding a record carries, if any; `Err` names what is wrong with the header.
pub fn record_blinding(record: &Record) -> Result<Option<[u8; 32]>, String> {
    let mut found = record.headers.iter().filter(|h| h.name == BLINDING_HEADER);
    let Some(header) = found.next() else { return Ok(None) };
    if found.next().is_some() {
        return Err(format!("more than one {BLINDING_HEADER} header"));
    }
    let blinding: [u8; 32] = header
        .value
        .as_slice()
        .try_into()
        .map_err(|_| format!("{BLINDING_HEADER} header must be 32 bytes, not {}", header.value.len()))?;
    Ok(Some(blinding))
}

/// The record's fields as the Poseidon tree commits to them: its key, its value and its
/// blinding. Appends with a malformed blinding header are refused; one that got into the log
/// anyway (a bypassed check) commits with blinding 0, so every replica computes the same leaf.
pub fn record_fields(record: &Record) -> RecordFields {
    let blinding = record_blinding(record).ok().flatten();
    RecordFields::of_record(record.key.as_deref(), &record.value, blinding.as_ref())
}

/// The record's Poseidon leaf ([`record_fields`]).
pub fn poseidon_leaf(record: &Record) -> Fr {
    record_fields(record).leaf()
}

/// Complete nodes of one zk tree of one partition, read from `zk_nodes`.
pub(crate) struct RocksZkNodes<'a> {
    pub(crate) storage: &'a Storage,
    pub(crate) id: PartitionId,
    pub(crate) tree: ZkTree,
}

impl<'a> RocksZkNodes<'a> {
    fn read<H: DigestCodec>(&self, level: usize, index: u64) -> Result<H::Digest, StorageError> {
        let key = self.id.zk_node_key(self.tree as u8, level as u8, index);
        let bytes = self
            .storage
            .db()
            .get_pinned_cf(self.storage.cf("zk_nodes"), key)?
            .ok_or_else(|| corrupt(self.id, "zk tree node", "missing"))?;
        let bytes: &[u8; 32] =
            bytes.as_ref().try_into().map_err(|_| corrupt(self.id, "zk tree node", "not 32 bytes"))?;
        H::from_bytes(bytes).ok_or_else(|| corrupt(self.id, "zk tree node", "not a canonical digest"))
    }
}

/// One source per hasher, so the generic tree code can read either tree.
struct Nodes<'a, H>(&'a RocksZkNodes<'a>, std::marker::PhantomData<H>);

impl<'a, H> Nodes<'a, H> {
    fn new(source: &'a RocksZkNodes<'a>) -> Self {
        Nodes(source, std::marker::PhantomData)
    }
}

impl<H: DigestCodec> NodeSource<H::Digest> for Nodes<'_, H> {
    type Error = StorageError;

    fn complete_node(&self, level: usize, index: u64) -> Result<H::Digest, StorageError> {
        self.0.read::<H>(level, index)
    }
}

/// The root of `tree` at `size` records, as the checkpoint carries it.
pub(crate) fn root_at(source: &RocksZkNodes<'_>, size: u64) -> Result<Digest, StorageError> {
    Ok(Digest(match source.tree {
        ZkTree::Poseidon => root_bytes::<PoseidonHasher>(source, size)?,
        ZkTree::Rescue => root_bytes::<RescueHasher>(source, size)?,
    }))
}

/// A zk tree's empty-subtree digests, computed once per process: every root and path needs them,
/// and the ladder costs 32 hashes (2.5 ms for Poseidon).
pub(crate) trait CachedZeros: DigestCodec<Digest: 'static> {
    /// `zeros[l]` for `l` in `0..=ZK_TREE_DEPTH`.
    fn zeros() -> &'static [Self::Digest];
}

impl CachedZeros for PoseidonHasher {
    fn zeros() -> &'static [Fr] {
        static ZEROS: OnceLock<Vec<Fr>> = OnceLock::new();
        ZEROS.get_or_init(|| ztree::empty_subtrees::<Self>(ZK_TREE_DEPTH))
    }
}

impl CachedZeros for RescueHasher {
    fn zeros() -> &'static [RescueDigest] {
        static ZEROS: OnceLock<Vec<RescueDigest>> = OnceLock::new();
        ZEROS.get_or_init(|| ztree::empty_subtrees::<Self>(ZK_TREE_DEPTH))
    }
}

fn root_bytes<H: CachedZeros>(source: &RocksZkNodes<'_>, size: u64) -> Result<[u8; 32], StorageError> {
    let root = ztree::node_at::<H, _>(&Nodes::<H>::new(source), H::zeros(), ZK_TREE_DEPTH, 0, size)?;
    Ok(H::to_bytes(&root))
}

/// The path of slot `index` of `tree` at `size` records (a leaf's path when `index < size`, the
/// next append's when `index == size`).
pub(crate) fn path<H: CachedZeros>(
    source: &RocksZkNodes<'_>,
    index: u64,
    size: u64,
) -> Result<AuthPath<H::Digest>, StorageError> {
    ztree::siblings::<H, _>(&Nodes::<H>::new(source), H::zeros(), index, size)
}

/// Leaf `index` of `tree` (stored as the level-0 node).
pub(crate) fn leaf<H: DigestCodec>(source: &RocksZkNodes<'_>, index: u64) -> Result<H::Digest, StorageError> {
    source.read::<H>(0, index)
}

/// The frontiers of the trees a partition keeps, in step with its BLAKE3 frontier.
#[derive(Debug, Clone, Default)]
pub(crate) struct ZkFrontiers {
    poseidon: Option<Frontier<PoseidonHasher>>,
    rescue: Option<Frontier<RescueHasher>>,
}

impl ZkFrontiers {
    /// Loads the frontiers of `trees` at `size` records.
    pub(crate) fn load(
        storage: &Storage,
        id: PartitionId,
        trees: &BTreeSet<ZkTree>,
        size: u64,
    ) -> Result<Self, StorageError> {
        let mut frontiers = ZkFrontiers::default();
        for tree in trees {
            let source = RocksZkNodes { storage, id, tree: *tree };
            match tree {
                ZkTree::Poseidon => {
                    frontiers.poseidon =
                        Some(Frontier::load(ZK_TREE_DEPTH, &Nodes::<PoseidonHasher>::new(&source), size)?)
                }
                ZkTree::Rescue => {
                    frontiers.rescue =
                        Some(Frontier::load(ZK_TREE_DEPTH, &Nodes::<RescueHasher>::new(&source), size)?)
                }
            }
        }
        Ok(frontiers)
    }

    /// Appends `record`'s leaves, putting the completed nodes into `batch`.
    pub(crate) fn push(
        &mut self,
        storage: &Storage,
        id: PartitionId,
        record: &Record,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        if let Some(frontier) = &mut self.poseidon {
            let leaf = poseidon_leaf(record);
            put_nodes::<PoseidonHasher>(storage, id, ZkTree::Poseidon, frontier.push(leaf)?, batch);
        }
        if let Some(frontier) = &mut self.rescue {
            let leaf = rescue::record_leaf(record.key.as_deref(), &record.value);
            put_nodes::<RescueHasher>(storage, id, ZkTree::Rescue, frontier.push(leaf)?, batch);
        }
        Ok(())
    }

    /// The roots now, by tree.
    pub(crate) fn roots(&self) -> BTreeMap<ZkTree, Digest> {
        let mut roots = BTreeMap::new();
        if let Some(frontier) = &self.poseidon {
            roots.insert(ZkTree::Poseidon, Digest(PoseidonHasher::to_bytes(&frontier.root())));
        }
        if let Some(frontier) = &self.rescue {
            roots.insert(ZkTree::Rescue, Digest(RescueHasher::to_bytes(&frontier.root())));
        }
        roots
    }
}

fn put_nodes<H: DigestCodec>(
    storage: &Storage,
    id: PartitionId,
    tree: ZkTree,
    nodes: Vec<ztree::CompletedNode<H::Digest>>,
    batch: &mut WriteBatch,
) {
    for (level, index, digest) in nodes {
        batch.put_cf(
            storage.cf("zk_nodes"),
            id.zk_node_key(tree as u8, level as u8, index),
            H::to_bytes(&digest),
        );
    }
}
