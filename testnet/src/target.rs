//! The systems under load: one connection per client, one write per call.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::{Value, json};

use crate::{RunArgs, System};
use pyralog_testnet::json_params as params;

/// How long a single write may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A prepared system: endpoints known, Pyralog's log created and led.
pub(crate) struct Target {
    pub(crate) system: System,
    endpoints: Vec<String>,
    log: String,
    /// With `--direct`: per partition, the endpoint of its leader.
    leaders: Option<Vec<usize>>,
}

impl Target {
    /// Checks the endpoints answer; for Pyralog, creates the log and waits for its leaders.
    pub(crate) async fn prepare(args: &RunArgs) -> anyhow::Result<Self> {
        let mut target = Target {
            system: args.system,
            endpoints: args.endpoints.clone(),
            log: args.log.clone(),
            leaders: None,
        };
        match args.system {
            System::Pyralog => {
                let client = target.pyralog(0).await?;
                let settings = json!({
                    "name": args.log, "partitions": args.partitions,
                    "replicationFactor": args.replication_factor,
                });
                client.request::<Value, _>("log_create", params(settings)).await.context("log_create")?;
                wait_for_leaders(&client, &args.log, args.partitions).await?;
                if args.direct {
                    target.leaders = Some(target.partition_leaders(args.partitions).await?);
                }
            }
            System::Etcd => {
                let mut client = target.etcd(0).await?;
                client.status().await.context("etcd status")?;
            }
            System::Kafka => {
                let admin: AdminClient<DefaultClientContext> = target.kafka_config().create()?;
                let topic = NewTopic::new(
                    &args.log,
                    args.partitions as i32,
                    TopicReplication::Fixed(args.replication_factor as i32),
                );
                let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
                for result in admin.create_topics(&[topic], &options).await.context("create the topic")? {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((topic, code)) => bail!("creating topic {topic}: {code}"),
                    }
                }
                wait_for_kafka_leaders(&target.kafka_producer()?, &args.log, args.partitions).await?;
            }
        }
        Ok(target)
    }

    /// A new connection for client `i`.
    pub(crate) async fn connect(&self, i: usize) -> anyhow::Result<Connection> {
        Ok(match self.system {
            System::Pyralog => match &self.leaders {
                Some(leaders) => {
                    let partition = i % leaders.len();
                    let client = self.connect_ws(&self.endpoints[leaders[partition]]).await?;
                    Connection::Pyralog { client, log: self.log.clone(), partition: Some(partition as u32) }
                }
                None => Connection::Pyralog {
                    client: self.pyralog(i).await?,
                    log: self.log.clone(),
                    partition: None,
                },
            },
            System::Etcd => Connection::Etcd(Box::new(self.etcd(i).await?)),
            System::Kafka => Connection::Kafka { producer: self.kafka_producer()?, topic: self.log.clone() },
        })
    }

    /// librdkafka's settings: every endpoint as a bootstrap broker (clients find the partition
    /// leaders themselves).
    fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.endpoints.join(",")).set("client.id", "pyralog-loadgen");
        config
    }

    /// A producer that sends each record at once (linger 0) and waits for all in-sync replicas.
    fn kafka_producer(&self) -> anyhow::Result<FutureProducer> {
        Ok(self
            .kafka_config()
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", CALL_TIMEOUT.as_millis().to_string())
            .create()?)
    }

    fn endpoint(&self, i: usize) -> &str {
        &self.endpoints[i % self.endpoints.len()]
    }

    async fn pyralog(&self, i: usize) -> anyhow::Result<WsClient> {
        self.connect_ws(self.endpoint(i)).await
    }

    /// Per partition of the log, the endpoint whose node leads it (from each node's status).
    async fn partition_leaders(&self, partitions: u32) -> anyhow::Result<Vec<usize>> {
        let mut leaders = vec![None; partitions as usize];
        for (endpoint, url) in self.endpoints.iter().enumerate() {
            let client = self.connect_ws(url).await?;
            let status: Value = client.request("system_status", params(json!({}))).await?;
            for p in status["partitions"].as_array().into_iter().flatten() {
                if p["log"] == self.log.as_str() && p["role"] == "leader" {
                    let partition = p["partition"].as_u64().context("partition number")? as usize;
                    if let Some(slot) = leaders.get_mut(partition) {
                        *slot = Some(endpoint);
                    }
                }
            }
        }
        leaders
            .into_iter()
            .enumerate()
            .map(|(p, leader)| leader.with_context(|| format!("no endpoint leads partition {p}")))
            .collect()
    }

    async fn connect_ws(&self, endpoint: &str) -> anyhow::Result<WsClient> {
        let url = endpoint.replacen("http://", "ws://", 1);
        WsClientBuilder::default()
            .request_timeout(CALL_TIMEOUT)
            .build(&url)
            .await
            .with_context(|| format!("connect to {url}"))
    }

    async fn etcd(&self, i: usize) -> anyhow::Result<etcd_client::Client> {
        let endpoint = self.endpoint(i);
        let options = etcd_client::ConnectOptions::new()
            .with_timeout(CALL_TIMEOUT)
            .with_connect_timeout(Duration::from_secs(5));
        etcd_client::Client::connect([endpoint], Some(options))
            .await
            .with_context(|| format!("connect to etcd at {endpoint}"))
    }
}

