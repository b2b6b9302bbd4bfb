//! `pyralog light verify-record`: checks a record served by any node without trusting it.
//!
//! The trust file (JSON) pins the cluster's member keys and each log's placement, and keeps the
//! latest checkpoint verified per partition. Without one, `--trust-on-first-use` pins what the
//! server says (with a warning): the same leap of faith as SSH's first connection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClientBuilder;
use pyralog_cluster::model::StoredRecord;
use pyralog_crypto::light::{RecordEvidence, RecordQuery, verify_record};
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof};
use pyralog_crypto::quorum::{MemberSet, QuorumCertificate, SignatureShare};
use pyralog_crypto::{Checkpoint, ClusterId, Digest, LogName, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::rpc::{decode_hex, to_hex};

/// `pyralog light ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum LightCommand {
    /// Verify one record end to end: inclusion proof, certified checkpoint, consistency with
    /// the last trusted checkpoint; with --finality, up to a finalized chain header.
    VerifyRecord(VerifyArgs),
    /// Follow the chain's finalized headers from the genesis (or the last trusted header).
    Sync(crate::light_chain::SyncArgs),
    /// Verify a zk proof file (a Groth16 membership proof or an append-batch STARK) against the
    /// roots of a certified checkpoint.
    VerifyZk(crate::light_zk::VerifyZkArgs),
}

/// `pyralog light verify-record`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A node's JSON-RPC URL.
    #[arg(long)]
    rpc: String,
    /// The log.
    #[arg(long)]
    log: String,
    /// The partition.
    #[arg(long)]
    partition: u32,
    /// The record's offset.
    #[arg(long)]
    offset: u64,
    /// The trust file (created with --trust-on-first-use, updated after each verification).
    #[arg(long, default_value = "pyralog-trust.json")]
    trust: PathBuf,
    /// Without a trust file, pin the members and placement the server reports.
    #[arg(long)]
    trust_on_first_use: bool,
    /// Verify up to a finalized chain header (record -> anchored checkpoint -> state root ->
    /// header signed by more than 2/3 of the trusted validators), with the state of `light sync`.
    #[arg(long)]
    finality: bool,
    /// With --finality: the cluster holding the log (default: the server's own; any node
    /// serves any registered cluster's records).
    #[arg(long, requires = "finality")]
    cluster: Option<String>,
    /// With --finality: the light client's state file (`light sync` writes it).
    #[arg(long, default_value = "pyralog-light.json")]
    state: PathBuf,
}

/// What the client trusts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Trust {
    pub(crate) cluster: String,
    /// Node id -> key.
    members: BTreeMap<u64, PublicKey>,
    /// Log -> per partition, its replicas.
    placement: BTreeMap<String, Vec<Vec<u64>>>,
    /// `log/partition` -> the latest verified checkpoint's canonical encoding (hex).
    checkpoints: BTreeMap<String, String>,
}

/// Runs `pyralog light ...`; the outcome is printed as JSON, and only a verified record exits 0.
pub(crate) fn run(command: LightCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (outcome, failed) = match &command {
        LightCommand::Sync(args) => (runtime.block_on(crate::light_chain::sync(args)), "synced"),
        LightCommand::VerifyRecord(args) if args.finality => {
            let finality = crate::light_chain::FinalityArgs {
                rpc: &args.rpc,
                state: &args.state,
                cluster: args.cluster.as_deref(),
                log: &args.log,
                partition: args.partition,
                offset: args.offset,
            };
            (runtime.block_on(crate::light_chain::verify_record_finality(finality)), "verified")
        }
        LightCommand::VerifyRecord(args) => (runtime.block_on(verify(args)), "verified"),
        LightCommand::VerifyZk(args) => (runtime.block_on(crate::light_zk::verify_zk(args)), "verified"),
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(err) => {
            println!("{}", json!({ failed: false, "reason": format!("{err:#}") }));
            Err(err)
        }
    }
}

pub(crate) async fn call(url: &str, method: &str, params: Value) -> anyhow::Result<Value> {
    let client = HttpClientBuilder::default().build(url)?;
    let mut object = ObjectParams::new();
    for (name, value) in params.as_object().expect("params are an object") {
        object.insert(name, value)?;
    }
    client.request(method, object).await.map_err(|err| match err {
        // The server's error object, once (its Display and its source would repeat it).
        ClientError::Call(e) => anyhow::anyhow!("{method} at {url}: error {}: {}", e.code(), e.message()),
        other => anyhow::anyhow!("{method} at {url}: {other}"),
    })
}

