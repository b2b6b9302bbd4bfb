//! The JSON-RPC 2.0 API (jsonrpsee; HTTP and WebSocket on one port). Bytes are 0x-prefixed
//! hex. Parameters are one object with named fields (by-name), e.g.
//! `{"method":"log_read","params":{"log":"orders","partition":0,"from":0,"max":100}}`.
//!
//! Writes sent to a node that does not lead the partition are forwarded to the leader by the
//! engine (one hop); if that fails the error carries the leader hint (code 1010).

use std::sync::Arc;

use crate::links::ClusterNode;
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_cluster::engine::{AppendReceipt, ClusterError, Role};
use pyralog_cluster::model::{
    Header, LogConfig, ProducerSeq, Record, StoredRecord, zk_option, zk_tree_of_option,
};
use pyralog_cluster::raft::LogInfo;
use pyralog_cluster::storage::AppendOutcome;
use pyralog_crypto::LogName;
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof};
use serde::Deserialize;

use crate::metrics::RequestTimer;
use serde_json::{Value, json};

/// Stable error codes (besides JSON-RPC's own -32700..-32600 for malformed requests and -32602
/// for bad params).
pub(crate) mod codes {
    /// No log with that name.
    pub(crate) const UNKNOWN_LOG: i32 = 1001;
    /// The log keeps no zk tree for that proof system.
    pub(crate) const ZK_TREE_NOT_KEPT: i32 = 1050;
    /// The node has no Groth16 keys configured (`[zk] keys`).
    pub(crate) const ZK_NO_KEYS: i32 = 1051;
    /// The prover refused: the witness does not satisfy the statement (or proving failed).
    pub(crate) const ZK_PROVE_FAILED: i32 = 1052;
    /// A prover is already busy on this node; retry later.
    pub(crate) const ZK_BUSY: i32 = 1053;
    /// The log has no such partition.
    pub(crate) const UNKNOWN_PARTITION: i32 = 1002;
    /// Offset or size beyond the partition.
    pub(crate) const OFFSET_OUT_OF_RANGE: i32 = 1003;
    /// A record is larger than the log allows.
    pub(crate) const RECORD_TOO_LARGE: i32 = 1004;
    /// The batch is larger than one request may carry.
    pub(crate) const BATCH_TOO_LARGE: i32 = 1005;
    /// A record cannot be encoded.
    pub(crate) const INVALID_RECORD: i32 = 1006;
    /// Not the leader; `data` has `leader` and `leaderRaftAddr`.
    pub(crate) const NOT_LEADER: i32 = 1010;
    /// This node has no replica; `data.replicas` lists who has.
    pub(crate) const NOT_REPLICA: i32 = 1011;
    /// No certified checkpoint covers the record yet.
    pub(crate) const NOT_CERTIFIED: i32 = 1012;
    /// The write's outcome is unknown (no commit in time).
    pub(crate) const TIMEOUT: i32 = 1013;
    /// No leader of the partition was elected within the write's wait; nothing was written.
    pub(crate) const NO_LEADER: i32 = 1014;
    /// The cluster refused the change (log exists, not enough members, ...).
    pub(crate) const REJECTED: i32 = 1020;
    /// The node failed (storage, Raft).
    pub(crate) const INTERNAL: i32 = 1030;
    /// The node does not serve the cluster yet (no global leader or members known).
    pub(crate) const NOT_READY: i32 = 1031;
    /// The client's IP made more calls than `[rpc] rate_limit_per_ip` allows; `data.retryAfterMs`.
    pub(crate) const RATE_LIMITED: i32 = 1032;
    /// No block (or state) at that height; `data.finalizedHead` or `data.latest`.
    pub(crate) const UNKNOWN_HEIGHT: i32 = 1040;
    /// The transaction is invalid (decoding, signature, chain, nonce, fee).
    pub(crate) const TX_REJECTED: i32 = 1041;
    /// No anchored checkpoint covers the record yet; `data.anchoredSize`.
    pub(crate) const NOT_ANCHORED: i32 = 1042;
    /// No cluster of that id is registered on the chain.
    pub(crate) const UNKNOWN_CLUSTER: i32 = 1043;
    /// No member of the cluster holding the log answered; `data.errors`.
    pub(crate) const CLUSTER_UNREACHABLE: i32 = 1044;
    /// The node runs no chain (no `[chain]` section).
    pub(crate) const NO_CHAIN: i32 = 1045;
    /// The chain's engine proves finality without a commit certificate (`chain_getCommit`);
    /// `chain_getFinality` serves its proof.
    pub(crate) const NO_COMMIT_CERTIFICATE: i32 = 1046;
    /// The mempool is full: the transaction was dropped; `data.capacity`. Retry later.
    pub(crate) const MEMPOOL_FULL: i32 = 1047;
}