/// One client's connection.
pub(crate) enum Connection {
    /// A WebSocket JSON-RPC connection and the log it appends to.
    Pyralog {
        /// The connection.
        client: WsClient,
        /// The log.
        log: String,
        /// The partition written to (`--direct`), or none: keyed records go where their keys hash.
        partition: Option<u32>,
    },
    /// A gRPC connection (boxed: it is several times larger than the other variant).
    Etcd(Box<etcd_client::Client>),
    /// A librdkafka producer (its own connections) and the topic it writes to.
    Kafka {
        /// The producer.
        producer: FutureProducer,
        /// The topic.
        topic: String,
    },
}

impl Connection {
    /// Writes `value` under `key`; returns once the system acknowledged it as durable.
    pub(crate) async fn put(&mut self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        match self {
            Connection::Pyralog { client, log, partition } => {
                let record = json!({ "key": hex(key), "value": hex(value) });
                let mut call = json!({ "log": log, "records": [record] });
                if let Some(partition) = partition {
                    call["partition"] = json!(partition);
                }
                let receipts: Value = client.request("log_append", params(call)).await?;
                if receipts.as_array().map(Vec::len) != Some(1) {
                    bail!("unexpected log_append answer: {receipts}");
                }
            }
            Connection::Etcd(client) => {
                client.put(key, value, None).await?;
            }
            Connection::Kafka { producer, topic } => {
                let record = FutureRecord::to(topic).key(key).payload(value);
                producer.send(record, CALL_TIMEOUT).await.map_err(|(err, _)| err)?;
            }
        }
        Ok(())
    }
}

/// Polls the topic's metadata until every partition has a leader.
async fn wait_for_kafka_leaders(
    producer: &FutureProducer,
    topic: &str,
    partitions: u32,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let led = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| {
                m.topics().first().map(|t| t.partitions().iter().filter(|p| p.leader() >= 0).count())
            })
            .unwrap_or(0);
        if led == partitions as usize {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("topic {topic:?}: {led} of {partitions} partitions have a leader after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `system_status` until every partition of `log` has a leader.
async fn wait_for_leaders(client: &WsClient, log: &str, partitions: u32) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let status: Value = client.request("system_status", params(json!({}))).await?;
        let led = status["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["log"] == log && p["leader"].is_u64())
            .count();
        if led == partitions as usize {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("log {log:?}: {led} of {partitions} partitions have a leader after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 + 2 * bytes.len());
    text.push_str("0x");
    for byte in bytes {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}
