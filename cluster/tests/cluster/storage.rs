//! One storage suite, run against the on-disk database and the memory-only one: both modes must
//! behave identically (they share every code path but the RocksDB environment).

use pyralog_cluster::model::{ProducerSeq, Record};
use pyralog_cluster::storage::{
    AppendOutcome, PartitionId, PartitionStore, Storage, StorageError, StorageMode,
};
use pyralog_crypto::merkle::{Blake3Merkle, MemoryNodeStore, MerkleTree, VerifyError};
use pyralog_crypto::{Checkpoint, ClusterId, LogName};

const P0: PartitionId = PartitionId { log: 1, partition: 0 };
const P1: PartitionId = PartitionId { log: 1, partition: 1 };

/// Runs `check` once per storage mode.
fn each_mode(check: impl Fn(&Storage)) {
    let dir = tempfile::tempdir().unwrap();
    check(&Storage::open(StorageMode::Disk(dir.path().join("db"))).unwrap());
    check(&Storage::open(StorageMode::Memory).unwrap());
}

fn record(key: Option<&str>, value: &str) -> Record {
    Record {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.as_bytes().to_vec(),
        timestamp_ms: 1_763_856_000_000,
        scarab_id: 42,
        ..Record::default()
    }
}

fn produced(producer: u64, sequence: u64, value: &str) -> Record {
    Record { producer: Some(ProducerSeq { producer, sequence }), ..record(None, value) }
}

/// Applies a batch as the Raft layer would, with a marker.
fn apply(
    p: &mut PartitionStore,
    raft_index: u64,
    epoch: u64,
    records: &[Record],
) -> Result<Vec<AppendOutcome>, StorageError> {
    p.apply(raft_index, epoch, records, format!("marker {raft_index}").as_bytes())
}

fn offsets(outcomes: &[AppendOutcome]) -> Vec<u64> {
    outcomes
        .iter()
        .map(|o| match o {
            AppendOutcome::Appended { offset } => *offset,
            other => panic!("not appended: {other:?}"),
        })
        .collect()
}