type Node = ClusterNode;
pub(crate) type RpcResult = Result<Value, ErrorObjectOwned>;

/// Builds the RPC module over `node` (and the chain, when it runs).
pub(crate) fn module(
    node: Arc<Node>,
    chain: Option<Arc<crate::chain_node::ChainService>>,
) -> RpcModule<Node> {
    let mut module = RpcModule::from_arc(node);
    let register = register_timed::<Node>;

    register(&mut module, "system_health", |node, _| {
        let status = node.status();
        let ok = status.global_leader.is_some() && !status.members.is_empty();
        Ok(json!({ "ok": ok, "globalLeader": status.global_leader, "members": status.members.len() }))
    });
    register(&mut module, "system_readiness", |node, _| {
        let status = node.status();
        match status.global_leader.is_some() && !status.members.is_empty() {
            true => Ok(json!({ "ready": true })),
            false => Err(ErrorObject::owned(
                codes::NOT_READY,
                "not ready: no global leader or members yet",
                None::<()>,
            )),
        }
    });
    register(&mut module, "system_version", |_, _| {
        Ok(json!({ "name": "pyralog", "version": env!("CARGO_PKG_VERSION") }))
    });
    register(&mut module, "system_status", |node, _| Ok(status_json(node)));
    register(&mut module, "log_list", |node, _| Ok(Value::Array(node.logs().iter().map(log_json).collect())));
    register(&mut module, "log_read", read);
    register(&mut module, "log_getLatest", latest);
    register(&mut module, "log_getCheckpoint", checkpoint);
    register(&mut module, "log_getConsistencyProof", consistency_proof);
    module
        .register_async_method("log_create", |params, node, _| {
            timed("log_create", async move { create(&node, params).await })
        })
        .expect("unique method name");
    module
        .register_async_method("log_append", |params, node, _| {
            timed("log_append", async move { append(&node, params).await })
        })
        .expect("unique method name");
    module
        .register_async_method("log_getProof", move |params, node, _| {
            let chain = chain.clone();
            timed("log_getProof", async move {
                crate::log_proof::get_proof(&node, chain.as_deref(), params).await
            })
        })
        .expect("unique method name");
    crate::subscriptions::register(&mut module);
    let mut openrpc: Value =
        serde_json::from_str(include_str!("openrpc.json")).expect("openrpc.json is JSON");
    openrpc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    module.register_method("rpc.discover", move |_, _, _| openrpc.clone()).expect("unique method name");
    module
}

/// Registers a synchronous method over context `C`, recording its count and latency.
pub(crate) fn register_timed<C: Send + Sync + 'static>(
    module: &mut RpcModule<C>,
    name: &'static str,
    f: fn(&C, Params<'_>) -> RpcResult,
) {
    module
        .register_method(name, move |params, ctx, _| {
            let timer = RequestTimer::start(name);
            let result = f(ctx, params);
            timer.done(result.is_ok());
            result
        })
        .expect("unique method name");
}

/// Runs an async method, recording its count and latency.
pub(crate) async fn timed(method: &'static str, call: impl Future<Output = RpcResult>) -> RpcResult {
    let timer = RequestTimer::start(method);
    let result = call.await;
    timer.done(result.is_ok());
    result
}

/// A node-side failure (code 1030) with its message.
pub(crate) fn internal(err: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObject::owned(codes::INTERNAL, err.to_string(), None::<()>)
}

pub(crate) fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(jsonrpsee::types::error::INVALID_PARAMS_CODE, message.into(), None::<()>)
}

/// The params as `T`, or an invalid-params error saying what is wrong.
pub(crate) fn parse<'a, T: Deserialize<'a>>(params: &'a Params<'_>) -> Result<T, ErrorObjectOwned> {
    params.parse().map_err(|err| invalid(err.message().to_owned()))
}

/// The bytes of 0x-prefixed hex `text`; the error names `field`.
pub(crate) fn decode_hex(field: &str, text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").ok_or_else(|| format!("{field}: bytes are 0x-prefixed hex"))?;
    hex::decode(digits).map_err(|err| format!("{field}: {err}"))
}

fn hex_bytes(field: &str, text: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    decode_hex(field, text).map_err(invalid)
}

