//! `log_*`: logs (create, list), writes (`log_append`), reads (`log_read`, `log_getLatest`),
//! checkpoints and consistency proofs. Writes sent to a node that does not lead the partition
//! are forwarded to the leader by the engine (one hop); if that fails the error carries the
//! leader hint (code 1010).

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_cluster::engine::{AppendReceipt, ClusterError};
use pyralog_cluster::model::zk_option;
use pyralog_cluster::raft::LogInfo;
use pyralog_cluster::storage::AppendOutcome;
use pyralog_light::wire::{certificate_json, consistency_json, record_json, to_hex};
use pyralog_rpc_params::{Append, CreateLog, GetConsistencyProof, GetLatest, Partition, Read, ReadFormat};
use serde_json::{Value, json};

use crate::clock::unix_ms;
use crate::rpc::codes::{cluster_error, cluster_error_ref, internal};
use crate::rpc::method::{LogRequest, RpcResult, authorize, parse, refused, register_timed, timed};
use crate::service::links::ClusterNode;
use pyralog_cluster::acl::Operation;
use pyralog_crypto::Digest;
use pyralog_rpc_params::auth::{append_body, read_body};

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
        "constraint": log.config.constraint.map(|hash| to_hex(&hash.0)),
        "acl": log.config.acl.map(|hash| to_hex(&hash.0)),
        "trigger": log.config.trigger.as_ref().map(|t| json!({ "code": to_hex(&t.code.0), "target": t.target.as_str() })),
        "placement": log.placement,
    })
}

async fn create(node: &Node, params: Params<'static>) -> RpcResult {
    let p: CreateLog = parse(&params)?;
    let mut config = p.config().map_err(refused)?;
    if let Some(wasm) = p.constraint_wasm().map_err(refused)? {
        config.constraint = Some(node.store_contract_code(wasm).await.map_err(cluster_error)?);
    }
    if let Some(wasm) = p.acl_wasm().map_err(refused)? {
        config.acl = Some(node.store_contract_code(wasm).await.map_err(cluster_error)?);
    }
    if let Some((wasm, target)) = p.trigger_wasm().map_err(refused)? {
        let code = node.store_contract_code(wasm).await.map_err(cluster_error)?;
        config.trigger = Some(pyralog_cluster::model::TriggerConfig { code, target });
    }
    node.create_log(config).await.map(|info| log_json(&info)).map_err(cluster_error)
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
    let p: Append = parse(&params)?;
    let records = p.records(unix_ms()).map_err(refused)?;
    let body = match &p.auth {
        Some(_) => append_body(&p.records).map_err(refused)?,
        None => Digest([0; 32]),
    };
    let request = LogRequest {
        method: "log_append",
        log: &p.log,
        partition: p.partition,
        body,
        operation: Operation::Append,
    };
    authorize(node, p.auth.as_ref(), request)?;
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

fn read(node: &Node, params: Params<'_>) -> RpcResult {
    let p: Read = parse(&params)?;
    let max = p.limit();
    let body = read_body(p.from, p.max as u64);
    let request = LogRequest {
        method: "log_read",
        log: &p.log,
        partition: Some(p.partition),
        body,
        operation: Operation::Read,
    };
    authorize(node, p.auth.as_ref(), request)?;
    match p.format().map_err(refused)? {
        ReadFormat::Json => {
            let records = node.read(&p.log, p.partition, p.from, max).map_err(cluster_error)?;
            Ok(Value::Array(records.iter().map(record_json).collect()))
        }
        ReadFormat::Arrow => {
            let batch = node.read_arrow(&p.log, p.partition, p.from, max).map_err(cluster_error)?;
            let ipc = pyralog_cluster::columnar::batch_to_ipc(&batch).map_err(internal)?;
            Ok(json!({ "format": "arrow-ipc-stream", "rows": batch.num_rows(), "data": to_hex(&ipc) }))
        }
    }
}

fn latest(node: &Node, params: Params<'_>) -> RpcResult {
    let p: GetLatest = parse(&params)?;
    let key = p.key_bytes().map_err(refused)?;
    node.authorize(&p.log, None, Operation::Read, None).map_err(cluster_error)?;
    let record = node.latest(&p.log, &key).map_err(cluster_error)?;
    Ok(record.as_ref().map_or(Value::Null, record_json))
}

fn checkpoint(node: &Node, params: Params<'_>) -> RpcResult {
    let p: Partition = parse(&params)?;
    let certificate = node.checkpoint(&p.log, p.partition).map_err(cluster_error)?;
    Ok(certificate.as_ref().map_or(Value::Null, certificate_json))
}

fn consistency_proof(node: &Node, params: Params<'_>) -> RpcResult {
    let p: GetConsistencyProof = parse(&params)?;
    let proof = node.consistency_proof(&p.log, p.partition, p.old_size, p.new_size).map_err(cluster_error)?;
    Ok(consistency_json(&proof))
}