pub(crate) fn unhex(value: &Value, what: &str) -> anyhow::Result<Vec<u8>> {
    let text = value.as_str().with_context(|| format!("{what}: not a string"))?;
    decode_hex(what, text).map_err(anyhow::Error::msg)
}

pub(crate) fn digest(value: &Value, what: &str) -> anyhow::Result<Digest> {
    let bytes: [u8; 32] =
        unhex(value, what)?.try_into().map_err(|_| anyhow::anyhow!("{what}: not 32 bytes"))?;
    Ok(Digest(bytes))
}

pub(crate) fn u64_field(value: &Value, what: &str) -> anyhow::Result<u64> {
    value.as_u64().with_context(|| format!("{what}: not a number"))
}

/// Pins what the server reports about members and placement.
async fn first_use(rpc: &str) -> anyhow::Result<Trust> {
    let status = call(rpc, "system_status", json!({})).await?;
    let mut trust =
        Trust { cluster: status["cluster"].as_str().unwrap_or_default().to_owned(), ..Trust::default() };
    for member in status["members"].as_array().context("members")? {
        let key: PublicKey = member["publicKey"].as_str().context("publicKey")?.parse()?;
        trust.members.insert(u64_field(&member["id"], "member id")?, key);
    }
    eprintln!(
        "warning: trusting on first use: {} member keys of cluster {:?} as reported by {rpc}",
        trust.members.len(),
        trust.cluster
    );
    Ok(trust)
}

/// The trust file at `path` with `log`'s placement pinned: read, or (with `first_use`) made
/// from what the server at `rpc` reports.
pub(crate) async fn load_trust(
    path: &Path,
    first_use_ok: bool,
    rpc: &str,
    log: &str,
) -> anyhow::Result<Trust> {
    let mut trust: Trust = match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("trust file {}", path.display()))?
        }
        Err(_) if first_use_ok => first_use(rpc).await?,
        Err(err) => {
            bail!("cannot read trust file {}: {err} (pass --trust-on-first-use to create it)", path.display())
        }
    };
    if !trust.placement.contains_key(log) {
        if !first_use_ok {
            bail!("log {log:?} is not in the trust file (pass --trust-on-first-use to pin its placement)");
        }
        let logs = call(rpc, "log_list", json!({})).await?;
        let info = logs.as_array().into_iter().flatten().find(|l| l["name"] == log);
        let placement: Vec<Vec<u64>> =
            serde_json::from_value(info.context("no such log")?["placement"].clone())?;
        eprintln!("warning: trusting on first use: the placement of log {log:?}");
        trust.placement.insert(log.to_owned(), placement);
    }
    Ok(trust)
}

