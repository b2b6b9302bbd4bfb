//! One partition's replicated state: records, Merkle tree, key index, producer sequences.
//!
//! A [`PartitionStore`] is owned by the partition's state machine (one owner, no locks). Applying
//! a batch writes everything in one `WriteBatch` without `fsync`: the Raft log is the durable
//! record, and the applied Raft index is stored in the same batch, so after a crash the state
//! machine resumes from a consistent point and Raft re-applies the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pyralog_crypto::merkle::{Blake3Merkle, Frontier, MerkleHasher};
use pyralog_crypto::{Digest, ZkTree};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use super::keys::MARKER_TAG;
use super::reader::{RocksNodes, corrupt, prove_error};
use super::zk::ZkFrontiers;
use super::{PartitionId, PartitionReader, Storage, StorageError};
use crate::model::{Record, StoredRecord};

/// The persisted summary of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionState {
    /// Number of records, which is the next offset and the Merkle tree size.
    pub size: u64,
    /// Epoch of the latest applied write.
    pub epoch: u64,
    /// Raft index of the latest applied entry.
    pub applied_index: u64,
}

impl PartitionState {
    fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.size.to_be_bytes());
        out[8..16].copy_from_slice(&self.epoch.to_be_bytes());
        out[16..].copy_from_slice(&self.applied_index.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 24] = bytes.try_into().ok()?;
        let field = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        Some(PartitionState { size: field(0), epoch: field(8), applied_index: field(16) })
    }
}

/// Column families holding partition data, in export order (the index is part of the export
/// format: only append).
const PARTITION_FAMILIES: [&str; 5] = ["partition_state", "records", "key_index", "merkle", "zk_nodes"];

/// Everything a partition stores, keyed relative to the partition: what a Raft snapshot carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PartitionExport {
    /// (column family index, key without the partition prefix, value).
    pub entries: Vec<(u8, Vec<u8>, Vec<u8>)>,
}

impl PartitionExport {
    /// The Raft layer's applied marker carried by the export (same point in time as the data).
    pub fn marker(&self) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(family, key, _)| {
                PARTITION_FAMILIES[usize::from(*family)] == "partition_state" && key[..] == [MARKER_TAG]
            })
            .map(|(_, _, value)| value.as_slice())
    }
}

/// What happened to one record of an applied batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AppendOutcome {
    /// Stored at this offset.
    Appended {
        /// The record's offset.
        offset: u64,
    },
    /// The producer already wrote this sequence number; nothing was stored. The original offset
    /// is known when it was the producer's latest sequence (the retry case).
    Duplicate {
        /// Offset of the original, if known.
        original_offset: Option<u64>,
    },
    /// The producer skipped sequence numbers; nothing was stored.
    OutOfOrderSequence {
        /// The sequence number the partition expected.
        expected: u64,
        /// The one it got.
        got: u64,
    },
}

/// A partition's state machine storage. See the module docs.
#[derive(Debug)]
pub struct PartitionStore {
    storage: Storage,
    id: PartitionId,
    state: PartitionState,
    frontier: Frontier<Blake3Merkle>,
    zk_trees: BTreeSet<ZkTree>,
    zk: ZkFrontiers,
}

impl PartitionStore {
    /// Opens the partition of a log without zk trees; see [`PartitionStore::open_with_zk`].
    pub fn open(storage: &Storage, id: PartitionId) -> Result<Self, StorageError> {
        PartitionStore::open_with_zk(storage, id, &BTreeSet::new())
    }

    /// Opens the partition, rebuilding the Merkle frontier and those of its log's `zk_trees` from
    /// stored nodes (O(log n) reads each).
    pub fn open_with_zk(
        storage: &Storage,
        id: PartitionId,
        zk_trees: &BTreeSet<ZkTree>,
    ) -> Result<Self, StorageError> {
        let state = match storage.db().get_cf(storage.cf("partition_state"), id.state_key())? {
            None => PartitionState::default(),
            Some(bytes) => {
                PartitionState::decode(&bytes).ok_or_else(|| corrupt(id, "partition state", "bad length"))?
            }
        };
        let reader = RocksNodes { storage, id };
        let frontier = Frontier::load(&reader, state.size).map_err(|err| prove_error(id, err))?;
        let zk = ZkFrontiers::load(storage, id, zk_trees, state.size)?;
        Ok(PartitionStore { storage: storage.clone(), id, state, frontier, zk_trees: zk_trees.clone(), zk })
    }

