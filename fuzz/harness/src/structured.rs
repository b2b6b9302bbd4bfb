//! Structure-aware inputs: the fuzzer's bytes drive an [`Unstructured`] that builds a valid
//! value (names from the allowed alphabet, real keys, Kafka batches with right checksums), which
//! goes through its encoder and back through the decoder the node runs on untrusted bytes. Every
//! such value encodes, decodes to itself, and (for canonical encodings) re-encodes to the same
//! bytes. Byte-level targets seldom get past checksums and name rules; these start past them.

use arbitrary::{Result, Unstructured};
use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use pyralog_chain::block::Header;
use pyralog_crypto::{Checkpoint, ClusterId, Digest, Keypair, LogName, ZkTree};
use pyralog_kafka_wire::decode_produced;
use pyralog_light::wire::to_hex;
use pyralog_record::{Header as RecordHeader, ProducerSeq, Record, StoredRecord};
use pyralog_rpc_params::{
    Append, AppendedRecord, MethodParams, ProducerSeqParam, RecordHeader as HeaderParam,
};

/// One structured value per input, its kind picked by the input.
pub fn structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let checks: [fn(&mut Unstructured) -> Result<()>; 5] =
        [record, checkpoint, header, kafka_batch, append_params];
    if let Ok(check) = u.choose(&checks) {
        let _ = check(&mut u);
    }
}

/// A name (log, cluster): 1 to 64 bytes of `[A-Za-z0-9._-]`, starting with a letter or digit.
fn name(u: &mut Unstructured) -> Result<String> {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    let len = u.int_in_range(0..=63)?;
    let mut out = vec![*u.choose(FIRST)?];
    for _ in 0..len {
        out.push(*u.choose(REST)?);
    }
    Ok(String::from_utf8(out).expect("ASCII"))
}

fn digest(u: &mut Unstructured) -> Result<Digest> {
    Ok(Digest(u.arbitrary()?))
}

/// A record as a server proves it: the canonical encoding round trip.
fn record(u: &mut Unstructured) -> Result<()> {
    let headers = (0..u.int_in_range(0..=4)?)
        .map(|_| Ok(RecordHeader { name: u.arbitrary()?, value: u.arbitrary()? }))
        .collect::<Result<_>>()?;
    let producer = match u.arbitrary::<bool>()? {
        true => Some(ProducerSeq { producer: u.arbitrary()?, sequence: u.arbitrary()? }),
        false => None,
    };
    let stored = StoredRecord {
        offset: u.arbitrary()?,
        epoch: u.arbitrary()?,
        record: Record {
            key: u.arbitrary()?,
            value: u.arbitrary()?,
            headers,
            timestamp_ms: u.arbitrary()?,
            scarab_id: u.arbitrary()?,
            producer,
        },
    };
    let bytes = stored.encode().expect("fields this small encode");
    let decoded = StoredRecord::decode(stored.offset, &bytes).expect("an encoded record decodes");
    assert_eq!(decoded, stored);
    Ok(())
}

/// A checkpoint as replicas sign it: the canonical encoding round trip.
fn checkpoint(u: &mut Unstructured) -> Result<()> {
    let mut zk_roots = std::collections::BTreeMap::new();
    for tree in ZkTree::ALL {
        if u.arbitrary()? {
            zk_roots.insert(tree, digest(u)?);
        }
    }
    let checkpoint = Checkpoint {
        cluster: ClusterId::new(name(u)?).expect("a valid name"),
        log: LogName::new(name(u)?).expect("a valid name"),
        partition: u.arbitrary()?,
        epoch: u.arbitrary()?,
        size: u.arbitrary()?,
        root: digest(u)?,
        time_ms: u.arbitrary()?,
        zk_roots,
    };
    let bytes = checkpoint.encode();
    let decoded = Checkpoint::decode(&bytes).expect("an encoded checkpoint decodes");
    assert_eq!(decoded, checkpoint);
    assert_eq!(decoded.encode(), bytes);
    Ok(())
}

