//! Produce and Fetch: Kafka record batches (v2, any compression) in, the cluster's records out,
//! and back.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use pyralog_cluster::engine::ClusterError;

use pyralog_cluster::model::{Header, ProducerSeq, Record, StoredRecord};
use pyralog_cluster::storage::AppendOutcome;
use pyralog_kafka_wire::{Refused, decode_produced};

use super::broker::Broker;
use super::codes::{
    CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE, NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE,
    OUT_OF_ORDER_SEQUENCE_NUMBER, REQUEST_TIMED_OUT, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_PRODUCER_ID,
    UNKNOWN_SERVER_ERROR, UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::clock::unix_ms;
use pyralog_cluster::acl::Operation;
use pyralog_crypto::PublicKey;

/// The longest a Fetch waits for data (clients ask for up to `max.wait.ms`, 500 by default).
const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting Fetch looks at the partition again.
const FETCH_POLL: Duration = Duration::from_millis(10);

/// Most records one partition's Fetch answer carries.
const MAX_FETCH_RECORDS: usize = 10_000;

/// Why a partition's produce wrote nothing: Kafka's code, and a message for the client.
struct ProduceRefusal {
    code: i16,
    message: Option<String>,
}

impl From<i16> for ProduceRefusal {
    fn from(code: i16) -> Self {
        ProduceRefusal { code, message: None }
    }
}

/// Kafka's code for a cluster engine refusal.
fn code_of(err: &ClusterError) -> i16 {
    match err {
        ClusterError::UnknownLog(_) | ClusterError::UnknownPartition { .. } => UNKNOWN_TOPIC_OR_PARTITION,
        ClusterError::NotLeader { .. } | ClusterError::NoLeader { .. } | ClusterError::NotReplica { .. } => {
            NOT_LEADER_OR_FOLLOWER
        }
        ClusterError::RecordTooLarge { .. } => MESSAGE_TOO_LARGE,
        ClusterError::InvalidRecord { .. } => CORRUPT_MESSAGE,
        ClusterError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        ClusterError::Timeout { .. } | ClusterError::Interrupted { .. } => REQUEST_TIMED_OUT,
        ClusterError::AccessDenied { .. } => TOPIC_AUTHORIZATION_FAILED,
        _ => UNKNOWN_SERVER_ERROR,
    }
}

/// The bits of the Kafka producer ids this broker hands out and accepts, so that the id and
/// the epoch fit one Pyralog producer id (see [`producer_of`]).
pub(crate) const PRODUCER_ID_BITS: u32 = 47;

/// The Pyralog producer of a Kafka record: `id * 2^16 + epoch`. The epoch is part of it because
/// a Kafka producer that bumps its epoch (librdkafka does after an outcome it cannot know,
/// KIP-360) starts its sequences again at 0: keyed by the id alone, the new epoch's records
/// would be taken for the old epoch's duplicates and acknowledged without being written.
/// `None` for a record without a producer; an error for an id this broker did not hand out.
fn producer_of(record: &KafkaRecord) -> Result<Option<ProducerSeq>, i16> {
    if record.producer_id < 0 || record.sequence < 0 {
        return Ok(None);
    }
    if record.producer_id >= 1 << PRODUCER_ID_BITS || record.producer_epoch < 0 {
        return Err(UNKNOWN_PRODUCER_ID);
    }
    let producer = ((record.producer_id as u64) << 16) | u64::from(record.producer_epoch as u16);
    Ok(Some(ProducerSeq { producer, sequence: record.sequence as u64 }))
}

/// A Kafka record as a Pyralog record (header names must be UTF-8: the decoder checks). An
/// idempotent producer's id, epoch and per-partition sequence become Pyralog's: a retried batch
/// is recognised and answered with its original offset, a gap refused.
fn to_record(record: KafkaRecord, now_ms: u64) -> Result<Record, i16> {
    let producer = producer_of(&record)?;
    let headers = record
        .headers
        .into_iter()
        .map(|(name, value)| Header {
            name: name.to_string(),
            value: value.map(|v| v.to_vec()).unwrap_or_default(),
        })
        .collect();
    Ok(Record {
        key: record.key.map(|k| k.to_vec()),
        value: record.value.map(|v| v.to_vec()).unwrap_or_default(),
        headers,
        timestamp_ms: u64::try_from(record.timestamp).unwrap_or(now_ms),
        scarab_id: 0,
        producer,
    })
}

/// The base offset Kafka reports for a batch: its first record's; for a retried batch of an
/// idempotent producer (every record a duplicate), the original batch's, which was written as one
/// contiguous run (Pyralog remembers the offset of a producer's last sequence).
fn base_offset(receipts: &[pyralog_cluster::engine::AppendReceipt]) -> Result<i64, i16> {
    let first = receipts.first().ok_or(UNKNOWN_SERVER_ERROR)?;
    match &first.outcome {
        AppendOutcome::Appended { offset } => Ok(*offset as i64),
        AppendOutcome::OutOfOrderSequence { .. } => Err(OUT_OF_ORDER_SEQUENCE_NUMBER),
        AppendOutcome::Duplicate { .. } => Ok(receipts
            .iter()
            .enumerate()
            .find_map(|(i, r)| match r.outcome {
                AppendOutcome::Duplicate { original_offset: Some(offset) } => Some(offset as i64 - i as i64),
                _ => None,
            })
            .unwrap_or(-1)),
    }
}

/// A stored record as Kafka sees it.
fn to_kafka(stored: &StoredRecord) -> KafkaRecord {
    let record = &stored.record;
    let headers: IndexMap<StrBytes, Option<Bytes>> = record
        .headers
        .iter()
        .map(|h| (StrBytes::from_string(h.name.clone()), Some(Bytes::from(h.value.clone()))))
        .collect();
    KafkaRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset: stored.offset as i64,
        sequence: NO_SEQUENCE,
        timestamp: record.timestamp_ms as i64,
        key: record.key.clone().map(Bytes::from),
        value: Some(Bytes::from(record.value.clone())),
        headers,
    }
}

