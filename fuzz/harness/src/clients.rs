//! Checks for the decoders of bytes clients and operators hand the node (Kafka request frames
//! and the record batches a Produce carries, JSON-RPC params, `config.toml`) and of what a
//! client decodes from a server (Arrow IPC streams).

use std::cell::Cell;
use std::sync::Once;

use arrow_array::RecordBatch;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::RequestKind;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};
use pyralog_cluster::columnar::{batch_to_ipc, batch_to_records, ipc_to_batches, records_to_batch};
use pyralog_config::Config;
use pyralog_kafka_wire::{Decoded, MAX_PRODUCED_RECORDS, Request, decode_produced, decode_request};
use pyralog_rpc_params::{METHODS, MethodParams};

/// A Kafka request frame (after its length prefix), as the broker reads it: a decoded request
/// re-encodes to a frame that decodes to the same request, and the batches of a Produce go
/// through the bounded batch decoder.
///
/// Requests carrying unknown tagged fields (which the broker ignores) are outside the round
/// trip: the library keeps their tags as `i32` and cannot write back one past 2^31 that it read.
pub fn kafka_request(data: &[u8]) {
    let Ok(Decoded::Request(request)) = decode_request(Bytes::copy_from_slice(data)) else { return };
    if !has_unknown_tagged_fields(&request) {
        let frame = request.encode().expect("a decoded request re-encodes");
        let again = decode_request(frame.freeze()).expect("a re-encoded request decodes");
        assert_eq!(again, Decoded::Request(request.clone()));
    }
    if let RequestKind::Produce(produce) = &request.body {
        for partition in produce.topic_data.iter().flat_map(|topic| &topic.partition_data) {
            if let Some(records) = &partition.records {
                kafka_batch(records);
            }
        }
    }
}

/// Whether any part of `request` kept tagged fields it does not know (every generated message
/// has an `unknown_tagged_fields` map; its `Debug` is the one view of all of them).
fn has_unknown_tagged_fields(request: &Request) -> bool {
    let debug = format!("{request:?}");
    debug
        .match_indices("unknown_tagged_fields: {")
        .any(|(at, field)| !debug[at + field.len()..].starts_with('}'))
}

/// The record batches of one partition of a Produce request: within the bounds, and each
/// decoded record's key, value and headers survive being produced again (one uncompressed v2
/// batch per record, so batch-level fields cannot differ).
///
/// Each input is decoded as it is and again with every v2 batch's checksum made right, so
/// mutations reach the record decoder instead of stopping at the checksum.
pub fn kafka_batch(data: &[u8]) {
    batch_round_trip(data);
    batch_round_trip(&with_checksums(data));
}

/// `data` with the CRC-32C of each v2 batch it holds (bytes 17..21, over the bytes from the
/// attributes at 21 to the batch's end) recomputed.
fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0;
    while out.len() >= at + 61 {
        let length = i32::from_be_bytes(out[at + 8..at + 12].try_into().expect("four bytes"));
        let Some(end) = usize::try_from(length).ok().and_then(|l| (at + 12).checked_add(l)) else { break };
        if end > out.len() || end < at + 21 {
            break;
        }
        let crc = crc32c::crc32c(&out[at + 21..end]);
        out[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
    out
}

fn batch_round_trip(data: &[u8]) {
    let Ok(records) = decode_produced(Bytes::copy_from_slice(data)) else { return };
    assert!(records.len() <= MAX_PRODUCED_RECORDS, "{} records pass the bound", records.len());
    for record in &records {
        let mut batch = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        if RecordBatchEncoder::encode(&mut batch, std::slice::from_ref(record), &options).is_err() {
            continue; // a field v2 cannot carry (the decoder also reads v0/v1 message sets)
        }
        let again = decode_produced(batch.freeze()).expect("a re-encoded record decodes");
        let [again]: [Record; 1] = again.try_into().expect("one record in, one out");
        assert_eq!((&again.key, &again.value, &again.headers), (&record.key, &record.value, &record.headers));
    }
}

/// An operator's `config.toml`: parsing and every consistency check; an accepted config writes
/// out to text that parses back to the same config.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(text) else { return };
    let written = config.to_toml().expect("an accepted config serializes");
    assert_eq!(Config::parse(&written).expect("a written config parses"), config);
    let _ = config.transport();
}

/// Arrow IPC stream bytes a (possibly malicious) server answers `log_read {format: "arrow"}`
/// with, as a client decodes them: decoding is total (arrow-ipc's own panics are contained by
/// `ipc_to_batches`), and a batch with the record schema gives records that write to a fresh
/// stream which reads back to the same records.
pub fn arrow_ipc(data: &[u8]) {
    let Ok(batches) = contained(|| ipc_to_batches(data)) else { return };
    for batch in &batches {
        let Ok(records) = batch_to_records(batch) else { continue };
        let again = records_to_batch(&records).expect("decoded records make a batch");
        let bytes = batch_to_ipc(&again).expect("a batch writes");
        let read = ipc_to_batches(&bytes).expect("a written stream reads");
        let [read]: [RecordBatch; 1] = read.try_into().expect("one batch written, one read");
        assert_eq!(batch_to_records(&read).expect("the record schema"), records);
    }
}

thread_local! {
    /// Set while the product's own panic containment runs: its panics are not findings.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work`, which contains panics itself (`catch_unwind`), without them counting as a
/// crash: libFuzzer's panic hook aborts before any unwinding, so the hook is told to let these
/// unwind quietly to the product's `catch_unwind`. Every other panic still reaches the hook.
fn contained<T>(work: impl FnOnce() -> T) -> T {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let outer = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINED.get() {
                outer(info);
            }
        }));
    });
    /// Clears the flag however `work` ends.
    struct Contained;
    impl Drop for Contained {
        fn drop(&mut self) {
            CONTAINED.set(false);
        }
    }
    CONTAINED.set(true);
    let _contained = Contained;
    work()
}

/// The params of a JSON-RPC request, as the node decodes them before acting: the first byte
/// picks the method, the rest is the params text (empty: none). Decoding never panics, and
/// params that decode serialize to params that decode to the same value.
pub fn rpc_params(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let method = METHODS[usize::from(selector) % METHODS.len()];
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let params = (!text.is_empty()).then_some(text);
    let Some(Ok(decoded)) = MethodParams::decode(method, params) else { return };
    let _ = decoded.check_deferred();
    let again = MethodParams::decode(method, Some(&decoded.to_json())).expect("a method with params");
    assert_eq!(again, Ok(decoded), "{method}: params survive a round trip");
}