    /// The node storage this partition lives in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Which partition this is.
    pub fn id(&self) -> PartitionId {
        self.id
    }

    /// The persisted summary.
    pub fn state(&self) -> PartitionState {
        self.state
    }

    /// The current Merkle root.
    pub fn root(&self) -> Digest {
        self.frontier.root()
    }

    /// The current roots of the log's zk trees.
    pub fn zk_roots(&self) -> BTreeMap<ZkTree, Digest> {
        self.zk.roots()
    }

    /// Applies the records of Raft entry `raft_index`, written in `epoch`, in one atomic write
    /// together with the Raft layer's opaque applied `marker`.
    pub fn apply(
        &mut self,
        raft_index: u64,
        epoch: u64,
        records: &[Record],
        marker: &[u8],
    ) -> Result<Vec<AppendOutcome>, StorageError> {
        let (db, id) = (self.storage.db(), self.id);
        let mut batch = WriteBatch::default();
        let mut state = self.state;
        let mut frontier = self.frontier.clone();
        let mut zk = self.zk.clone();
        let mut nodes = Vec::new();
        // Producer sequences touched by this batch, ahead of what is in the database.
        let mut producers: HashMap<u64, (u64, u64)> = HashMap::new();
        let mut outcomes = Vec::with_capacity(records.len());

        for record in records {
            if let Some(p) = record.producer {
                let last = match producers.get(&p.producer) {
                    Some(seen) => Some(*seen),
                    None => self.producer(p.producer)?,
                };
                if let Some((last_seq, last_offset)) = last {
                    if p.sequence <= last_seq {
                        let original_offset = (p.sequence == last_seq).then_some(last_offset);
                        outcomes.push(AppendOutcome::Duplicate { original_offset });
                        continue;
                    }
                    if p.sequence != last_seq + 1 {
                        outcomes.push(AppendOutcome::OutOfOrderSequence {
                            expected: last_seq + 1,
                            got: p.sequence,
                        });
                        continue;
                    }
                }
                producers.insert(p.producer, (p.sequence, state.size));
            }
            let stored = StoredRecord { offset: state.size, epoch, record: record.clone() };
            let bytes = stored.encode().map_err(|err| corrupt(id, "record", &err.to_string()))?;
            frontier.push(Blake3Merkle::hash_leaf(&bytes), &mut nodes);
            zk.push(&self.storage, id, record, &mut batch)?;
            batch.put_cf(self.storage.cf("records"), id.record_key(state.size), &bytes);
            if let Some(key) = &record.key {
                batch.put_cf(self.storage.cf("key_index"), id.key_index_key(key), state.size.to_be_bytes());
            }
            outcomes.push(AppendOutcome::Appended { offset: state.size });
            state.size += 1;
        }
        for (producer, (sequence, offset)) in &producers {
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&sequence.to_be_bytes());
            value[8..].copy_from_slice(&offset.to_be_bytes());
            batch.put_cf(self.storage.cf("partition_state"), id.producer_key(*producer), value);
        }
        for (node, hash) in &nodes {
            batch.put_cf(self.storage.cf("merkle"), id.merkle_key(node.level, node.index), hash.as_bytes());
        }
        state.epoch = epoch;
        state.applied_index = raft_index;
        batch.put_cf(self.storage.cf("partition_state"), id.state_key(), state.encode());
        batch.put_cf(self.storage.cf("partition_state"), id.marker_key(), marker);

