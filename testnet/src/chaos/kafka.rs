//! Clients over Kafka's protocol, through the nodes' `[kafka]` listeners beside the JSON-RPC
//! clients: librdkafka idempotent producers (`enable.idempotence`, acks all) appending unique
//! values to the same log, and a librdkafka consumer reading every partition from the start.
//!
//! librdkafka retries on its own (same producer id and sequence), so an append is recorded as
//! one invocation and its delivery report: the offset it was acknowledged at, or, on any error,
//! an unknown outcome (it may have been written). What the consumer receives is recorded as
//! reads of consecutive records (one per partition every [`FLUSH`]), each saying where the
//! consumer's previous read of the partition stopped, so the checker finds records that differ
//! from the final log, a high-water mark going back, and records skipped or delivered twice.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::net::node_ip;
use super::workload::{Recorder, Workload};
use super::{Op, OpFn, OpKind};

/// The Kafka port every node listens on (each has its own address).
pub const KAFKA_PORT: u16 = 9092;
/// How long librdkafka keeps trying to deliver one append before reporting it failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The `node` of a Kafka client's operations (librdkafka picks the broker).
const NODE: &str = "kafka";

/// How often the consumer records what it received.
const FLUSH: Duration = Duration::from_millis(250);

/// Runs Kafka client `process` against the first `nodes` nodes until the workload's deadline
/// (and its last append's delivery report).
pub async fn client(
    process: u32,
    nodes: usize,
    recorder: &Recorder,
    workload: &Workload,
) -> anyhow::Result<()> {
    let connect = || -> anyhow::Result<FutureProducer> {
        Ok(ClientConfig::new()
            .set("bootstrap.servers", brokers(nodes))
            .set("client.id", format!("pyralog-chaos-{process}"))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
            .set_log_level(RDKafkaLogLevel::Error)
            .create()?)
    };
    let mut producer = connect()?;
    let mut rng =
        ChaCha8Rng::seed_from_u64(workload.seed.wrapping_mul(7_919).wrapping_add(u64::from(process)));
    let mut appended = 0u64;
    while Instant::now() < workload.deadline {
        let partition = rng.gen_range(0..workload.partitions);
        let value = format!("{process}-{appended}");
        appended += 1;
        let op = |kind| Op {
            value: Some(value.clone()),
            node: NODE.to_owned(),
            ..Op::new(process, kind, OpFn::Append, 0, partition)
        };
        recorder.record(op(OpKind::Invoke));
        let record = FutureRecord::<(), _>::to(&workload.log).partition(partition as i32).payload(&value);
        let mut done = op(OpKind::Info);
        match producer.send(record, Duration::from_secs(1)).await {
            Ok((_, offset)) => {
                done.kind = OpKind::Ok;
                done.offset = u64::try_from(offset).ok();
            }
            Err((err, _)) => done.error = Some(err.to_string()),
        }
        recorder.record(done);
        // An idempotent producer that hit a fatal error (its sequence state is gone) fails
        // every send from then on: start a new one (a new producer id), as an application would.
        if producer.client().fatal_error().is_some() {
            producer = connect()?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The first `nodes` nodes' Kafka listeners.
fn brokers(nodes: usize) -> String {
    (0..nodes).map(|i| format!("{}:{KAFKA_PORT}", node_ip(i))).collect::<Vec<_>>().join(",")
}

/// Consecutive records one consumer session received from a partition, not yet recorded.
struct Received {
    /// Where the session's previous read of the partition stopped (or where it started).
    after: u64,
    /// The first record's offset.
    from: u64,
    /// The values, from `from` on.
    values: Vec<String>,
}

/// Runs Kafka consumer `process` against the first `nodes` nodes until the workload's deadline:
/// every partition assigned (no group), read from offset 0. A consumer error ends the session;
/// the next session starts where the last one's records stopped.
pub async fn consumer(
    process: u32,
    nodes: usize,
    recorder: &Recorder,
    workload: &Workload,
) -> anyhow::Result<()> {
    // What each partition received and has not recorded yet; between sessions, where the
    // records stopped (the next session's positions).
    let mut received: Vec<Received> =
        (0..workload.partitions).map(|_| Received { after: 0, from: 0, values: Vec::new() }).collect();
    let mut session = 0;
    while Instant::now() < workload.deadline {
        session += 1;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers(nodes))
            .set("client.id", format!("pyralog-chaos-{process}"))
            .set("group.id", format!("pyralog-chaos-{process}"))
            .set("enable.auto.commit", "false")
            // A position the broker does not have is an error, never a silent jump.
            .set("auto.offset.reset", "error")
            .set_log_level(RDKafkaLogLevel::Error)
            .create()?;
        let mut assignment = TopicPartitionList::new();
        for (partition, got) in received.iter().enumerate() {
            assignment.add_partition_offset(
                &workload.log,
                partition as i32,
                Offset::Offset(got.from as i64),
            )?;
        }
        consumer.assign(&assignment)?;
        let mut flushed = Instant::now();
        let mut error = None;
        while error.is_none() && Instant::now() < workload.deadline {
            match tokio::time::timeout(FLUSH, consumer.recv()).await {
                Ok(Ok(message)) => {
                    let (Ok(partition), Ok(offset)) =
                        (usize::try_from(message.partition()), u64::try_from(message.offset()))
                    else {
                        continue;
                    };
                    let Some(got) = received.get_mut(partition) else { continue };
                    let value = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
                    if got.from + got.values.len() as u64 != offset {
                        // Not the next record: what came before is one read, this starts another.
                        record_read(recorder, process, session, partition as u32, got);
                        got.from = offset;
                    }
                    got.values.push(value);
                }
                Ok(Err(err)) => error = Some(err.to_string()),
                Err(_) => {}
            }
            if flushed.elapsed() >= FLUSH {
                for (partition, got) in received.iter_mut().enumerate() {
                    record_read(recorder, process, session, partition as u32, got);
                }
                flushed = Instant::now();
            }
        }
        for (partition, got) in received.iter_mut().enumerate() {
            record_read(recorder, process, session, partition as u32, got);
        }
        if let Some(error) = error {
            // The error itself, as a read that failed; a new session picks up after a pause.
            let op = |kind| Op { session, ..Op::new(process, kind, OpFn::Read, 0, 0) };
            recorder.record(Op { node: NODE.to_owned(), ..op(OpKind::Invoke) });
            recorder.record(Op { node: NODE.to_owned(), error: Some(error), ..op(OpKind::Fail) });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(())
}

/// Records what `got` holds as one read (nothing when it is empty) and starts the next one where
/// it stopped.
fn record_read(recorder: &Recorder, process: u32, session: u64, partition: u32, got: &mut Received) {
    if got.values.is_empty() {
        return;
    }
    let op = |kind| Op {
        node: NODE.to_owned(),
        from: Some(got.from),
        after: Some(got.after),
        session,
        ..Op::new(process, kind, OpFn::Read, 0, partition)
    };
    recorder.record(op(OpKind::Invoke));
    let values = std::mem::take(&mut got.values);
    let end = got.from + values.len() as u64;
    recorder.record(Op { values: Some(values), ..op(OpKind::Ok) });
    (got.after, got.from) = (end, end);
}