impl Trust {
    /// The keys whose majority certifies the partition's checkpoints.
    pub(crate) fn signers(&self, log: &str, partition: u32) -> anyhow::Result<MemberSet> {
        let placement = self.placement.get(log).context("log not in the trust file")?;
        let replicas = placement.get(partition as usize).context("no such partition")?;
        let keys = replicas
            .iter()
            .map(|id| {
                self.members.get(id).copied().with_context(|| format!("replica {id} has no trusted key"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(MemberSet::equal(keys)?)
    }

    /// Keeps `checkpoint` for `log/partition` if it is newer than the one trusted before.
    pub(crate) fn keep_newer(
        &mut self,
        log: &str,
        partition: u32,
        checkpoint: &Checkpoint,
    ) -> anyhow::Result<()> {
        let slot = format!("{log}/{partition}");
        if self.trusted(log, partition)?.is_none_or(|old| checkpoint.size > old.size) {
            self.checkpoints.insert(slot, to_hex(&checkpoint.encode()));
        }
        Ok(())
    }

    /// The checkpoint of `log/partition` verified last, if any.
    pub(crate) fn trusted(&self, log: &str, partition: u32) -> anyhow::Result<Option<Checkpoint>> {
        trusted_checkpoint(&self.checkpoints, &format!("{log}/{partition}"))
    }

    /// Writes the trust file.
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

async fn verify(args: &VerifyArgs) -> anyhow::Result<Value> {
    let mut trust = load_trust(&args.trust, args.trust_on_first_use, &args.rpc, &args.log).await?;
    let signers = trust.signers(&args.log, args.partition)?;

    let answer = call(
        &args.rpc,
        "log_getProof",
        json!({ "log": args.log, "partition": args.partition, "offset": args.offset }),
    )
    .await?;
    let evidence = evidence(&answer)?;
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
    let checkpoint = verify_record(&query, &signers, &evidence, trusted.as_ref(), consistency.as_ref())?;

    let proven = proven_record(args.offset, &evidence.record, &answer["record"])?;

    trust.keep_newer(&args.log, args.partition, &checkpoint)?;
    trust.save(&args.trust)?;
    Ok(json!({
        "verified": true,
        "cluster": trust.cluster,
        "log": args.log,
        "partition": args.partition,
        "offset": args.offset,
        "epoch": proven.epoch,
        "key": proven.record.key.as_deref().map(to_hex),
        "value": to_hex(&proven.record.value),
        "record": crate::rpc::record_json(&proven),
        "checkpoint": { "size": checkpoint.size, "epoch": checkpoint.epoch, "root": to_hex(&checkpoint.root.0) },
        "signatures": evidence.certificate.signatures.len(),
        "extendsTrusted": trusted.map(|old| old.size),
    }))
}

/// The checkpoint a trust map keeps for `slot` (hex of its canonical encoding), if any.
pub(crate) fn trusted_checkpoint(
    map: &BTreeMap<String, String>,
    slot: &str,
) -> anyhow::Result<Option<Checkpoint>> {
    match map.get(slot) {
        Some(encoded) => Ok(Some(Checkpoint::decode(&unhex(&json!(encoded), "trusted checkpoint")?)?)),
        None => Ok(None),
    }
}

/// The server's proof that the partition's tree of `new_size` records extends the `trusted`
/// checkpoint's; `None` when nothing is trusted or the size did not grow.
pub(crate) async fn consistency_since(
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

/// The hashes of a consistency proof's JSON `path`.
pub(crate) fn consistency_path(proof: &Value) -> anyhow::Result<Vec<Digest>> {
    let path = proof["path"].as_array().context("consistency path")?;
    path.iter().map(|d| digest(d, "consistency path")).collect()
}

/// The record at `offset` decoded from its proven bytes, checked against the JSON the server
/// also sent (which must say the same).
pub(crate) fn proven_record(offset: u64, bytes: &[u8], served: &Value) -> anyhow::Result<StoredRecord> {
    let proven = StoredRecord::decode(offset, bytes).context("proven record bytes")?;
    check_json_matches(served, &proven)?;
    Ok(proven)
}

/// The JSON record must say what the proven bytes say, field by field (offset, epoch, key,
/// value, headers, timestamp, Scarab id, producer): a server that rewrites any of them is caught,
/// so nothing the client or its caller reads next to `"verified": true` is unproven.
fn check_json_matches(served: &Value, proven: &StoredRecord) -> anyhow::Result<()> {
    let expected = crate::rpc::record_json(proven);
    let (Some(served), Some(expected)) = (served.as_object(), expected.as_object()) else {
        bail!("the record's JSON fields differ from its proven bytes: not an object");
    };
    let mut fields: Vec<&str> = expected.keys().chain(served.keys()).map(String::as_str).collect();
    fields.sort_unstable();
    fields.dedup();
    let differing: Vec<&str> = fields.into_iter().filter(|f| served.get(*f) != expected.get(*f)).collect();
    if !differing.is_empty() {
        bail!("the record's JSON fields differ from its proven bytes: {}", differing.join(", "));
    }
    Ok(())
}

/// The evidence in a `log_getProof` answer.
fn evidence(answer: &Value) -> anyhow::Result<RecordEvidence> {
    let proof = &answer["proof"];
    let path = proof["path"].as_array().context("proof.path")?;
    let path = path.iter().map(|d| digest(d, "proof.path")).collect::<anyhow::Result<_>>()?;
    let inclusion = InclusionProof::new(
        u64_field(&proof["index"], "proof.index")?,
        u64_field(&proof["treeSize"], "proof.treeSize")?,
        path,
    );
    Ok(RecordEvidence {
        record: unhex(&answer["encoded"], "encoded")?,
        proof: inclusion,
        certificate: certificate(&answer["certificate"])?,
    })
}

/// A checkpoint certificate from its JSON (`certificate_json`'s shape): the canonical encoding
/// and the signatures; the readable fields are ignored.
pub(crate) fn certificate(certificate: &Value) -> anyhow::Result<QuorumCertificate<Checkpoint>> {
    let message = Checkpoint::decode(&unhex(&certificate["encoded"], "certificate.encoded")?)?;
    let signatures = certificate["signatures"]
        .as_array()
        .context("certificate.signatures")?
        .iter()
        .map(|s| {
            let signer: PublicKey = s["signer"].as_str().context("signer")?.parse()?;
            let bytes: [u8; 64] = unhex(&s["signature"], "signature")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("signature: not 64 bytes"))?;
            Ok(SignatureShare { signer, signature: Signature::from_bytes(&bytes) })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(QuorumCertificate { message, signatures })
}
