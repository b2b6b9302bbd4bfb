//! librdkafka (Debian's, through the `rdkafka` crate) against three real Pyralog nodes over
//! Kafka's protocol: an idempotent producer keeps writing across a SIGKILL of the partition's
//! leader and nothing is lost, duplicated or moved; a consumer group of two members splits the
//! partitions, rebalances when one leaves, and a member of the same group resumes from the
//! committed offsets after the coordinator's node is killed and restarted.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::support::{Cluster, eventually};

const TIMEOUT: Duration = Duration::from_secs(30);

fn config(cluster: &Cluster) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", cluster.bootstrap()).set("client.id", "pyralog-interop");
    config
}

async fn create_topic(cluster: &Cluster, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = config(cluster).create().unwrap();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(3));
    let results =
        admin.create_topics(&[new], &AdminOptions::new().operation_timeout(Some(TIMEOUT))).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// The leader broker of `topic`'s `partition`, once there is one.
async fn leader_of(cluster: &Cluster, topic: &str, partition: i32) -> usize {
    let consumer: BaseConsumer = config(cluster).create().unwrap();
    let topic = topic.to_owned();
    eventually("a partition leader", async || {
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5)).ok()?;
        let leader = metadata.topics().first()?.partitions().iter().find(|p| p.id() == partition)?.leader();
        (leader >= 0).then_some(leader as usize)
    })
    .await
}

/// Every value of `topic`'s `partition` from offset 0 to its end, with its offset (read by
/// librdkafka from whichever broker it picks).
async fn read_all(cluster: &Cluster, topic: &str, partition: i32, expected: usize) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = config(cluster)
        .set("group.id", "pyralog-interop-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let started = std::time::Instant::now();
    while records.len() < expected {
        assert!(started.elapsed() < Duration::from_secs(90), "read {} of {expected}", records.len());
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            records.push((message.offset(), value));
        }
    }
    // Nothing past the expected records either.
    assert!(consumer.poll(Duration::from_secs(1)).is_none(), "records beyond the {expected} written");
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_loses_and_duplicates_nothing_across_a_leader_kill() {
    let mut cluster = Cluster::start(3).await;
    create_topic(&cluster, "ledger", 1).await;
    let leader = leader_of(&cluster, "ledger", 0).await;
    let producer: FutureProducer = config(&cluster)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "90000")
        .set("retry.backoff.ms", "100")
        .create()
        .unwrap();
    const TOTAL: usize = 3000;
    let send = |i: usize| {
        let value = i.to_string();
        producer
            .send_result(FutureRecord::to("ledger").key(&value).payload(&value))
            .map_err(|(err, _)| err)
            .unwrap()
    };
    // A third in flight, then the leader dies while the rest is sent.
    let mut deliveries: Vec<_> = (0..TOTAL / 3).map(send).collect();
    let mut acked = Vec::new();
    for delivery in deliveries.drain(..TOTAL / 6) {
        acked.push(delivery.await.unwrap().map_err(|(err, _)| err).unwrap());
    }
    cluster.kill(leader);
    deliveries.extend((TOTAL / 3..TOTAL).map(send));
    for delivery in deliveries {
        acked.push(delivery.await.unwrap().map_err(|(err, _)| err).expect("every record is acknowledged"));
    }

    // Offsets are acknowledged in order, each once, and the partition holds exactly the records
    // in that order.
    let offsets: Vec<i64> = acked.iter().map(|(_, offset)| *offset).collect();
    assert_eq!(offsets, (0..TOTAL as i64).collect::<Vec<_>>(), "acknowledged offsets");
    let stored = read_all(&cluster, "ledger", 0, TOTAL).await;
    let expected: Vec<(i64, String)> = (0..TOTAL).map(|i| (i as i64, i.to_string())).collect();
    assert!(stored == expected, "no loss, no duplicate, nothing moved");
}

/// A group member running on its own task: what it consumed (partition, value) and its current
/// assignment; it commits what it reads.
struct Member {
    consumer: Arc<StreamConsumer>,
    consumed: Arc<Mutex<Vec<(i32, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Member {
    fn join(cluster: &Cluster, topic: &str) -> Member {
        let consumer: StreamConsumer = config(cluster)
            .set("group.id", "workers")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let consumer = Arc::new(consumer);
        let consumed = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (consumer, consumed) = (consumer.clone(), consumed.clone());
            async move {
                loop {
                    // Errors (a broker gone, a rebalance) are librdkafka's to retry.
                    if let Ok(message) = consumer.recv().await {
                        let value =
                            String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
                        consumed.lock().unwrap().push((message.partition(), value));
                        let _ = consumer.commit_message(&message, CommitMode::Async);
                    }
                }
            }
        });
        Member { consumer, consumed, task }
    }

    fn partitions(&self) -> BTreeSet<i32> {
        self.consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default()
    }

    fn values(&self) -> BTreeSet<String> {
        self.consumed.lock().unwrap().iter().map(|(_, v)| v.clone()).collect()
    }

    /// Commits what it has read, stops reading and leaves the group.
    async fn leave(self) {
        let assigned = !self.partitions().is_empty();
        self.task.abort();
        let _ = self.task.await;
        if assigned {
            self.consumer.commit_consumer_state(CommitMode::Sync).ok();
        }
        self.consumer.unsubscribe();
        drop(self.consumer); // closing the consumer sends LeaveGroup
    }
}

async fn produce(cluster: &Cluster, topic: &str, values: std::ops::Range<usize>) {
    let producer: FutureProducer = config(cluster)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "90000")
        .create()
        .unwrap();
    let deliveries: Vec<_> = values
        .map(|i| {
            let value = format!("v{i}");
            producer
                .send_result(FutureRecord::to(topic).key(&value).payload(&value))
                .map_err(|(e, _)| e)
                .unwrap()
        })
        .collect();
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(err, _)| err).expect("acknowledged");
    }
}

fn values(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("v{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_splits_rebalances_and_resumes_after_a_restart() {
    let mut cluster = Cluster::start(3).await;
    create_topic(&cluster, "work", 4).await;
    for partition in 0..4 {
        leader_of(&cluster, "work", partition).await;
    }
    produce(&cluster, "work", 0..400).await;

    // Two members split the four partitions between them, and read everything.
    let first = Member::join(&cluster, "work");
    let second = Member::join(&cluster, "work");
    eventually("two members with two partitions each", async || {
        let (a, b) = (first.partitions(), second.partitions());
        (a.len() == 2 && b.len() == 2 && a.is_disjoint(&b)).then_some(())
    })
    .await;
    eventually("every record read by one of them", async || {
        let read: BTreeSet<String> = first.values().union(&second.values()).cloned().collect();
        (read == values(0..400)).then_some(())
    })
    .await;

    // One leaves: the other takes all four.
    second.leave().await;
    eventually("one member with all four partitions", async || (first.partitions().len() == 4).then_some(()))
        .await;
    first.leave().await;

    // The coordinator's node dies and comes back; new records arrive meanwhile.
    let coordinator = cluster.global_leader().await;
    cluster.kill(coordinator);
    produce(&cluster, "work", 400..500).await;
    cluster.restart(coordinator).await;

    // A new member of the group starts at the committed offsets: only the new records.
    let resumed = Member::join(&cluster, "work");
    eventually("the records written after the commit", async || {
        (resumed.values().len() >= 100).then_some(())
    })
    .await;
    assert_eq!(resumed.values(), values(400..500), "resumed from the committed offsets");
    resumed.leave().await;
}
