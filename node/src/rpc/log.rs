//! `log_*`: logs (create, list), writes (`log_append`), reads (`log_read`, `log_getLatest`),
//! checkpoints and consistency proofs. Writes sent to a node that does not lead the partition
//! are forwarded to the leader by the engine (one hop); if that fails the error carries the
//! leader hint (code 1010).

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_cluster::engine::{AppendReceipt, ClusterError};
use pyralog_cluster::model::{Header, LogConfig, ProducerSeq, Record, zk_option, zk_tree_of_option};
use pyralog_cluster::raft::LogInfo;
use pyralog_cluster::storage::AppendOutcome;
use pyralog_crypto::LogName;
use pyralog_light::wire::{certificate_json, consistency_json, record_json, to_hex};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::unix_ms;
use crate::rpc::codes::{cluster_error, cluster_error_ref, internal, invalid};
use crate::rpc::method::{RpcResult, hex_param, parse, register_timed, timed};
use crate::service::links::ClusterNode;

type Node = ClusterNode;

/// Adds the log methods to `module`.
pub(crate) fn register(module: &mut RpcModule<Node>) {
    let register = register_timed::<Node>;
    register(module, "log_list", |node, _| Ok(Value::Array(node.logs().iter().map(log_json).collect())));
    register(module, "log_read", read);
    register(module, "log_getLatest", latest);
    register(module, "log_getCheckpoint", checkpoint);
    register(module, "log_getConsistencyProof", consistency_proof);
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
    let now = unix_ms();
    Ok(Record {
        key: p.key.map(|k| hex_param(&field("key"), &k)).transpose()?,
        value: hex_param(&field("value"), &p.value)?,
        headers: p
            .headers
            .into_iter()
            .map(|h| Ok(Header { value: hex_param(&field("headers.value"), &h.value)?, name: h.name }))
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
    let key = hex_param("key", &p.key)?;
    let record = node.latest(&p.log, &key).map_err(cluster_error)?;
    Ok(record.as_ref().map_or(Value::Null, record_json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionParams {
    log: String,
    partition: u32,
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
