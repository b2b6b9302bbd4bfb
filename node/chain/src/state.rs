//! The chain's authenticated state: a versioned key-value map in a Jellyfish Merkle tree (the
//! `jmt` crate) whose nodes live in RocksDB. Every committed version has a root; any key has an
//! inclusion proof, and a missing one a non-inclusion proof, against the root of any version
//! not yet pruned. The tree hashes with BLAKE3 keyed for [`Domain::ChainState`].
//!
//! One version per block, consecutive from 0 (the genesis state; the tree reads version v - 1 to
//! build version v): `commit(version, writes)` applies a block's writes atomically (the
//! tree's new nodes, the values, and the index of nodes the version made stale, in one RocksDB
//! write batch, fsynced); `prune_below(version)` deletes what only older versions need (tree nodes, and values written over since).

use std::path::Path;

use crate::proof::{StateHasher, StateProof, StateRoot};
use borsh::BorshDeserialize;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

const NODES: &str = "state_nodes";
const VALUES: &str = "state_values";
const STALE: &str = "state_stale";
const META: &str = "state_meta";
/// Lookups outside the authenticated state (transaction results by id), written with the
/// version they belong to.
const INDEX: &str = "chain_index";
const LATEST: &[u8] = b"latest";
const PRUNED: &[u8] = b"pruned_below";

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Stored bytes this code did not write.
    #[error("corrupt state {what}: {reason}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// A version that was pruned (or never committed).
    #[error("state version {version} is not available (pruned below {pruned_below}, latest {latest:?})")]
    Unavailable {
        /// The version asked for.
        version: Version,
        /// Versions below this are gone.
        pruned_below: Version,
        /// The latest committed version.
        latest: Option<Version>,
    },
    /// Versions must follow each other, from 0.
    #[error("version {version} given, {expected} expected next")]
    OutOfOrder {
        /// The version given.
        version: Version,
        /// The version that comes next.
        expected: Version,
    },
    /// The tree refused an operation.
    #[error("state tree: {0}")]
    Tree(String),
}

/// A stored value entry: the version that wrote it and its encoding.
type ValueEntry = (Version, Box<[u8]>);

/// The state store. Clones share one database (the app writes, RPC reads).
#[derive(Clone)]
pub struct StateStore {
    db: std::sync::Arc<DB>,
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

fn corrupt(what: &'static str) -> impl Fn(std::io::Error) -> StateError {
    move |e| StateError::Corrupt { what, reason: e.to_string() }
}

/// A value's key: the key hash, then the version big-endian (so the newest version at or
/// below a bound is one reverse seek away).
fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&key_hash.0);
    out[32..].copy_from_slice(&version.to_be_bytes());
    out
}

/// A state version computed but not yet written ([`StateStore::prepare`]).
pub struct PreparedVersion {
    version: Version,
    root: StateRoot,
    update: TreeUpdateBatch,
    index: Vec<(Vec<u8>, Vec<u8>)>,
}

impl PreparedVersion {
    /// Its version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Its root.
    pub fn root(&self) -> StateRoot {
        self.root
    }
}