#[test]
fn appends_get_contiguous_offsets_and_read_back() {
    each_mode(|storage| {
        let mut p = PartitionStore::open(storage, P0).unwrap();
        let first: Vec<_> = (0..5).map(|i| record(None, &format!("a{i}"))).collect();
        assert_eq!(offsets(&apply(&mut p, 1, 1, &first).unwrap()), vec![0, 1, 2, 3, 4]);
        let second: Vec<_> = (0..3).map(|i| record(None, &format!("b{i}"))).collect();
        assert_eq!(offsets(&apply(&mut p, 2, 2, &second).unwrap()), vec![5, 6, 7]);
        assert_eq!(p.state().size, 8);
        assert_eq!((p.state().epoch, p.state().applied_index), (2, 2));

        let all = p.reader().read(0, 100).unwrap();
        assert_eq!(all.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
        assert_eq!(all[4].record.value, b"a4");
        assert_eq!((all[4].epoch, all[5].epoch), (1, 2));
        assert_eq!(p.reader().read(6, 1).unwrap()[0].record.value, b"b1");
        assert!(p.reader().read(8, 10).unwrap().is_empty());
        assert_eq!(p.reader().get(7).unwrap().unwrap().record.value, b"b2");
        assert_eq!(p.reader().get(8).unwrap(), None);
    });
}

#[test]
fn partitions_are_isolated() {
    each_mode(|storage| {
        let mut p0 = PartitionStore::open(storage, P0).unwrap();
        let mut p1 = PartitionStore::open(storage, P1).unwrap();
        apply(&mut p0, 1, 1, &[record(Some("k"), "zero")]).unwrap();
        apply(&mut p1, 1, 1, &[record(Some("k"), "one"), record(None, "two")]).unwrap();
        assert_eq!(p0.reader().read(0, 10).unwrap().len(), 1);
        assert_eq!(p1.reader().read(0, 10).unwrap().len(), 2);
        assert_eq!(p0.reader().latest_by_key(b"k").unwrap().unwrap().record.value, b"zero");
        assert_ne!(p0.root(), p1.root());
    });
}

#[test]
fn latest_by_key_follows_overwrites() {
    each_mode(|storage| {
        let mut p = PartitionStore::open(storage, P0).unwrap();
        apply(
            &mut p,
            1,
            1,
            &[record(Some("user"), "v1"), record(Some("other"), "x"), record(Some("user"), "v2")],
        )
        .unwrap();
        apply(&mut p, 2, 1, &[record(Some("user"), "v3")]).unwrap();
        let latest = p.reader().latest_by_key(b"user").unwrap().unwrap();
        assert_eq!((latest.offset, latest.record.value.as_slice()), (3, &b"v3"[..]));
        assert_eq!(p.reader().latest_by_key(b"other").unwrap().unwrap().offset, 1);
        assert_eq!(p.reader().latest_by_key(b"missing").unwrap(), None);
    });
}

#[test]
fn idempotent_producers_are_stored_once() {
    each_mode(|storage| {
        let mut p = PartitionStore::open(storage, P0).unwrap();
        let batch: Vec<_> = (0..4).map(|s| produced(7, s, &format!("s{s}"))).collect();
        assert_eq!(offsets(&apply(&mut p, 1, 1, &batch).unwrap()), vec![0, 1, 2, 3]);
        // A retry of the latest (after a lost acknowledgement), an older one, a gap, and a
        // duplicate inside one batch.
        let retry =
            apply(&mut p, 2, 2, &[produced(7, 3, "s3"), produced(7, 1, "s1"), produced(7, 9, "s9")]).unwrap();
        assert_eq!(
            retry,
            vec![
                AppendOutcome::Duplicate { original_offset: Some(3) },
                AppendOutcome::Duplicate { original_offset: None },
                AppendOutcome::OutOfOrderSequence { expected: 4, got: 9 },
            ]
        );
        let mixed =
            apply(&mut p, 3, 2, &[produced(7, 4, "s4"), produced(7, 4, "s4"), produced(8, 100, "other")])
                .unwrap();
        assert_eq!(
            mixed,
            vec![
                AppendOutcome::Appended { offset: 4 },
                AppendOutcome::Duplicate { original_offset: Some(4) },
                AppendOutcome::Appended { offset: 5 },
            ]
        );
        assert_eq!(p.state().size, 6);
        assert_eq!(p.reader().read(0, 100).unwrap().len(), 6);
    });
}

/// The partition's roots and proofs match an independent in-memory tree over the same record
/// encodings, and every proof verifies against a checkpoint of that root.
#[test]
fn proofs_verify_against_checkpoints() {
    each_mode(|storage| {
        let mut p = PartitionStore::open(storage, P0).unwrap();
        let mut oracle = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        for batch in 0..10u64 {
            let records: Vec<_> =
                (0..batch + 1).map(|i| record(Some(&format!("k{i}")), &format!("{batch}/{i}"))).collect();
            apply(&mut p, batch + 1, 1, &records).unwrap();
        }
        for stored in p.reader().read(0, 1000).unwrap() {
            oracle.append(&stored.encode().unwrap()).unwrap();
        }
        let size = p.state().size;
        assert_eq!(size, 55);
        assert_eq!(p.root(), oracle.root());
        for old in [0, 1, 7, 32, 54, 55] {
            assert_eq!(p.reader().root_at(old).unwrap(), oracle.root_at(old).unwrap());
        }
        let checkpoint = |size: u64, root| Checkpoint {
            cluster: ClusterId::new("c1").unwrap(),
            log: LogName::new("events").unwrap(),
            partition: 0,
            epoch: 1,
            size,
            root,
            time_ms: 0,
            zk_roots: Default::default(),
        };
        let latest = checkpoint(size, p.root());
        for stored in p.reader().read(0, 1000).unwrap() {
            let proof = p.reader().inclusion_proof(stored.offset, size).unwrap();
            assert_eq!(latest.verify_inclusion(&stored.encode().unwrap(), &proof), Ok(()));
            // The same proof does not vouch for a changed record.
            let mut forged = stored.clone();
            forged.record.value.push(b'!');
            assert!(matches!(
                latest.verify_inclusion(&forged.encode().unwrap(), &proof),
                Err(VerifyError::RootMismatch { .. })
            ));
        }
        for old in 0..=size {
            let older = checkpoint(old, p.reader().root_at(old).unwrap());
            assert_eq!(
                latest.verify_extends(&older, &p.reader().consistency_proof(old, size).unwrap()),
                Ok(())
            );
        }
    });
}

#[test]
fn out_of_range_requests_get_typed_errors() {
    each_mode(|storage| {
        let mut p = PartitionStore::open(storage, P0).unwrap();
        apply(&mut p, 1, 1, &[record(None, "a"), record(None, "b")]).unwrap();
        assert!(matches!(
            p.reader().inclusion_proof(2, 2),
            Err(StorageError::OffsetOutOfRange { offset: 2, size: 2, .. })
        ));
        assert!(matches!(
            p.reader().inclusion_proof(0, 3),
            Err(StorageError::SizeBeyondPartition { requested: 3, size: 2, .. })
        ));
        assert!(matches!(
            p.reader().consistency_proof(2, 1),
            Err(StorageError::SizeDecreased { old_size: 2, new_size: 1, .. })
        ));
        assert!(matches!(p.reader().root_at(5), Err(StorageError::SizeBeyondPartition { .. })));
    });
}

#[test]
fn restart_restores_state_records_and_roots() {
    let dir = tempfile::tempdir().unwrap();
    let mode = StorageMode::Disk(dir.path().join("db"));
    let (state, root, records) = {
        let storage = Storage::open(mode.clone()).unwrap();
        let mut p = PartitionStore::open(&storage, P0).unwrap();
        for i in 0..37u64 {
            apply(
                &mut p,
                i + 1,
                3,
                &[record(Some(&format!("k{}", i % 5)), &format!("v{i}")), produced(1, i, "p")],
            )
            .unwrap();
        }
        storage.sync_wal().unwrap();
        (p.state(), p.root(), p.reader().read(0, 1000).unwrap())
    };
    let storage = Storage::open(mode).unwrap();
    let mut p = PartitionStore::open(&storage, P0).unwrap();
    assert_eq!((p.state(), p.root()), (state, root));
    assert_eq!(p.marker().unwrap().as_deref(), Some(&b"marker 37"[..]));
    assert_eq!(p.reader().read(0, 1000).unwrap(), records);
    assert_eq!(p.reader().latest_by_key(b"k1").unwrap().unwrap().record.value, b"v36");
    // Producer state survived: the retry is recognised, the next sequence continues.
    assert_eq!(
        apply(&mut p, 38, 3, &[produced(1, 36, "p"), produced(1, 37, "p")]).unwrap(),
        vec![AppendOutcome::Duplicate { original_offset: Some(73) }, AppendOutcome::Appended { offset: 74 }]
    );
}

#[test]
fn write_stats_count_the_bytes_each_append_writes() {
    each_mode(|storage| {
        let mut p = PartitionStore::open(storage, P0).unwrap();
        let before = storage.write_stats();
        let value = "v".repeat(10_000);
        let records: Vec<_> = (0..10).map(|_| record(None, &value)).collect();
        apply(&mut p, 1, 1, &records).unwrap();
        let after = storage.write_stats();
        let payload = 10 * value.len() as u64;
        assert!(after.user - before.user >= payload, "{before:?} -> {after:?}");
        assert!(after.wal - before.wal >= payload, "{before:?} -> {after:?}");
    });
}