impl Broker {
    /// Each partition's batches are decoded (CRC checked, decompressed) before anything is
    /// written; a corrupt batch writes nothing of its partition.
    pub(crate) async fn produce(
        &self,
        request: ProduceRequest,
        principal: Option<&PublicKey>,
    ) -> ProduceResponse {
        let now_ms = unix_ms();
        let mut responses = Vec::new();
        for topic in request.topic_data {
            let log = topic.name.0.to_string();
            let mut partitions = Vec::new();
            for data in topic.partition_data {
                let answer = PartitionProduceResponse::default().with_index(data.index);
                partitions.push(
                    match self.produce_partition(&log, data.index, data.records, now_ms, principal).await {
                        Ok(base) => answer.with_base_offset(base).with_log_append_time_ms(-1),
                        Err(ProduceRefusal { code, message }) => answer
                            .with_error_code(code)
                            .with_error_message(message.map(StrBytes::from_string))
                            .with_base_offset(-1),
                    },
                );
            }
            responses.push(
                TopicProduceResponse::default().with_name(topic.name).with_partition_responses(partitions),
            );
        }
        ProduceResponse::default().with_responses(responses)
    }

    async fn produce_partition(
        &self,
        log: &str,
        index: i32,
        records: Option<Bytes>,
        now_ms: u64,
        principal: Option<&PublicKey>,
    ) -> Result<i64, ProduceRefusal> {
        let partition = u32::try_from(index).map_err(|_| UNKNOWN_TOPIC_OR_PARTITION)?;
        // Kafka clients send each partition to its leader (Metadata names it); one that reaches
        // another node refreshes its metadata instead of paying a forwarding hop.
        let leader = self.local_replica(log, partition)?.raft().metrics().borrow().current_leader;
        if leader != Some(self.node.id()) {
            return Err(NOT_LEADER_OR_FOLLOWER.into());
        }
        self.node.authorize(log, principal, Operation::Append, Some(partition)).map_err(|e| code_of(&e))?;
        let records = decode_produced(records.unwrap_or_default()).map_err(|refused| {
            tracing::info!(log, partition, ?refused, "kafka produce: batch refused");
            match refused {
                Refused::TooLarge => MESSAGE_TOO_LARGE,
                Refused::Corrupt(_) => CORRUPT_MESSAGE,
            }
        })?;
        let records: Vec<Record> =
            records.into_iter().map(|r| to_record(r, now_ms)).collect::<Result<_, _>>()?;
        if records.is_empty() {
            return Err(CORRUPT_MESSAGE.into());
        }
        let receipts = self.node.append_to(log, partition, records).await.map_err(|err| match &err {
            // The constraint's reason goes back as the partition's error message.
            ClusterError::Refused { .. } => {
                ProduceRefusal { code: INVALID_RECORD, message: Some(err.to_string()) }
            }
            other => code_of(other).into(),
        })?;
        Ok(base_offset(&receipts)?)
    }

