//! `pyralog light verify-record`: checks a record served by any node without trusting it.
//!
//! The trust file (JSON) pins the cluster's member keys and each log's placement, and keeps the
//! latest checkpoint verified per partition. Without one, `--trust-on-first-use` pins what the
//! server says (with a warning): the same leap of faith as SSH's first connection.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use pyralog_crypto::light::RecordQuery;
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof};
use pyralog_crypto::{Checkpoint, ClusterId, LogName};
use pyralog_light::record::{proven_fields, verify_served_record};
use pyralog_light::trust::Trust;
use pyralog_light::wire::{consistency_path, record_evidence, to_hex};
use serde_json::{Value, json};

use crate::cli::client::call;

/// `pyralog light verify-record`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A node's JSON-RPC URL.
    #[arg(long)]
    pub(super) rpc: String,
    /// The log.
    #[arg(long)]
    pub(super) log: String,
    /// The partition.
    #[arg(long)]
    pub(super) partition: u32,
    /// The record's offset.
    #[arg(long)]
    pub(super) offset: u64,
    /// The trust file (created with --trust-on-first-use, updated after each verification).
    #[arg(long, default_value = "pyralog-trust.json")]
    trust: PathBuf,
    /// Without a trust file, pin the members and placement the server reports.
    #[arg(long)]
    trust_on_first_use: bool,
    /// Verify up to a finalized chain header (record -> anchored checkpoint -> state root ->
    /// header signed by more than 2/3 of the trusted validators), with the state of `light sync`.
    #[arg(long)]
    pub(super) finality: bool,
    /// With --finality: the cluster holding the log (default: the server's own; any node
    /// serves any registered cluster's records).
    #[arg(long, requires = "finality")]
    pub(super) cluster: Option<String>,
    /// With --finality: the light client's state file (`light sync` writes it).
    #[arg(long, default_value = "pyralog-light.json")]
    pub(super) state: PathBuf,
}

/// The trust file at `path` with `log`'s placement pinned: read, or (with `first_use_ok`) made
/// from what the server at `rpc` reports.
pub(super) async fn load_trust(
    path: &Path,
    first_use_ok: bool,
    rpc: &str,
    log: &str,
) -> anyhow::Result<Trust> {
    let mut trust: Trust = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|err| anyhow::anyhow!("trust file {}: {err}", path.display()))?,
        Err(_) if first_use_ok => {
            let trust = Trust::from_status(&call(rpc, "system_status", json!({})).await?)?;
            eprintln!(
                "warning: trusting on first use: {} member keys of cluster {:?} as reported by {rpc}",
                trust.member_count(),
                trust.cluster
            );
            trust
        }
        Err(err) => {
            bail!("cannot read trust file {}: {err} (pass --trust-on-first-use to create it)", path.display())
        }
    };
    if !trust.knows_log(log) {
        if !first_use_ok {
            bail!("log {log:?} is not in the trust file (pass --trust-on-first-use to pin its placement)");
        }
        trust.pin_placement(log, &call(rpc, "log_list", json!({})).await?)?;
        eprintln!("warning: trusting on first use: the placement of log {log:?}");
    }
    Ok(trust)
}

/// Runs `pyralog light verify-record` (without `--finality`).
pub(super) async fn verify(args: &VerifyArgs) -> anyhow::Result<Value> {
    let mut trust = load_trust(&args.trust, args.trust_on_first_use, &args.rpc, &args.log).await?;
    let signers = trust.signers(&args.log, args.partition)?;

    let answer = call(
        &args.rpc,
        "log_getProof",
        json!({ "log": args.log, "partition": args.partition, "offset": args.offset }),
    )
    .await?;
    let evidence = record_evidence(&answer)?;
    let query = RecordQuery {
        cluster: ClusterId::new(trust.cluster.clone())?,
        log: LogName::new(args.log.clone())?,
        partition: args.partition,
        offset: args.offset,
    };
    let trusted = trust.trusted(&args.log, args.partition)?;
    let new_size = evidence.certificate.message.size;
    let consistency =
        consistency_since(&args.rpc, &args.log, args.partition, trusted.as_ref(), new_size).await?;
    let (checkpoint, proven) = verify_served_record(
        &query,
        &signers,
        &evidence,
        &answer["record"],
        trusted.as_ref(),
        consistency.as_ref(),
    )?;

    trust.keep_newer(&args.log, args.partition, &checkpoint)?;
    trust.save(&args.trust)?;
    let mut report = json!({
        "verified": true,
        "cluster": trust.cluster,
        "log": args.log,
        "partition": args.partition,
        "offset": args.offset,
        "checkpoint": { "size": checkpoint.size, "epoch": checkpoint.epoch, "root": to_hex(&checkpoint.root.0) },
        "signatures": evidence.certificate.signatures.len(),
        "extendsTrusted": trusted.map(|old| old.size),
        // The contracts the log runs under, pinned with its placement.
        "rules": trust.rules(&args.log),
    });
    merge(&mut report, proven_fields(&proven));
    Ok(report)
}

/// Adds `fields` (an object) to `report` (an object).
pub(super) fn merge(report: &mut Value, fields: Value) {
    if let (Value::Object(report), Value::Object(fields)) = (report, fields) {
        report.extend(fields);
    }
}

/// The server's proof that the partition's tree of `new_size` records extends the `trusted`
/// checkpoint's; `None` when nothing is trusted or the size did not grow.
pub(super) async fn consistency_since(
    rpc: &str,
    log: &str,
    partition: u32,
    trusted: Option<&Checkpoint>,
    new_size: u64,
) -> anyhow::Result<Option<ConsistencyProof<Blake3Merkle>>> {
    let Some(old) = trusted.filter(|old| new_size > old.size) else { return Ok(None) };
    let params = json!({ "log": log, "partition": partition, "oldSize": old.size, "newSize": new_size });
    let answer = call(rpc, "log_getConsistencyProof", params).await?;
    Ok(Some(ConsistencyProof::new(old.size, new_size, consistency_path(&answer)?)))
}