/// Bytes as 0x-prefixed hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Maps engine errors to stable codes, with the details a client needs in `data`.
pub(crate) fn cluster_error(err: ClusterError) -> ErrorObjectOwned {
    cluster_error_ref(&err)
}

/// [`cluster_error`] of a shared error (a partition's batch shares one error among its records).
pub(crate) fn cluster_error_ref(err: &ClusterError) -> ErrorObjectOwned {
    let message = err.to_string();
    let (code, data) = match err {
        ClusterError::UnknownLog(_) => (codes::UNKNOWN_LOG, None),
        ClusterError::UnknownPartition { partitions, .. } => {
            (codes::UNKNOWN_PARTITION, Some(json!({ "partitions": partitions })))
        }
        ClusterError::OffsetOutOfRange { size, .. } => {
            (codes::OFFSET_OUT_OF_RANGE, Some(json!({ "size": size })))
        }
        ClusterError::RecordTooLarge { index, max, .. } => {
            (codes::RECORD_TOO_LARGE, Some(json!({ "index": index, "max": max })))
        }
        ClusterError::BatchTooLarge { max, .. } => (codes::BATCH_TOO_LARGE, Some(json!({ "max": max }))),
        ClusterError::InvalidRecord { index, .. } | ClusterError::BadZkBlinding { index, .. } => {
            (codes::INVALID_RECORD, Some(json!({ "index": index })))
        }
        ClusterError::ZkTreeNotKept { .. } => (codes::ZK_TREE_NOT_KEPT, None),
        ClusterError::NotLeader { leader, leader_addr, .. } => {
            (codes::NOT_LEADER, Some(json!({ "leader": leader, "leaderRaftAddr": leader_addr })))
        }
        ClusterError::NotReplica { replicas, .. } => {
            (codes::NOT_REPLICA, Some(json!({ "replicas": replicas })))
        }
        ClusterError::NotCertified { .. } => (codes::NOT_CERTIFIED, None),
        ClusterError::Timeout { .. } => (codes::TIMEOUT, None),
        ClusterError::NoLeader { waited, .. } => {
            (codes::NO_LEADER, Some(json!({ "waitedMs": waited.as_millis() as u64 })))
        }
        ClusterError::Rejected(_) => (codes::REJECTED, None),
        _ => (codes::INTERNAL, None),
    };
    ErrorObject::owned(code, message, data)
}

fn log_json(log: &LogInfo) -> Value {
    json!({
        "id": log.id,
        "name": log.config.name.as_str(),
        "partitions": log.config.partitions,
        "replicationFactor": log.config.replication_factor,
        "maxRecordBytes": log.config.max_record_bytes,
        "zk": log.config.zk.iter().map(|tree| zk_option(*tree)).collect::<Vec<_>>(),
        "placement": log.placement,
    })
}