    /// Answers once some partition has `min_bytes` to give or `max_wait_ms` passed (Kafka's long
    /// poll), polling the partitions' committed sizes.
    pub(crate) async fn fetch(&self, request: FetchRequest, principal: Option<&PublicKey>) -> FetchResponse {
        let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_FETCH_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0).max(1);
        loop {
            let (response, bytes) = self.fetch_once(&request, principal);
            if bytes >= min_bytes || tokio::time::Instant::now() >= deadline {
                return response;
            }
            tokio::time::sleep(FETCH_POLL).await;
        }
    }

    /// One pass over the requested partitions; returns the answer and the record bytes in it.
    fn fetch_once(&self, request: &FetchRequest, principal: Option<&PublicKey>) -> (FetchResponse, usize) {
        let mut total = 0;
        let mut topics = Vec::new();
        for topic in &request.topics {
            let log = topic.topic.0.to_string();
            let mut partitions = Vec::new();
            for p in &topic.partitions {
                let answer = PartitionData::default().with_partition_index(p.partition);
                let max_bytes = usize::try_from(p.partition_max_bytes).unwrap_or(0);
                partitions.push(
                    match self.read_batch(&log, p.partition, p.fetch_offset, max_bytes, principal) {
                        Ok((size, records)) => {
                            total += records.len();
                            answer
                                .with_high_watermark(size as i64)
                                .with_last_stable_offset(size as i64)
                                .with_log_start_offset(0)
                                .with_records(Some(records))
                        }
                        Err(code) => answer.with_error_code(code).with_high_watermark(-1),
                    },
                );
            }
            topics.push(
                FetchableTopicResponse::default().with_topic(topic.topic.clone()).with_partitions(partitions),
            );
        }
        (FetchResponse::default().with_responses(topics), total)
    }

    /// The partition's committed size and, from `offset`, one v2 record batch of at most about
    /// `max_bytes` (at least one record, as Kafka does).
    fn read_batch(
        &self,
        log: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        principal: Option<&PublicKey>,
    ) -> Result<(u64, Bytes), i16> {
        let partition = u32::try_from(partition).map_err(|_| UNKNOWN_TOPIC_OR_PARTITION)?;
        let replica = self.local_replica(log, partition)?;
        // The SASL session's client (none: anonymous) is what the log's access control sees.
        self.node.authorize(log, principal, Operation::Read, Some(partition)).map_err(|e| code_of(&e))?;
        let size = replica.state().size;
        let from = u64::try_from(offset).map_err(|_| OFFSET_OUT_OF_RANGE)?;
        if from > size {
            return Err(self.past_the_end(&replica));
        }
        if from == size {
            return Ok((size, Bytes::new()));
        }
        let stored = self.node.read(log, partition, from, MAX_FETCH_RECORDS).map_err(|e| code_of(&e))?;
        let mut bytes = 0;
        let records: Vec<KafkaRecord> = stored
            .iter()
            .take_while(|r| {
                let fits = bytes == 0 || bytes + r.record.value.len() <= max_bytes;
                bytes += r.record.value.len() + r.record.key.as_ref().map_or(0, Vec::len) + 32;
                fits
            })
            .map(to_kafka)
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|_| UNKNOWN_SERVER_ERROR)?;
        Ok((size, buf.freeze()))
    }
}