        let mut options = WriteOptions::default();
        options.set_sync(false); // the Raft log is the durable record; see the module docs
        db.write_opt(batch, &options)?;
        self.state = state;
        self.frontier = frontier;
        self.zk = zk;
        Ok(outcomes)
    }

    /// Records that Raft entry `raft_index` (which carries no records) was applied, with the new
    /// `epoch` and the Raft layer's `marker`, in one atomic write.
    pub fn mark_applied(&mut self, raft_index: u64, epoch: u64, marker: &[u8]) -> Result<(), StorageError> {
        self.apply(raft_index, epoch, &[], marker).map(drop)
    }

    /// The Raft layer's applied marker, as last written.
    pub fn marker(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.storage.db().get_cf(self.storage.cf("partition_state"), self.id.marker_key())?)
    }

    /// A consistent copy of everything partition `id` stores (state, marker, producers,
    /// records, key index, Merkle and zk tree nodes), for a Raft snapshot. Needs no open store, so a
    /// snapshot builder runs beside the state machine without loading the frontier.
    pub fn export(storage: &Storage, id: PartitionId) -> Result<PartitionExport, StorageError> {
        let snapshot = storage.db().snapshot();
        let prefix = id.prefix();
        let mut entries = Vec::new();
        for (family, name) in PARTITION_FAMILIES.iter().enumerate() {
            let iter =
                snapshot.iterator_cf(storage.cf(name), IteratorMode::From(&prefix, Direction::Forward));
            for item in iter {
                let (key, value) = item?;
                if !key.starts_with(&prefix) {
                    break;
                }
                entries.push((family as u8, key[prefix.len()..].to_vec(), value.to_vec()));
            }
        }
        Ok(PartitionExport { entries })
    }

    /// Replaces everything this partition stores with `export`, atomically, and reopens it.
    pub fn import(&mut self, export: &PartitionExport) -> Result<(), StorageError> {
        let prefix = self.id.prefix();
        // Keys of this partition are `prefix || suffix`; the next (log, partition) bounds them.
        let upper = match u64::from_be_bytes(prefix).checked_add(1) {
            Some(next) => next.to_be_bytes().to_vec(),
            None => vec![0xff; 32],
        };
        let mut batch = WriteBatch::default();
        for name in PARTITION_FAMILIES {
            batch.delete_range_cf(self.storage.cf(name), &prefix[..], &upper[..]);
        }
        for (family, key, value) in &export.entries {
            let name = PARTITION_FAMILIES
                .get(usize::from(*family))
                .ok_or_else(|| corrupt(self.id, "snapshot", "unknown column family"))?;
            let mut full_key = prefix.to_vec();
            full_key.extend_from_slice(key);
            batch.put_cf(self.storage.cf(name), full_key, value);
        }
        self.storage.db().write(batch)?;
        *self = PartitionStore::open_with_zk(&self.storage, self.id, &self.zk_trees)?;
        Ok(())
    }

    /// The producer's latest sequence number and its offset.
    fn producer(&self, producer: u64) -> Result<Option<(u64, u64)>, StorageError> {
        read_producer(&self.storage, self.id, producer)
    }

    /// A read-only view of the partition as of now.
    pub fn reader(&self) -> PartitionReader {
        PartitionReader::new(self.storage.clone(), self.id, self.state.size)
    }
}

/// The latest sequence `producer` stored in partition `id` and that record's offset.
pub(crate) fn read_producer(
    storage: &Storage,
    id: PartitionId,
    producer: u64,
) -> Result<Option<(u64, u64)>, StorageError> {
    let key = id.producer_key(producer);
    match storage.db().get_cf(storage.cf("partition_state"), key)? {
        None => Ok(None),
        Some(bytes) if bytes.len() == 16 => {
            let sequence = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
            let offset = u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"));
            Ok(Some((sequence, offset)))
        }
        Some(_) => Err(corrupt(id, "producer sequence", "bad length")),
    }
}

#[cfg(test)]
mod tests {
    use pyralog_crypto::{Checkpoint, ClusterId, LogName};

    use super::*;
    use crate::storage::StorageMode;

    /// Bytes changed on disk behind the store's back are caught: the record read back no longer
    /// verifies against the checkpoint signed before the change.
    #[test]
    fn records_tampered_on_disk_fail_verification() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(StorageMode::Disk(dir.path().join("db"))).unwrap();
        let id = PartitionId { log: 9, partition: 2 };
        let mut store = PartitionStore::open(&storage, id).unwrap();
        let records: Vec<Record> = (0..20)
            .map(|i| Record { value: format!("value {i}").into_bytes(), ..Record::default() })
            .collect();
        store.apply(1, 1, &records, b"m").unwrap();
        let checkpoint = Checkpoint {
            cluster: ClusterId::new("c").unwrap(),
            log: LogName::new("l").unwrap(),
            partition: 2,
            epoch: 1,
            size: 20,
            root: store.root(),
            time_ms: 0,
            zk_roots: Default::default(),
        };
        let proof = store.reader().inclusion_proof(7, 20).unwrap();
        let honest = store.reader().get(7).unwrap().unwrap();
        assert_eq!(checkpoint.verify_inclusion(&honest.encode().unwrap(), &proof), Ok(()));

