//! The clients: each appends unique values (`P-N`: process P's Nth) to random partitions and
//! reads them back, over JSON-RPC, and records every operation in the history as it invokes and
//! completes it. Odd-numbered clients are idempotent producers: they retry one append with the
//! same (producer, sequence) until its outcome is known, so their unknowns resolve.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::nodes::Nodes;
use super::{Certified, Op, OpFn, OpKind};
use crate::json_params;

/// How long one call may take before its outcome counts as unknown (a write waits up to 10 s
/// for an election on the node, so this is longer).
const CALL_TIMEOUT: Duration = Duration::from_secs(12);
/// How long an idempotent producer keeps retrying one append after the workload's end.
const RETRY_GRACE: Duration = Duration::from_secs(20);
/// Error codes after which the call certainly changed nothing (see the README's RPC table): not
/// the leader, no leader elected, not ready, invalid params, unknown method.
const DEFINITE: [i32; 5] = [1010, 1014, 1031, -32602, -32601];
/// `log_read`'s code for an offset beyond the replica's size (`data.size`).
const OFFSET_OUT_OF_RANGE: i32 = 1003;

/// Appends each operation to `history.jsonl` as it happens (flushed per line, so a crashed run
/// leaves what it did), with times since the run started.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    out: Mutex<BufWriter<File>>,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    /// Starts the clock and creates `path`.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let out = BufWriter::new(File::create(path)?);
        Ok(Recorder { start: Instant::now(), out: Mutex::new(out), ops: Mutex::new(Vec::new()) })
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Records `op` (its time is set here).
    pub fn record(&self, mut op: Op) {
        op.time_ms = self.now_ms();
        let line = serde_json::to_string(&op).expect("an op serializes");
        let mut out = self.out.lock().expect("history lock");
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        self.ops.lock().expect("history lock").push(op);
    }

    /// Everything recorded so far.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().expect("history lock").clone()
    }
}

/// How a call ended when it did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// The node answered with an error; definite when its code says nothing changed.
    Refused {
        /// The JSON-RPC error code.
        code: i32,
        /// Its message.
        message: String,
        /// The error's `data` (the leader hint of `1010`).
        data: Value,
    },
    /// No answer (timeout, connection refused or reset): the outcome is unknown.
    NoAnswer(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused { code, message, .. } => write!(f, "{code}: {message}"),
            CallError::NoAnswer(reason) => write!(f, "no answer: {reason}"),
        }
    }
}

impl CallError {
    /// Whether the call certainly changed nothing.
    pub fn definite(&self) -> bool {
        matches!(self, CallError::Refused { code, .. } if DEFINITE.contains(code))
    }
}

/// One HTTP JSON-RPC client per node.
#[derive(Debug)]
pub struct Clients {
    nodes: Vec<HttpClient>,
}

impl Clients {
    /// Clients for `count` nodes.
    pub fn new(count: usize) -> anyhow::Result<Self> {
        let nodes = (0..count)
            .map(|i| HttpClientBuilder::default().request_timeout(CALL_TIMEOUT).build(Nodes::url(i)))
            .collect::<Result<_, _>>()?;
        Ok(Clients { nodes })
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The partitions of `log` node `node` holds, as its `system_status` lists them (`log`,
    /// `partition`, `role`, `leader`, `epoch`, `size`, `certifiedSize`); none when it does not
    /// answer.
    pub async fn partitions(&self, node: usize, log: &str) -> Vec<Value> {
        let status = self.call(node, "system_status", json!({})).await.unwrap_or(Value::Null);
        let partitions = status["partitions"].as_array().into_iter().flatten();
        partitions.filter(|p| p["log"] == log).cloned().collect()
    }

    /// Node `node`'s certified checkpoint of `partition` of `log`: size and root.
    pub async fn checkpoint(&self, node: usize, log: &str, partition: u32) -> Option<Certified> {
        let params = json!({ "log": log, "partition": partition });
        let answer = self.call(node, "log_getCheckpoint", params).await.ok()?;
        let checkpoint = &answer["checkpoint"];
        Some(Certified { size: checkpoint["size"].as_u64()?, root: checkpoint["root"].as_str()?.to_owned() })
    }

    /// Calls `method` on node `node`.
    pub async fn call(&self, node: usize, method: &str, params: Value) -> Result<Value, CallError> {
        match self.nodes[node].request::<Value, _>(method, json_params(params)).await {
            Ok(value) => Ok(value),
            Err(ClientError::Call(err)) => Err(CallError::Refused {
                code: err.code(),
                message: err.message().to_owned(),
                data: err.data().and_then(|d| serde_json::from_str(d.get()).ok()).unwrap_or(Value::Null),
            }),
            Err(err) => Err(CallError::NoAnswer(err.to_string())),
        }
    }
}

/// What the clients do.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The log.
    pub log: String,
    /// Its partitions.
    pub partitions: u32,
    /// When clients stop starting operations.
    pub deadline: Instant,
    /// The run's seed (each client's choices derive from it).
    pub seed: u64,
}

/// A client's view: its guess of each partition's leader, its producer epoch and next sequence
/// per partition, and per node its session (a new one after a lost connection) and the highest
/// offset it has seen there per partition.
struct Client<'a> {
    process: u32,
    idempotent: bool,
    clients: &'a Clients,
    recorder: &'a Recorder,
    workload: &'a Workload,
    rng: ChaCha8Rng,
    leader: Vec<usize>,
    epoch: u32,
    sequence: Vec<u64>,
    session: Vec<u64>,
    seen: Vec<Vec<u64>>,
    appended: u64,
}

