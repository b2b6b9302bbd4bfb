//! Decompression of produced record batches, bounded: a few KiB of gzip can inflate to
//! gigabytes, so each codec's library reader is stopped one byte past
//! [`MAX_INFLATED_BATCH`] (snappy's block headers state their lengths, which are summed first),
//! and such a batch is refused with MESSAGE_TOO_LARGE before it is inflated further.

use std::io::Read;

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Snappy};
use kafka_protocol::records::Compression;

/// The most bytes one produced batch's records may inflate to.
pub(crate) const MAX_INFLATED_BATCH: usize = 64 << 20;

/// A batch whose records inflate past [`MAX_INFLATED_BATCH`].
#[derive(Debug, thiserror::Error)]
#[error("a compressed batch inflates past {MAX_INFLATED_BATCH} bytes")]
pub(crate) struct InflatesTooFar;

/// The magic header of snappy-java's framing, which Kafka's Java client uses.
const XERIAL_SNAPPY: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// A batch's records, inflated (the decompressor `RecordBatchDecoder` is given).
pub(crate) fn inflate(records: &mut Bytes, compression: Compression) -> anyhow::Result<Bytes> {
    let compressed = records.split_to(records.len());
    let reader: Box<dyn Read + '_> = match compression {
        Compression::None => return Ok(compressed),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(&compressed[..])),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(&compressed[..])?),
        Compression::Lz4 => Box::new(lz4::Decoder::new(&compressed[..])?),
        Compression::Snappy => {
            if snappy_inflated_len(&compressed)? > MAX_INFLATED_BATCH {
                return Err(InflatesTooFar.into());
            }
            let mut input = compressed;
            return Snappy::decompress(&mut input, |inflated: &mut Bytes| Ok(inflated.clone()));
        }
    };
    let mut inflated = Vec::new();
    reader.take(MAX_INFLATED_BATCH as u64 + 1).read_to_end(&mut inflated).context("decompressing")?;
    if inflated.len() > MAX_INFLATED_BATCH {
        return Err(InflatesTooFar.into());
    }
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
