//! Decoding of produced record batches, bounded: a few KiB of gzip can inflate to gigabytes,
//! so each codec's library reader is stopped one byte past what is left of the partition's
//! [`MAX_INFLATED_BATCH`] budget (snappy's block headers state their lengths, which are summed
//! first), and a batch header claiming more records than [`MAX_PRODUCED_RECORDS`] (or than its
//! bytes can hold) is refused before the decoder reserves room for them.

use std::cell::Cell;
use std::io::Read;

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Snappy};
use kafka_protocol::records::{Compression, Record as KafkaRecord, RecordBatchDecoder};

/// The most bytes one partition's produced batches may inflate to, together.
pub const MAX_INFLATED_BATCH: usize = 64 << 20;
/// The most records one partition's produced batches may carry, together.
pub const MAX_PRODUCED_RECORDS: usize = 100_000;
/// The smallest encoded v2 record (length, attributes, timestamp and offset deltas, key and
/// value lengths, header count: one byte each).
const MIN_RECORD_BYTES: usize = 7;
/// Where a v2 batch header keeps its length, attributes and record count.
const BATCH_LENGTH_AT: usize = 8;
const ATTRIBUTES_AT: usize = 21;
const RECORD_COUNT_AT: usize = 57;
const HEADER_BYTES: usize = 61;

/// Why a partition's produced bytes were refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// They inflate, or claim records, past the bounds.
    #[error("the batches inflate, or claim records, past the bounds")]
    TooLarge,
    /// They do not decode.
    #[error("corrupt batches: {0}")]
    Corrupt(String),
}

/// The records of one partition's produced batches, decoded within the bounds.
pub fn decode_produced(mut bytes: Bytes) -> Result<Vec<KafkaRecord>, Refused> {
    check_record_counts(&bytes)?;
    let budget = Cell::new(MAX_INFLATED_BATCH);
    let inflate = |records: &mut Bytes, compression: Compression| inflate(records, compression, &budget);
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(&inflate)).map_err(
            |err| match err.downcast_ref::<InflatesTooFar>() {
                Some(_) => Refused::TooLarge,
                None => Refused::Corrupt(err.to_string()),
            },
        )?;
        records.extend(set.records);
    }
    Ok(records)
}

/// Refuses batches whose headers claim more records than the bound, or than their bytes can
/// hold uncompressed, before anything is decoded.
fn check_record_counts(bytes: &[u8]) -> Result<(), Refused> {
    let corrupt = |why: &str| Refused::Corrupt(why.to_owned());
    let (mut rest, mut total) = (bytes, 0usize);
    while !rest.is_empty() {
        if rest.len() < HEADER_BYTES {
            return Err(corrupt("a batch shorter than its header"));
        }
        let field = |at: usize| i32::from_be_bytes(rest[at..at + 4].try_into().expect("four bytes"));
        let length =
            usize::try_from(field(BATCH_LENGTH_AT)).map_err(|_| corrupt("a negative batch length"))?;
        let size = (BATCH_LENGTH_AT + 4).saturating_add(length);
        if size > rest.len() || size < HEADER_BYTES {
            return Err(corrupt("a batch length past its bytes"));
        }
        let count =
            usize::try_from(field(RECORD_COUNT_AT)).map_err(|_| corrupt("a negative record count"))?;
        let compressed = rest[ATTRIBUTES_AT + 1] & 0x07 != 0;
        if !compressed && count > (size - HEADER_BYTES) / MIN_RECORD_BYTES {
            return Err(corrupt("more records than the batch's bytes can hold"));
        }
        total = total.saturating_add(count);
        if total > MAX_PRODUCED_RECORDS {
            return Err(Refused::TooLarge);
        }
        rest = &rest[size..];
    }
    Ok(())
}

/// A batch whose records inflate past [`MAX_INFLATED_BATCH`].
#[derive(Debug, thiserror::Error)]
#[error("a compressed batch inflates past {MAX_INFLATED_BATCH} bytes")]
struct InflatesTooFar;

/// The magic header of snappy-java's framing, which Kafka's Java client uses.
const XERIAL_SNAPPY: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// A batch's records, inflated within what is left of `budget` (which it then spends).
fn inflate(records: &mut Bytes, compression: Compression, budget: &Cell<usize>) -> anyhow::Result<Bytes> {
    let compressed = records.split_to(records.len());
    let left = budget.get();
    let reader: Box<dyn Read + '_> = match compression {
        Compression::None => return Ok(compressed),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(&compressed[..])),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(&compressed[..])?;
            // A frame may ask for a window of up to 2 GiB; 16 MiB is what Kafka's clients use.
            decoder.window_log_max(24)?;
            Box::new(decoder)
        }
        Compression::Lz4 => Box::new(lz4::Decoder::new(&compressed[..])?),
        Compression::Snappy => {
            let length = snappy_inflated_len(&compressed)?;
            if length > left {
                return Err(InflatesTooFar.into());
            }
            budget.set(left - length);
            let mut input = compressed;
            return Snappy::decompress(&mut input, |inflated: &mut Bytes| Ok(inflated.clone()));
        }
    };
    let mut inflated = Vec::new();
    reader.take(left as u64 + 1).read_to_end(&mut inflated).context("decompressing")?;
    if inflated.len() > left {
        return Err(InflatesTooFar.into());
    }
    budget.set(left - inflated.len());
    Ok(Bytes::from(inflated))
}

/// The length snappy data inflates to, from its headers (raw snappy, or snappy-java's framing
/// of length-prefixed raw blocks).
fn snappy_inflated_len(compressed: &[u8]) -> anyhow::Result<usize> {
    let Some(mut blocks) = compressed.strip_prefix(XERIAL_SNAPPY) else {
        return Ok(snap::raw::decompress_len(compressed)?);
    };
    let mut total = 0usize;
    while !blocks.is_empty() {
        let (length, rest) = blocks.split_at_checked(4).context("a truncated snappy block length")?;
        let length = u32::from_be_bytes(length.try_into().expect("four bytes")) as usize;
        let (block, rest) = rest.split_at_checked(length).context("a truncated snappy block")?;
        total = total.saturating_add(snap::raw::decompress_len(block)?);
        blocks = rest;
    }
    Ok(total)
}