/// Runs client `process` until the workload's deadline.
pub async fn client(process: u32, clients: &Clients, recorder: &Recorder, workload: &Workload) {
    let nodes = clients.len();
    let partitions = workload.partitions as usize;
    let mut client = Client {
        process,
        idempotent: process % 2 == 1,
        clients,
        recorder,
        workload,
        rng: ChaCha8Rng::seed_from_u64(
            workload.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(process)),
        ),
        leader: vec![process as usize % nodes; partitions],
        epoch: 0,
        sequence: vec![0; partitions],
        session: vec![0; nodes],
        seen: vec![vec![0; partitions]; nodes],
        appended: 0,
    };
    while Instant::now() < workload.deadline {
        let partition = client.rng.gen_range(0..workload.partitions);
        if client.rng.gen_bool(0.75) {
            client.append(partition).await;
        } else {
            client.read(partition).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Client<'_> {
    fn op(&self, kind: OpKind, f: OpFn, node: usize, partition: u32) -> Op {
        Op::new(self.process, kind, f, node, partition)
    }

    /// The producer id of this client's current epoch (a new one after an append whose outcome
    /// stayed unknown, so no sequence number is ever reused: a late commit of the unknown append
    /// can then never be taken for a later value's duplicate).
    fn producer(&self) -> u64 {
        ((u64::from(self.process) + 1) << 32) | u64::from(self.epoch)
    }

    fn new_producer_epoch(&mut self) {
        self.epoch += 1;
        self.sequence.iter_mut().for_each(|s| *s = 0);
    }

    /// After a lost connection to `node`, the next read there starts a new session.
    fn lost(&mut self, node: usize, err: &CallError) {
        if matches!(err, CallError::NoAnswer(_)) {
            self.session[node] += 1;
            self.seen[node].iter_mut().for_each(|s| *s = 0);
        }
    }

    /// Where the next write to `partition` goes after `err` from `node`: the hinted leader, or
    /// the next node.
    fn redirect(&mut self, partition: u32, node: usize, err: &CallError) {
        let hinted = match err {
            CallError::Refused { data, .. } => data["leader"].as_u64().map(|l| l as usize),
            CallError::NoAnswer(_) => None,
        };
        let next = hinted
            .filter(|&l| l < self.clients.len() && l != node)
            .unwrap_or((node + 1) % self.clients.len());
        self.leader[partition as usize] = next;
    }

    async fn append(&mut self, partition: u32) {
        let value = format!("{}-{}", self.process, self.appended);
        self.appended += 1;
        let p = partition as usize;
        let sequence = self.sequence[p];
        let mut record = json!({ "value": pyralog_light::wire::to_hex(value.as_bytes()) });
        if self.idempotent {
            record["producer"] = json!({ "id": self.producer(), "seq": sequence });
        }
        let params = json!({ "log": self.workload.log, "partition": partition, "records": [record] });
        let mut invoke = self.op(OpKind::Invoke, OpFn::Append, self.leader[p], partition);
        invoke.value = Some(value.clone());
        self.recorder.record(invoke);
        let give_up = self.workload.deadline + RETRY_GRACE;
        // Whether an attempt may have stored the value (so the outcome can no longer be "failed").
        let mut unknown = false;
        loop {
            let node = self.leader[p];
            let mut done = self.op(OpKind::Info, OpFn::Append, node, partition);
            done.value = Some(value.clone());
            let answer = self.clients.call(node, "log_append", params.clone()).await;
            let receipt = match &answer {
                Ok(receipts) => receipts.as_array().and_then(|r| r.first()).filter(|r| r.is_object()),
                Err(_) => None,
            };
            match (receipt, answer.as_ref().err()) {
                (Some(receipt), _) if receipt["outOfOrderSequence"].is_object() => {
                    // Nothing stored (a fresh producer epoch never skips, so this is a finding
                    // of its own; the checker sees the value missing if it was acknowledged).
                    done.kind = if unknown { OpKind::Info } else { OpKind::Fail };
                    done.error = Some(format!("out of order: {}", receipt["outOfOrderSequence"]));
                    self.new_producer_epoch();
                }
                (Some(receipt), _) => {
                    self.sequence[p] = sequence + 1;
                    done.kind = OpKind::Ok;
                    done.offset = receipt["offset"].as_u64();
                }
                (None, Some(err)) if err.definite() && !unknown => {
                    done.error = Some(err.to_string());
                    self.redirect(partition, node, err);
                    if self.idempotent && Instant::now() < self.workload.deadline {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    // Every attempt certainly failed: the sequence number is still free.
                    done.kind = OpKind::Fail;
                }
                (None, err) => {
                    done.error =
                        Some(err.map_or_else(|| "an answer without a receipt".to_owned(), |e| e.to_string()));
                    unknown |= err.is_none_or(|e| !e.definite());
                    if let Some(err) = err {
                        self.redirect(partition, node, err);
                        self.lost(node, err);
                    }
                    if self.idempotent && Instant::now() < give_up {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    if self.idempotent {
                        self.new_producer_epoch();
                    }
                }
            }
            self.recorder.record(done);
            return;
        }
    }

    async fn read(&mut self, partition: u32) {
        let node = self.rng.gen_range(0..self.clients.len());
        let from = self.seen[node][partition as usize].saturating_sub(20);
        let session = self.session[node];
        let mut invoke = self.op(OpKind::Invoke, OpFn::Read, node, partition);
        (invoke.from, invoke.session) = (Some(from), session);
        self.recorder.record(invoke);
        let params = json!({ "log": self.workload.log, "partition": partition, "from": from, "max": 200 });
        let mut done = self.op(OpKind::Info, OpFn::Read, node, partition);
        (done.from, done.session) = (Some(from), session);
        match self.clients.call(node, "log_read", params).await {
            Ok(records) => match values(&records) {
                Ok(values) => {
                    let seen = &mut self.seen[node][partition as usize];
                    *seen = (*seen).max(from + values.len() as u64);
                    done.kind = OpKind::Ok;
                    done.values = Some(values);
                }
                Err(_) => done.kind = OpKind::Info,
            },
            // The replica holds fewer records than the read asked to skip: a read of nothing at
            // its size (a session that had seen more counts it as its high-water mark going down).
            Err(CallError::Refused { code: OFFSET_OUT_OF_RANGE, data, .. }) if data["size"].is_u64() => {
                done.kind = OpKind::Ok;
                done.from = data["size"].as_u64();
                done.values = Some(Vec::new());
            }
            Err(err) => {
                done.kind = if err.definite() { OpKind::Fail } else { OpKind::Info };
                done.error = Some(err.to_string());
                self.lost(node, &err);
            }
        }
        self.recorder.record(done);
    }
}

/// The values (as text) of `log_read`'s records.
pub fn values(records: &Value) -> anyhow::Result<Vec<String>> {
    records
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("log_read: not an array"))?
        .iter()
        .map(|record| {
            let stored = pyralog_light::wire::record(record)?;
            Ok(String::from_utf8_lossy(&stored.record.value).into_owned())
        })
        .collect()
}