fn status_json(node: &Node) -> Value {
    let status = node.status();
    let role = |role: Role| format!("{role:?}").to_lowercase();
    json!({
        "nodeId": status.id,
        "cluster": status.cluster.as_str(),
        "raftAddr": status.addr,
        "globalLeader": status.global_leader,
        "members": status.members.iter().map(|(id, m)| json!({
            "id": id, "raftAddr": m.addr, "publicKey": m.key.to_string(),
        })).collect::<Vec<_>>(),
        "partitions": status.partitions.iter().map(|p| json!({
            "log": p.log.as_str(), "partition": p.partition, "role": role(p.role), "leader": p.leader,
            "epoch": p.epoch, "size": p.size, "certifiedSize": p.certified_size,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) fn record_json(stored: &StoredRecord) -> Value {
    let record = &stored.record;
    json!({
        "offset": stored.offset,
        "epoch": stored.epoch,
        "key": record.key.as_deref().map(to_hex),
        "value": to_hex(&record.value),
        "headers": record.headers.iter().map(|h| json!({ "name": h.name, "value": to_hex(&h.value) })).collect::<Vec<_>>(),
        "timestampMs": record.timestamp_ms,
        "scarabId": record.scarab_id.to_string(),
        "producer": record.producer.map(|p| json!({ "id": p.producer, "seq": p.sequence })),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateParams {
    name: String,
    partitions: u32,
    replication_factor: u8,
    #[serde(default = "default_max_record_bytes")]
    max_record_bytes: u32,
    /// zk trees to keep: `groth16` (Poseidon) and/or `stark` (Rescue).
    #[serde(default)]
    zk: Vec<String>,
}

fn default_max_record_bytes() -> u32 {
    1 << 20
}

async fn create(node: &Node, params: Params<'static>) -> RpcResult {
    let p: CreateParams = parse(&params)?;
    let name = LogName::new(p.name).map_err(|err| invalid(format!("name: {err}")))?;
    let zk =
        p.zk.iter()
            .map(|option| {
                zk_tree_of_option(option)
                    .ok_or_else(|| invalid(format!("zk: unknown proof system {option:?} (groth16, stark)")))
            })
            .collect::<Result<_, _>>()?;
    let config = LogConfig {
        name,
        partitions: p.partitions,
        replication_factor: p.replication_factor,
        max_record_bytes: p.max_record_bytes,
        zk,
    };
    node.create_log(config).await.map(|info| log_json(&info)).map_err(cluster_error)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RecordParams {
    #[serde(default)]
    key: Option<String>,
    value: String,
    #[serde(default)]
    headers: Vec<HeaderParams>,
    #[serde(default)]
    timestamp_ms: Option<u64>,
    #[serde(default)]
    producer: Option<ProducerParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderParams {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProducerParams {
    id: u64,
    seq: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AppendParams {
    log: String,
    records: Vec<RecordParams>,
    #[serde(default)]
    partition: Option<u32>,
}

fn to_record(index: usize, p: RecordParams) -> Result<Record, ErrorObjectOwned> {
    let field = |name: &str| format!("records[{index}].{name}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Ok(Record {
        key: p.key.map(|k| hex_bytes(&field("key"), &k)).transpose()?,
        value: hex_bytes(&field("value"), &p.value)?,
        headers: p
            .headers
            .into_iter()
            .map(|h| Ok(Header { value: hex_bytes(&field("headers.value"), &h.value)?, name: h.name }))
            .collect::<Result<_, ErrorObjectOwned>>()?,
        timestamp_ms: p.timestamp_ms.unwrap_or(now),
        scarab_id: 0,
        producer: p.producer.map(|p| ProducerSeq { producer: p.id, sequence: p.seq }),
    })
}

fn receipt_json(receipt: &AppendReceipt) -> Value {
    let (offset, duplicate) = match receipt.outcome {
        AppendOutcome::Appended { offset } => (Some(offset), false),
        AppendOutcome::Duplicate { original_offset } => (original_offset, true),
        AppendOutcome::OutOfOrderSequence { .. } => (None, false),
    };
    let mut value = json!({
        "partition": receipt.partition, "offset": offset, "epoch": receipt.epoch,
        // Scarab ids exceed 2^53: a string, so JavaScript and jq keep every digit.
        "scarabId": receipt.scarab_id.to_string(),
    });
    if duplicate {
        value["duplicate"] = json!(true);
    }
    if let AppendOutcome::OutOfOrderSequence { expected, got } = receipt.outcome {
        value["outOfOrderSequence"] = json!({ "expected": expected, "got": got });
    }
    value
}

async fn append(node: &Node, params: Params<'static>) -> RpcResult {
    let p: AppendParams = parse(&params)?;
    if p.records.is_empty() {
        return Err(invalid("records: at least one record"));
    }
    let records =
        p.records.into_iter().enumerate().map(|(i, r)| to_record(i, r)).collect::<Result<Vec<_>, _>>()?;
    let receipts: Vec<AppendReceipt> = match p.partition {
        Some(partition) => node.append_to(&p.log, partition, records).await.map_err(cluster_error)?,
        None => {
            let results = node.append(&p.log, records).await.map_err(cluster_error)?;
            partial_append(results)?
        }
    };
    Ok(Value::Array(receipts.iter().map(receipt_json).collect()))
}

/// The receipts of a keyed append whose partitions all succeeded; otherwise the first failure's
/// own code and message (`NotLeader` keeps its leader hint, `Timeout` its "outcome unknown"),
/// with `data.written`: every record other partitions stored (request `index` and receipt),
/// and `data.failed`: the indices of the records whose outcome is that error.
fn partial_append(
    results: Vec<Result<AppendReceipt, std::sync::Arc<ClusterError>>>,
) -> Result<Vec<AppendReceipt>, ErrorObjectOwned> {
    let Some(first) = results.iter().find_map(|r| r.as_ref().err()).cloned() else {
        return Ok(results.into_iter().flatten().collect());
    };
    let object = cluster_error_ref(&first);
    let mut written = Vec::new();
    let mut failed = Vec::new();
    for (index, result) in results.iter().enumerate() {
        match result {
            Ok(receipt) => {
                let mut receipt = receipt_json(receipt);
                receipt["index"] = json!(index);
                written.push(receipt);
            }
            Err(_) => failed.push(index),
        }
    }
    let detail = object.data().and_then(|d| serde_json::from_str::<Value>(d.get()).ok());
    Err(ErrorObject::owned(
        object.code(),
        object.message().to_owned(),
        Some(json!({ "detail": detail, "written": written, "failed": failed })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReadParams {
    log: String,
    partition: u32,
    #[serde(default)]
    from: u64,
    #[serde(default = "default_max")]
    max: usize,
    #[serde(default)]
    format: Option<String>,
}

fn default_max() -> usize {
    1000
}

fn read(node: &Node, params: Params<'_>) -> RpcResult {
    let p: ReadParams = parse(&params)?;
    let max = p.max.min(10_000);
    match p.format.as_deref() {
        None | Some("json") => {
            let records = node.read(&p.log, p.partition, p.from, max).map_err(cluster_error)?;
            Ok(Value::Array(records.iter().map(record_json).collect()))
        }
        Some("arrow") => {
            let batch = node.read_arrow(&p.log, p.partition, p.from, max).map_err(cluster_error)?;
            let ipc = pyralog_cluster::columnar::batch_to_ipc(&batch).map_err(internal)?;
            Ok(json!({ "format": "arrow-ipc-stream", "rows": batch.num_rows(), "data": to_hex(&ipc) }))
        }
        Some(other) => Err(invalid(format!("format: \"json\" or \"arrow\", not {other:?}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatestParams {
    log: String,
    key: String,
}

fn latest(node: &Node, params: Params<'_>) -> RpcResult {
    let p: LatestParams = parse(&params)?;
    let key = hex_bytes("key", &p.key)?;
    let record = node.latest(&p.log, &key).map_err(cluster_error)?;
    Ok(record.as_ref().map_or(Value::Null, record_json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionParams {
    log: String,
    partition: u32,
}

pub(crate) fn certificate_json(
    certificate: &pyralog_crypto::QuorumCertificate<pyralog_crypto::Checkpoint>,
) -> Value {
    let c = &certificate.message;
    json!({
        "checkpoint": {
            "cluster": c.cluster.as_str(), "log": c.log.as_str(), "partition": c.partition, "epoch": c.epoch,
            "size": c.size, "root": to_hex(&c.root.0), "timeMs": c.time_ms,
            "zkRoots": zk_roots_json(&c.zk_roots),
        },
        "encoded": to_hex(&c.encode()),
        "signatures": certificate.signatures.iter().map(|s| json!({
            "signer": s.signer.to_string(), "signature": to_hex(&s.signature.to_bytes()),
        })).collect::<Vec<_>>(),
    })
}

/// zk roots by tree name (`poseidon`, `rescue`), as 0x-hex.
pub(crate) fn zk_roots_json(
    roots: &std::collections::BTreeMap<pyralog_crypto::ZkTree, pyralog_crypto::Digest>,
) -> Value {
    let entries = roots.iter().map(|(tree, root)| {
        let name = serde_json::to_value(tree).expect("a tree name is JSON");
        (name.as_str().expect("tree names are strings").to_owned(), json!(to_hex(&root.0)))
    });
    Value::Object(entries.collect())
}

fn checkpoint(node: &Node, params: Params<'_>) -> RpcResult {
    let p: PartitionParams = parse(&params)?;
    let certificate = node.checkpoint(&p.log, p.partition).map_err(cluster_error)?;
    Ok(certificate.as_ref().map_or(Value::Null, certificate_json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConsistencyParams {
    log: String,
    partition: u32,
    old_size: u64,
    new_size: u64,
}

fn consistency_proof(node: &Node, params: Params<'_>) -> RpcResult {
    let p: ConsistencyParams = parse(&params)?;
    let proof = node.consistency_proof(&p.log, p.partition, p.old_size, p.new_size).map_err(cluster_error)?;
    Ok(consistency_json(&proof))
}

/// A consistency proof as JSON: `{oldSize, newSize, path}`.
pub(crate) fn consistency_json(proof: &ConsistencyProof<Blake3Merkle>) -> Value {
    json!({
        "oldSize": proof.old_size, "newSize": proof.new_size,
        "path": proof.path.iter().map(|d| to_hex(&d.0)).collect::<Vec<_>>(),
    })
}
