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

/// The key in `meta` that names the format of the zk trees in `zk_nodes`.
const TREE_FORMAT_KEY: &[u8] = b"zk_tree_format";

/// The zk trees' format: 2 since the Poseidon hash became one permutation of `[tag, a, b]`
/// (`pyralog_zk::poseidon`; format 1 absorbed the tag as a third input). Rescue trees did not
/// change.
const TREE_FORMAT: u8 = 2;

/// Refuses a database whose Poseidon trees were written in another format (their roots would
/// disagree with every upgraded peer's, and the checkpoints it signs with them), and marks a
/// database without Poseidon nodes as holding the current format.
pub(super) fn check_tree_format(db: &rocksdb::DB) -> Result<(), StorageError> {
    let meta = db.cf_handle("meta").expect("every column family is created at open");
    match db.get_cf(meta, TREE_FORMAT_KEY)? {
        Some(format) if format.as_slice() == [TREE_FORMAT] => return Ok(()),
        Some(format) => {
            return Err(StorageError::Incompatible(format!(
                "its zk trees are in format {format:?}, this version reads format {TREE_FORMAT}"
            )));
        }
        None => {}
    }
    if holds_poseidon_nodes(db)? {
        return Err(StorageError::Incompatible(format!(
            "its Poseidon trees are in format 1 (the tag absorbed as an input), this version computes \
             format {TREE_FORMAT} (the tag in the capacity element), so its zk roots would disagree with \
             its peers'; upgrade the cluster's nodes together, moving each data directory aside to \
             re-sync the logs from a peer or re-create them"
        )));
    }
    Ok(db.put_cf(meta, TREE_FORMAT_KEY, [TREE_FORMAT])?)
}

/// Whether any partition keeps Poseidon nodes: one seek per partition with zk nodes (a
/// partition's keys sort by tree id, Poseidon's first).
fn holds_poseidon_nodes(db: &rocksdb::DB) -> Result<bool, StorageError> {
    let nodes = db.cf_handle("zk_nodes").expect("every column family is created at open");
    let mut iterator = db.raw_iterator_cf(nodes);
    iterator.seek_to_first();
    while let Some(key) = iterator.key() {
        let (Some(prefix), Some(&tree)) = (key.first_chunk::<8>(), key.get(8)) else {
            return Err(StorageError::Incompatible("a zk node key shorter than 9 bytes".into()));
        };
        if tree == ZkTree::Poseidon as u8 {
            return Ok(true);
        }
        let Some(next) = u64::from_be_bytes(*prefix).checked_add(1) else { break };
        iterator.seek(next.to_be_bytes());
    }
    iterator.status()?;
    Ok(false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageMode;

    /// Writes a node of `tree` in partition (7, 1) and forgets the format mark, as a database
    /// of a version before the mark would be; then reopens it.
    fn reopen_with_unmarked(dir: &std::path::Path, tree: ZkTree) -> Result<Storage, StorageError> {
        {
            let storage = Storage::open(StorageMode::Disk(dir.to_path_buf())).unwrap();
            let key = PartitionId { log: 7, partition: 1 }.zk_node_key(tree as u8, 0, 0);
            storage.db().put_cf(storage.cf("zk_nodes"), key, [1u8; 32]).unwrap();
            storage.db().delete_cf(storage.cf("meta"), TREE_FORMAT_KEY).unwrap();
        }
        Storage::open(StorageMode::Disk(dir.to_path_buf()))
    }

    #[test]
    fn a_database_with_format_1_poseidon_trees_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let refused = reopen_with_unmarked(dir.path(), ZkTree::Poseidon).unwrap_err();
        assert!(
            matches!(&refused, StorageError::Incompatible(reason) if reason.contains("format 1")),
            "{refused}"
        );
    }

    #[test]
    fn a_database_with_only_rescue_trees_is_marked_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let storage = reopen_with_unmarked(dir.path(), ZkTree::Rescue).unwrap();
        let mark = storage.db().get_cf(storage.cf("meta"), TREE_FORMAT_KEY).unwrap();
        assert_eq!(mark.as_deref(), Some(&[TREE_FORMAT][..]));
    }

    #[test]
    fn a_database_marked_with_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(StorageMode::Disk(dir.path().to_path_buf())).unwrap();
            storage.db().put_cf(storage.cf("meta"), TREE_FORMAT_KEY, [9u8]).unwrap();
        }
        let refused = Storage::open(StorageMode::Disk(dir.path().to_path_buf())).unwrap_err();
        assert!(matches!(refused, StorageError::Incompatible(_)), "{refused}");
    }
}