        // Flip one byte of the stored value, the way a bad disk or an attacker would.
        let key = id.record_key(7);
        let mut bytes = storage.db().get_cf(storage.cf("records"), key).unwrap().unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        storage.db().put_cf(storage.cf("records"), key, &bytes).unwrap();

        let tampered = store.reader().get(7).unwrap().unwrap();
        assert_ne!(tampered.record.value, honest.record.value);
        assert!(matches!(
            checkpoint.verify_inclusion(&tampered.encode().unwrap(), &proof),
            Err(pyralog_crypto::merkle::VerifyError::RootMismatch { .. })
        ));
        // Truncated bytes are refused as corrupt rather than misread.
        storage.db().put_cf(storage.cf("records"), key, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(store.reader().get(7), Err(StorageError::Corrupt { what: "record", .. })));
    }

    /// A log's zk trees follow its records: the roots equal in-memory trees over the same leaves,
    /// survive a reopen (frontiers reloaded from stored nodes), serve paths at past sizes, and
    /// travel in a Raft snapshot export.
    #[test]
    fn zk_trees_follow_the_records_and_survive_reopen_and_snapshots() {
        use pyralog_zk::poseidon::PoseidonHasher;
        use pyralog_zk::rescue::{self, RescueHasher};
        use pyralog_zk::tree::DigestCodec;
        use pyralog_zk::{PoseidonTree, RescueTree};

        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(StorageMode::Disk(dir.path().join("db"))).unwrap();
        let id = PartitionId { log: 3, partition: 0 };
        let trees: BTreeSet<ZkTree> = ZkTree::ALL.into_iter().collect();
        let mut store = PartitionStore::open_with_zk(&storage, id, &trees).unwrap();
        let records: Vec<Record> = (0..13u8)
            .map(|i| Record { key: Some(vec![i]), value: vec![i; 3], ..Record::default() })
            .collect();
        let (mut poseidon, mut rescue_tree) = (PoseidonTree::new(32).unwrap(), RescueTree::new(32).unwrap());
        for record in &records {
            poseidon.append(super::super::zk::poseidon_leaf(record)).unwrap();
            rescue_tree.append(rescue::record_leaf(record.key.as_deref(), &record.value)).unwrap();
        }
        store.apply(1, 1, &records[..6], b"m").unwrap();
        store.apply(2, 1, &records[6..], b"m").unwrap();
        let expected = |size: u64| {
            BTreeMap::from([
                (ZkTree::Poseidon, Digest(PoseidonHasher::to_bytes(&poseidon.root_at(size).unwrap()))),
                (ZkTree::Rescue, Digest(RescueHasher::to_bytes(&rescue_tree.root_at(size).unwrap()))),
            ])
        };
        assert_eq!(store.zk_roots(), expected(13));
        let reader = store.reader();
        for size in [0, 1, 6, 13] {
            for tree in ZkTree::ALL {
                assert_eq!(reader.zk_root_at(tree, size).unwrap(), expected(size)[&tree]);
            }
        }
        assert_eq!(
            reader.poseidon_path(4, 6).unwrap(),
            (poseidon.leaf(4).unwrap(), poseidon.path(4, 6).unwrap())
        );
        let (siblings, leaves) = reader.rescue_batch(6, 13).unwrap();
        assert_eq!(siblings, rescue_tree.append_path(6).unwrap().siblings);
        assert_eq!(leaves.len(), 7);

        let reopened = PartitionStore::open_with_zk(&storage, id, &trees).unwrap();
        assert_eq!(reopened.zk_roots(), expected(13));
        let export = PartitionStore::export(&storage, id).unwrap();
        let other = Storage::open(StorageMode::Memory).unwrap();
        let mut copy = PartitionStore::open_with_zk(&other, id, &trees).unwrap();
        copy.import(&export).unwrap();
        assert_eq!(copy.zk_roots(), expected(13));
        assert!(matches!(
            reader.zk_root_at(ZkTree::Rescue, 14),
            Err(StorageError::SizeBeyondPartition { .. })
        ));
    }
}