/// A block header as a proposer sends it: round trip, and the same block id.
fn header(u: &mut Unstructured) -> Result<()> {
    let header = Header {
        chain_id: name(u)?,
        height: u.arbitrary()?,
        time_ms: u.arbitrary()?,
        parent: digest(u)?,
        // `decode` refuses `u64::MAX` (the block id counts the header as one more element).
        tx_count: u.int_in_range(0..=u64::MAX - 1)?,
        tx_root: digest(u)?,
        state_root: digest(u)?,
        validators_hash: digest(u)?,
        next_validators_hash: digest(u)?,
        proposer: Keypair::from_secret(&u.arbitrary()?).public(),
        engine: u.arbitrary()?,
    };
    let bytes = header.encode();
    let decoded = Header::decode(&bytes).expect("an encoded header decodes");
    assert_eq!(decoded, header);
    assert_eq!(decoded.block_id(), header.block_id());
    assert_eq!(decoded.encode(), bytes);
    Ok(())
}

/// A Produce's records, batched by a client in any codec: the broker's bounded decoder gives
/// back every record's offset, key, value and headers.
fn kafka_batch(u: &mut Unstructured) -> Result<()> {
    let compression = *u.choose(&[
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ])?;
    let (producer_id, producer_epoch, base_sequence): (i64, i16, i32) =
        (u.int_in_range(-1..=1 << 40)?, u.int_in_range(-1..=100)?, u.int_in_range(0..=1 << 30)?);
    let base_offset: i64 = u.int_in_range(0..=1 << 40)?;
    let base_time: i64 = u.int_in_range(0..=1 << 42)?;
    let count = u.int_in_range(1..=8)?;
    let records = (0..count)
        .map(|i| {
            let headers = (0..u.int_in_range(0..=3)?)
                .map(|_| {
                    let name: String = u.arbitrary()?;
                    let value: Option<Vec<u8>> = u.arbitrary()?;
                    Ok((StrBytes::from_string(name), value.map(Bytes::from)))
                })
                .collect::<Result<_>>()?;
            Ok(KafkaRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: base_offset + i,
                sequence: base_sequence + i as i32,
                timestamp: base_time + u.int_in_range(0..=1000)?,
                key: u.arbitrary::<Option<Vec<u8>>>()?.map(Bytes::from),
                value: u.arbitrary::<Option<Vec<u8>>>()?.map(Bytes::from),
                headers,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(&mut batch, &records, &RecordEncodeOptions { version: 2, compression })
        .expect("a client's batch encodes");
    let decoded = decode_produced(batch.freeze()).expect("a client's batch decodes");
    assert_eq!(decoded.len(), records.len());
    for (got, sent) in decoded.iter().zip(&records) {
        assert_eq!(
            (got.offset, &got.key, &got.value, &got.headers),
            (sent.offset, &sent.key, &sent.value, &sent.headers)
        );
    }
    Ok(())
}

/// `log_append` params a client builds: they decode to the params sent and to the records whose
/// bytes were hex-encoded.
fn append_params(u: &mut Unstructured) -> Result<()> {
    let mut records = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let key: Option<Vec<u8>> = u.arbitrary()?;
        let value: Vec<u8> = u.arbitrary()?;
        let headers: Vec<(String, Vec<u8>)> = (0..u.int_in_range(0..=3)?)
            .map(|_| Ok((u.arbitrary()?, u.arbitrary()?)))
            .collect::<Result<_>>()?;
        let timestamp_ms: u64 = u.arbitrary()?;
        // Producer ids from 2^63 are the cluster's own (trigger outputs): a client's are below.
        let producer: Option<(u64, u64)> = u
            .arbitrary::<Option<(u64, u64)>>()?
            .map(|(id, seq)| (id % pyralog_record::RESERVED_PRODUCERS, seq));
        records.push(AppendedRecord {
            key: key.as_deref().map(to_hex),
            value: to_hex(&value),
            headers: headers
                .iter()
                .map(|(name, value)| HeaderParam { name: name.clone(), value: to_hex(value) })
                .collect(),
            timestamp_ms: Some(timestamp_ms),
            producer: producer.map(|(id, seq)| ProducerSeqParam { id, seq }),
        });
        expected.push(Record {
            key,
            value,
            headers: headers.into_iter().map(|(name, value)| RecordHeader { name, value }).collect(),
            timestamp_ms,
            scarab_id: 0,
            producer: producer.map(|(producer, sequence)| ProducerSeq { producer, sequence }),
        });
    }
    let params = Append { log: name(u)?, records, partition: u.arbitrary()?, auth: None };
    let text = serde_json::to_string(&params).expect("params serialize");
    let decoded = MethodParams::decode("log_append", Some(&text)).expect("a method with params");
    assert_eq!(decoded, Ok(MethodParams::Append(params.clone())));
    assert_eq!(params.records(0).expect("hex the params were built from"), expected);
    Ok(())
}