impl std::fmt::Debug for PreparedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedVersion").field("version", &self.version).finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let families = [NODES, VALUES, STALE, META, INDEX]
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        Ok(StateStore { db: std::sync::Arc::new(DB::open_cf_descriptors(&options, path, families)?) })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("created at open")
    }

    fn meta(&self, key: &[u8]) -> Result<Option<Version>, StateError> {
        match self.db.get_cf(self.cf(META), key)? {
            None => Ok(None),
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StateError::Corrupt {
                    what: "metadata",
                    reason: format!("{} bytes", bytes.len()),
                })?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
        }
    }

    /// The latest committed version.
    pub fn latest_version(&self) -> Result<Option<Version>, StateError> {
        self.meta(LATEST)
    }

    /// Versions below this have been pruned.
    pub fn pruned_below(&self) -> Result<Version, StateError> {
        Ok(self.meta(PRUNED)?.unwrap_or(0))
    }

    fn check_available(&self, version: Version) -> Result<(), StateError> {
        let latest = self.latest_version()?;
        let pruned_below = self.pruned_below()?;
        if version < pruned_below || latest.is_none_or(|l| version > l) {
            return Err(StateError::Unavailable { version, pruned_below, latest });
        }
        Ok(())
    }

    fn tree(&self) -> JellyfishMerkleTree<'_, Self, StateHasher> {
        JellyfishMerkleTree::new(self)
    }

    /// Applies `writes` (key, new value or `None` to delete) as `version`, durably; returns the
    /// new root. `version` must be the next one: 0 first, then one more each time (a block that
    /// writes nothing still commits its version, with the same root).
    pub fn commit(
        &self,
        version: Version,
        writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<StateRoot, StateError> {
        self.commit_indexed(version, writes, Vec::new())
    }

    /// [`StateStore::commit`], writing `index` entries (outside the tree) in the same batch.
    pub fn commit_indexed(
        &self,
        version: Version,
        writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
        index: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<StateRoot, StateError> {
        let prepared = self.prepare(version, writes, index)?;
        self.write_prepared(prepared)
    }

    /// Computes version `version` from `writes` (and the `index` entries to store beside it)
    /// without writing anything: its root is known, and [`StateStore::write_prepared`] makes it
    /// durable. ABCI's split: `finalize` prepares, `commit` writes.
    pub fn prepare(
        &self,
        version: Version,
        writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
        index: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<PreparedVersion, StateError> {
        let expected = self.latest_version()?.map_or(0, |latest| latest + 1);
        if version != expected {
            return Err(StateError::OutOfOrder { version, expected });
        }
        let writes: Vec<(KeyHash, Option<OwnedValue>)> =
            writes.into_iter().map(|(key, value)| (KeyHash::with::<StateHasher>(&key), value)).collect();
        let (root, update) =
            self.tree().put_value_set(writes, version).map_err(|e| StateError::Tree(e.to_string()))?;
        Ok(PreparedVersion { version, root: root.0, update, index })
    }

    /// Writes a version [`StateStore::prepare`] computed, durably, in one batch; returns its
    /// root. Refused unless it is still the next version.
    pub fn write_prepared(&self, prepared: PreparedVersion) -> Result<StateRoot, StateError> {
        let expected = self.latest_version()?.map_or(0, |latest| latest + 1);
        if prepared.version != expected {
            return Err(StateError::OutOfOrder { version: prepared.version, expected });
        }
        self.write_update(prepared.version, &prepared.update, prepared.index)?;
        Ok(prepared.root)
    }

    fn write_update(
        &self,
        version: Version,
        update: &TreeUpdateBatch,
        index: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        for (key, value) in index {
            batch.put_cf(self.cf(INDEX), key, value);
        }
        for (key, node) in update.node_batch.nodes() {
            batch.put_cf(
                self.cf(NODES),
                borsh::to_vec(key).expect("keys serialize"),
                borsh::to_vec(node).expect("nodes serialize"),
            );
        }
        for ((value_version, key_hash), value) in update.node_batch.values() {
            let bytes = borsh::to_vec(value).expect("values serialize");
            batch.put_cf(self.cf(VALUES), value_key(key_hash, *value_version), bytes);
        }
        for stale in &update.stale_node_index_batch {
            let mut key = stale.stale_since_version.to_be_bytes().to_vec();
            key.extend(borsh::to_vec(&stale.node_key).expect("keys serialize"));
            batch.put_cf(self.cf(STALE), key, []);
        }
        batch.put_cf(self.cf(META), LATEST, version.to_be_bytes());
        Ok(self.db.write_opt(batch, &synced())?)
    }

    /// An index entry written by [`StateStore::commit_indexed`].
    pub fn index(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.db.get_cf(self.cf(INDEX), key)?)
    }

    /// The root of `version`.
    pub fn root(&self, version: Version) -> Result<StateRoot, StateError> {
        self.check_available(version)?;
        self.tree().get_root_hash(version).map(|r| r.0).map_err(|e| StateError::Tree(e.to_string()))
    }

    /// The value of `key` at `version`.
    pub fn get(&self, key: &[u8], version: Version) -> Result<Option<Vec<u8>>, StateError> {
        self.check_available(version)?;
        self.get_value_option(version, KeyHash::with::<StateHasher>(key))
            .map_err(|e| StateError::Tree(e.to_string()))
    }

    /// The value of `key` at `version` with its proof against that version's root.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, StateProof), StateError> {
        self.check_available(version)?;
        self.tree()
            .get_with_proof(KeyHash::with::<StateHasher>(key), version)
            .map_err(|e| StateError::Tree(e.to_string()))
    }

    /// The newest entry (version, encoded value) of `key_hash` at or below `max_version`: one
    /// reverse seek, as value keys end with the version.
    fn newest_entry(
        &self,
        key_hash: &KeyHash,
        max_version: Version,
    ) -> Result<Option<ValueEntry>, StateError> {
        let bound = value_key(key_hash, max_version);
        let mut iter = self.db.iterator_cf(self.cf(VALUES), IteratorMode::From(&bound, Direction::Reverse));
        match iter.next() {
            Some(item) => {
                let (key, value) = item?;
                if key.len() != 40 || key[..32] != key_hash.0 {
                    return Ok(None);
                }
                Ok(Some((u64::from_be_bytes(key[32..].try_into().expect("40-byte value keys")), value)))
            }
            None => Ok(None),
        }
    }

    /// The version of the newest write (or deletion) of `key_hash` at or below `max_version`.
    fn latest_write(&self, key_hash: &KeyHash, max_version: Version) -> Result<Option<Version>, StateError> {
        Ok(self.newest_entry(key_hash, max_version)?.map(|(version, _)| version))
    }

    /// Deletes the tree nodes, and the superseded values, that only versions below `version`
    /// need (they became stale at or before it). Those versions can no longer be read or proven.
    pub fn prune_below(&self, version: Version) -> Result<usize, StateError> {
        let mut batch = WriteBatch::default();
        let mut pruned = 0;
        for item in self.db.iterator_cf(self.cf(STALE), IteratorMode::Start) {
            let (key, _) = item?;
            let since = u64::from_be_bytes(key[..8].try_into().map_err(|_| StateError::Corrupt {
                what: "stale index",
                reason: format!("{} bytes", key.len()),
            })?);
            if since > version {
                break;
            }
            // A stale leaf's value (written at the leaf's version) goes with it if the key was
            // written again (or deleted) by `version`; a leaf also goes stale when it only moves
            // in the tree, and then its value is still the current one.
            let node_key = NodeKey::try_from_slice(&key[8..])
                .map_err(|e| StateError::Corrupt { what: "stale node key", reason: e.to_string() })?;
            if let Some(Node::Leaf(leaf)) =
                self.get_node_option(&node_key).map_err(|e| StateError::Tree(e.to_string()))?
            {
                let written = node_key.version();
                if self.latest_write(&leaf.key_hash(), version)?.is_some_and(|latest| latest > written) {
                    batch.delete_cf(self.cf(VALUES), value_key(&leaf.key_hash(), written));
                }
            }
            batch.delete_cf(self.cf(NODES), &key[8..]);
            batch.delete_cf(self.cf(STALE), &key);
            pruned += 1;
        }
        batch.put_cf(self.cf(META), PRUNED, version.max(self.pruned_below()?).to_be_bytes());
        self.db.write_opt(batch, &synced())?;
        Ok(pruned)
    }
}

impl TreeReader for StateStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let key = borsh::to_vec(node_key)?;
        match self.db.get_cf(self.cf(NODES), key)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(Node::try_from_slice(&bytes).map_err(corrupt("tree node"))?)),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        match self.newest_entry(&key_hash, max_version)? {
            Some((_, value)) => Ok(Option::<OwnedValue>::try_from_slice(&value).map_err(corrupt("value"))?),
            None => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only state restore asks for this; a full scan is fine there.
        let mut best: Option<(NodeKey, LeafNode)> = None;
        for item in self.db.iterator_cf(self.cf(NODES), IteratorMode::Start) {
            let (key, value) = item?;
            if let Node::Leaf(leaf) = Node::try_from_slice(&value).map_err(corrupt("tree node"))?
                && best.as_ref().is_none_or(|(_, b)| leaf.key_hash() > b.key_hash())
            {
                best = Some((NodeKey::try_from_slice(&key).map_err(corrupt("node key"))?, leaf));
            }
        }
        Ok(best)
    }
}
