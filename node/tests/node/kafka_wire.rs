//! `pyralog-kafka-wire`: what a Kafka client's bytes decode to before the broker acts on them.
//! Each refusal has its own variant; decoded requests and batches survive a round trip (the
//! fuzz targets `kafka_request` and `kafka_batch` check the same on any bytes).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestHeader, RequestKind, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record as KafkaRecord, TimestampType};
use proptest::prelude::*;

use crate::kafka::encode;
use pyralog_kafka_wire::{
    Decoded, FrameError, MAX_PRODUCED_RECORDS, MAX_REQUEST_BYTES, Refused, Request, decode_produced,
    decode_request, frame_length,
};

fn header(api: ApiKey, version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(41)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")))
}

fn metadata(version: i16) -> Request {
    let topic =
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("orders"))));
    Request {
        api: ApiKey::Metadata,
        version,
        header: header(ApiKey::Metadata, version),
        body: RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![topic]))),
    }
}

#[test]
fn length_prefixes_are_bounded_before_anything_is_read() {
    assert_eq!(frame_length(12i32.to_be_bytes()).unwrap(), 12);
    assert_eq!(frame_length((MAX_REQUEST_BYTES as i32).to_be_bytes()).unwrap(), MAX_REQUEST_BYTES);
    let over = MAX_REQUEST_BYTES as i32 + 1;
    assert!(matches!(frame_length(over.to_be_bytes()), Err(FrameError::TooLarge(n)) if n == over as usize));
    assert!(matches!(frame_length((-1i32).to_be_bytes()), Err(FrameError::NegativeLength(-1))));
}

#[test]
fn each_unreadable_frame_has_its_own_refusal() {
    assert!(matches!(decode_request(Bytes::from_static(&[0, 3, 0])), Err(FrameError::Truncated)));
    let unknown = [0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    assert!(matches!(decode_request(Bytes::copy_from_slice(&unknown)), Err(FrameError::UnknownApi(999))));

    // Produce v0 (no v2 batches) and an API the broker does not serve (DeleteTopics).
    for (api, version) in [(ApiKey::Produce, 0), (ApiKey::DeleteTopics, 4)] {
        let mut frame = BytesMut::new();
        header(api, version).encode(&mut frame, api.request_header_version(version)).unwrap();
        let refused = decode_request(frame.freeze());
        assert!(
            matches!(refused, Err(FrameError::Unsupported { api: a, version: v }) if a == api && v == version),
            "{refused:?}"
        );
    }

    // A body cut short.
    let mut frame = metadata(9).encode().unwrap();
    frame.truncate(frame.len() - 3);
    assert!(matches!(decode_request(frame.freeze()), Err(FrameError::Malformed(_))));
}

#[test]
fn an_api_versions_request_of_an_unknown_version_is_answered_not_refused() {
    let mut frame = BytesMut::new();
    header(ApiKey::ApiVersions, 99)
        .encode(&mut frame, ApiKey::ApiVersions.request_header_version(99))
        .unwrap();
    assert_eq!(
        decode_request(frame.freeze()).unwrap(),
        Decoded::UnsupportedApiVersions { correlation_id: 41 }
    );
}

#[test]
fn a_request_decodes_to_what_was_encoded() {
    for version in [0, 4, 9, 12] {
        let request = metadata(version);
        let decoded = decode_request(request.encode().unwrap().freeze()).unwrap();
        assert_eq!(decoded, Decoded::Request(Box::new(request)), "Metadata v{version}");
    }
}

fn record(offset: i64, key: Option<Vec<u8>>, value: Vec<u8>) -> KafkaRecord {
    KafkaRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: -1,
        timestamp: 1_700_000_000_000 + offset,
        key: key.map(Bytes::from),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Batches in every codec Kafka's clients use decode to the records encoded.
    #[test]
    fn produced_batches_decode_to_their_records(
        values in prop::collection::vec(
            (prop::option::of(prop::collection::vec(any::<u8>(), 0..16)), prop::collection::vec(any::<u8>(), 0..200)),
            1..20,
        ),
        codec in 0usize..5,
    ) {
        let compression =
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][codec];
        let records: Vec<KafkaRecord> = values
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| record(i as i64, key, value))
            .collect();
        let decoded = decode_produced(encode(&records, compression)).unwrap();
        prop_assert_eq!(decoded, records);
    }
}

#[test]
fn batches_claiming_too_many_records_or_cut_short_are_refused() {
    let mut batch = encode(&[record(0, None, b"v".to_vec())], Compression::Gzip).to_vec();
    // The record count (bytes 57..61 of a v2 batch header), past the bound.
    batch[57..61].copy_from_slice(&(MAX_PRODUCED_RECORDS as i32 + 1).to_be_bytes());
    assert_eq!(decode_produced(Bytes::from(batch)), Err(Refused::TooLarge));

    let batch = encode(&[record(0, None, b"value".to_vec())], Compression::None);
    let cut = batch.slice(..batch.len() - 2);
    assert!(matches!(decode_produced(cut), Err(Refused::Corrupt(_))));
    assert!(matches!(decode_produced(Bytes::from_static(b"not a batch")), Err(Refused::Corrupt(_))));
}

/// An array length is a count off the wire: a 10-byte Metadata request claiming 2^31 - 1 topics
/// (and a produced record claiming 2^31 - 1 headers) is refused as malformed, not answered by
/// reserving room for them (which aborted the process: an allocation failure is no panic).
/// The fix is in `third_party/kafka-protocol` (see its PATCHES.md).
#[test]
fn counts_off_the_wire_never_size_an_allocation() {
    let mut frame = BytesMut::new();
    header(ApiKey::Metadata, 0).encode(&mut frame, ApiKey::Metadata.request_header_version(0)).unwrap();
    frame.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(decode_request(frame.freeze()), Err(FrameError::Malformed(_))));

    let mut frame = BytesMut::new();
    header(ApiKey::Metadata, 9).encode(&mut frame, ApiKey::Metadata.request_header_version(9)).unwrap();
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]); // a compact array of 2^31 - 2
    assert!(matches!(decode_request(frame.freeze()), Err(FrameError::Malformed(_))));

    // One record whose header count (the last varint before its headers) says 2^31 - 1.
    let batch = encode(&[record(0, None, b"v".to_vec())], Compression::None).to_vec();
    let (body, no_headers) = batch.split_at(batch.len() - 1);
    assert_eq!(no_headers, [0], "the record ends with a header count of 0");
    let mut forged = body.to_vec();
    forged.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]); // zigzag varint of i32::MAX
    // The record and batch lengths grow by the 4 extra bytes (the record's length is one
    // varint byte here; the batch's length field is big-endian at bytes 8..12).
    let grown = |at: usize, forged: &mut Vec<u8>| {
        let length = i32::from_be_bytes(forged[at..at + 4].try_into().unwrap()) + 4;
        forged[at..at + 4].copy_from_slice(&length.to_be_bytes());
    };
    grown(8, &mut forged);
    forged[61] += 8; // the record length varint (zigzag: +4 bytes is +8)
    // The checksum (bytes 17..21) covers everything from the attributes on.
    let crc = crc32c::crc32c(&forged[21..]);
    forged[17..21].copy_from_slice(&crc.to_be_bytes());
    let refused = decode_produced(Bytes::from(forged));
    assert!(matches!(refused, Err(Refused::Corrupt(_))), "{refused:?}");
}
