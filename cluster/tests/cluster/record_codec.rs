//! The record codec: canonical, round-tripping, and total on arbitrary input; the Arrow form
//! round-trips too.

use proptest::prelude::*;
use pyralog_cluster::columnar::{batch_to_ipc, batch_to_records, ipc_to_batches, records_to_batch};
use pyralog_cluster::model::{Header, ProducerSeq, Record, RecordDecodeError, StoredRecord};

fn any_record() -> impl Strategy<Value = StoredRecord> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(("[a-z-]{0,12}", prop::collection::vec(any::<u8>(), 0..20)), 0..4),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of((any::<u64>(), any::<u64>())),
    )
        .prop_map(|(offset, epoch, key, value, headers, timestamp_ms, scarab_id, producer)| {
            StoredRecord {
                offset,
                epoch,
                record: Record {
                    key,
                    value,
                    headers: headers.into_iter().map(|(name, value)| Header { name, value }).collect(),
                    timestamp_ms,
                    scarab_id,
                    producer: producer.map(|(producer, sequence)| ProducerSeq { producer, sequence }),
                },
            }
        })
}

proptest! {
    #[test]
    fn round_trips(stored in any_record()) {
        let bytes = stored.encode().unwrap();
        prop_assert_eq!(StoredRecord::decode(stored.offset, &bytes), Ok(stored));
    }

    #[test]
    fn every_truncation_is_an_error(stored in any_record(), cut in any::<prop::sample::Index>()) {
        let bytes = stored.encode().unwrap();
        let cut = cut.index(bytes.len());
        let result = StoredRecord::decode(0, &bytes[..cut]);
        prop_assert!(matches!(result, Err(RecordDecodeError::Truncated(_))), "{:?}", result);
    }

    #[test]
    fn decoding_is_total_and_canonical(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(stored) = StoredRecord::decode(0, &bytes) {
            prop_assert_eq!(stored.encode().unwrap(), bytes);
        }
    }

    /// Records survive Arrow and its IPC stream bytes unchanged.
    #[test]
    fn arrow_round_trips(records in prop::collection::vec(any_record(), 0..12)) {
        let batch = records_to_batch(&records).unwrap();
        prop_assert_eq!(batch.num_rows(), records.len());
        let batches = ipc_to_batches(&batch_to_ipc(&batch).unwrap()).unwrap();
        prop_assert_eq!(batches.len(), 1);
        prop_assert_eq!(batch_to_records(&batches[0]).unwrap(), records);
    }

    /// Damaged IPC bytes are an error or decode to something, never a panic.
    #[test]
    fn arrow_ipc_reading_is_total(records in prop::collection::vec(any_record(), 1..4), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
        let mut bytes = batch_to_ipc(&records_to_batch(&records).unwrap()).unwrap();
        let at = flip.index(bytes.len());
        bytes[at] ^= 0x5a;
        let cut = cut.index(bytes.len());
        if let Ok(batches) = ipc_to_batches(&bytes[..cut]) {
            for batch in batches {
                let _ = batch_to_records(&batch);
            }
        }
    }

    /// Any change to a record changes its Merkle leaf.
    #[test]
    fn leaf_hash_binds_every_field(stored in any_record(), bit in 0usize..4096) {
        let bytes = stored.encode().unwrap();
        let mut changed = bytes.clone();
        changed[bit / 8 % bytes.len()] ^= 1 << (bit % 8);
        if let Ok(other) = StoredRecord::decode(stored.offset, &changed) {
            prop_assert_ne!(other.leaf_hash().unwrap(), stored.leaf_hash().unwrap());
        }
    }
}

#[test]
fn malformed_records_get_typed_errors() {
    let stored =
        StoredRecord { offset: 0, epoch: 1, record: Record { value: b"v".to_vec(), ..Record::default() } };
    let bytes = stored.encode().unwrap();
    let mut version = bytes.clone();
    version[0] = 9;
    assert_eq!(StoredRecord::decode(0, &version), Err(RecordDecodeError::UnknownVersion(9)));
    let mut flags = bytes.clone();
    flags[25] = 0x80;
    assert_eq!(StoredRecord::decode(0, &flags), Err(RecordDecodeError::UnknownFlags(0x80)));
    let mut trailing = bytes;
    trailing.push(0);
    assert_eq!(StoredRecord::decode(0, &trailing), Err(RecordDecodeError::TrailingBytes(1)));
}

#[test]
fn keys_spread_over_partitions_and_stay_put() {
    use pyralog_cluster::model::partition_for_key;
    let mut counts = [0u32; 8];
    for i in 0..8000u32 {
        counts[partition_for_key(&i.to_be_bytes(), 8) as usize] += 1;
    }
    assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    // Pinned: the placement of a key must never change between versions.
    let pinned: Vec<u32> =
        ["user-42", "order-7", "", "k"].iter().map(|k| partition_for_key(k.as_bytes(), 16)).collect();
    assert_eq!(pinned, vec![15, 9, 0, 7]);
    assert_eq!(partition_for_key(b"anything", 1), 0);
}

/// The bytes a record takes in Raft entries and forwarded appends (postcard): byte fields are
/// written as a length and the bytes, the same as a sequence of u8, so logs written before byte
/// fields were declared as byte strings read back unchanged.
#[test]
fn raft_entries_encode_records_as_before() {
    let record = Record {
        key: Some(vec![1, 2, 3]),
        value: vec![4, 5],
        headers: vec![Header { name: "h".into(), value: vec![6] }],
        timestamp_ms: 7,
        scarab_id: 8,
        producer: None,
    };
    let bytes = postcard::to_allocvec(&record).unwrap();
    assert_eq!(bytes, [1, 3, 1, 2, 3, 2, 4, 5, 1, 1, b'h', 1, 6, 7, 8, 0]);
    let old_style = (
        Some(vec![1u8, 2, 3]),
        vec![4u8, 5],
        vec![("h".to_owned(), vec![6u8])],
        7u64,
        8u64,
        None::<(u64, u64)>,
    );
    assert_eq!(postcard::to_allocvec(&old_style).unwrap(), bytes);
    assert_eq!(postcard::from_bytes::<Record>(&bytes).unwrap(), record);
}
