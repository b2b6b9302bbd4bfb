//! Clients over Kafka's protocol: librdkafka idempotent producers (`enable.idempotence`, acks
//! all) appending unique values to the same log through the nodes' `[kafka]` listeners, beside
//! the JSON-RPC clients. librdkafka retries on its own (same producer id and sequence), so an
//! append is recorded as one invocation and its delivery report: the offset it was acknowledged
//! at, or, on any error, an unknown outcome (it may have been written).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::net::node_ip;
use super::workload::{Recorder, Workload};
use super::{Op, OpFn, OpKind};

/// The Kafka port every node listens on (each has its own address).
pub const KAFKA_PORT: u16 = 9092;
/// How long librdkafka keeps trying to deliver one append before reporting it failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The `node` of a Kafka client's operations (librdkafka picks the broker).
const NODE: &str = "kafka";

/// Runs Kafka client `process` against the first `nodes` nodes until the workload's deadline
/// (and its last append's delivery report).
pub async fn client(
    process: u32,
    nodes: usize,
    recorder: &Recorder,
    workload: &Workload,
) -> anyhow::Result<()> {
    let brokers: Vec<String> = (0..nodes).map(|i| format!("{}:{KAFKA_PORT}", node_ip(i))).collect();
    let connect = || -> anyhow::Result<FutureProducer> {
        Ok(ClientConfig::new()
            .set("bootstrap.servers", brokers.join(","))
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
