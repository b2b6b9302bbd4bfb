//! `pyralog light verify-zk`: checks a zk proof file against certified state without trusting
//! the node that serves the checkpoint.
//!
//! The proof must verify on its own (Groth16 under the circuit's verifying key, STARKs at 96
//! bits or more), and its statement must be about the partition's certified checkpoint: for a
//! membership proof its root, epoch and size; for an append batch its new root and size, with
//! its old root being the empty tree's or the one of the checkpoint the trust file holds. The
//! certificate is checked against the trusted replica keys, and a newer checkpoint is kept.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use pyralog_crypto::light::{CHECKPOINT_THRESHOLD, check_extends};
use pyralog_crypto::{ClusterId, LogName};
use pyralog_zk::poseidon::PoseidonHasher;
use pyralog_zk::proof::{Statement, ZkProof};
use pyralog_zk::rescue::RescueHasher;
use pyralog_zk::tree::DigestCodec;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::light::{call, certificate, consistency_since, load_trust};
use crate::rpc::to_hex;

/// `pyralog light verify-zk`.
#[derive(Debug, Args)]
pub(crate) struct VerifyZkArgs {
    /// A node's JSON-RPC URL (serves the certified checkpoint).
    #[arg(long)]
    rpc: String,
    /// The proof file (`zk_prove*` answers and `pyralog zk prove-membership` write it).
    #[arg(long)]
    proof: PathBuf,
    /// The Groth16 keys directory from `pyralog zk setup` (membership proofs).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// The nonce this verifier gave the prover (0x-hex); a membership proof must carry it.
    #[arg(long)]
    nonce: Option<String>,
    /// The trust file (as for verify-record).
    #[arg(long, default_value = "pyralog-trust.json")]
    trust: PathBuf,
    /// Without a trust file, pin the members and placement the server reports.
    #[arg(long)]
    trust_on_first_use: bool,
}

/// The proof file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofFile {
    cluster: String,
    log: String,
    partition: u32,
    proof: ZkProof,
}

pub(crate) async fn verify_zk(args: &VerifyZkArgs) -> anyhow::Result<Value> {
    let text = std::fs::read(&args.proof).with_context(|| format!("cannot read {}", args.proof.display()))?;
    let file: ProofFile = serde_json::from_slice(&text).context("proof file")?;
    let mut trust = load_trust(&args.trust, args.trust_on_first_use, &args.rpc, &file.log).await?;
    if file.cluster != trust.cluster {
        bail!("the proof is about cluster {:?}, the trust file pins {:?}", file.cluster, trust.cluster);
    }
    let signers = trust.signers(&file.log, file.partition)?;

    // 1. The proof verifies on its own.
    let key = match &file.proof.statement {
        Statement::Membership(statement) => {
            let expected =
                args.nonce.as_deref().context("a membership proof needs the --nonce you issued")?;
            if to_hex(&PoseidonHasher::to_bytes(&statement.nonce)) != expected.to_ascii_lowercase() {
                bail!("the proof was made for another nonce (a replay?)");
            }
            let dir = args.keys.as_ref().context("a membership proof needs --keys (the verifying key)")?;
            Some(crate::zk_cli::load_verifying_key(dir)?)
        }
        Statement::Appends(_) => None,
    };
    let proof = file.proof.clone();
    tokio::task::spawn_blocking(move || proof.verify(key.as_ref())).await?.context("the proof")?;

    // 2. The certified checkpoint, under the trusted keys, extending what was trusted before.
    let answer =
        call(&args.rpc, "log_getCheckpoint", json!({ "log": file.log, "partition": file.partition })).await?;
    if answer.is_null() {
        bail!("no certified checkpoint of {}/{} yet", file.log, file.partition);
    }
    let certificate = certificate(&answer)?;
    let checkpoint = &certificate.message;
    let (cluster, log) = (ClusterId::new(trust.cluster.clone())?, LogName::new(file.log.clone())?);
    if (&checkpoint.cluster, &checkpoint.log, checkpoint.partition) != (&cluster, &log, file.partition) {
        bail!("the server's checkpoint is for another partition");
    }
    certificate.verify_quorum(&signers, CHECKPOINT_THRESHOLD).context("checkpoint certificate")?;
    let trusted = trust.trusted(&file.log, file.partition)?;
    if let Some(old) = &trusted {
        let consistency =
            consistency_since(&args.rpc, &file.log, file.partition, Some(old), checkpoint.size).await?;
        check_extends(old, checkpoint, consistency.as_ref()).context("the certified checkpoint")?;
    }

    // 3. The statement is about that checkpoint (and, for a batch, the trusted one before it).
    file.proof.check_certified(checkpoint, trusted.as_ref())?;

    trust.keep_newer(&file.log, file.partition, checkpoint)?;
    trust.save(&args.trust)?;
    let claim = match &file.proof.statement {
        Statement::Membership(s) => json!({
            "system": "groth16",
            "disclosedKey": s.disclosed_key.map(|k| to_hex(&PoseidonHasher::to_bytes(&k))),
        }),
        Statement::Appends(s) => json!({
            "system": "stark",
            "fromSize": s.old_size,
            "toSize": s.old_size + s.count,
            "batchDigest": to_hex(&RescueHasher::to_bytes(&s.batch_digest)),
        }),
    };
    Ok(json!({
        "verified": true,
        "cluster": trust.cluster,
        "log": file.log,
        "partition": file.partition,
        "claim": claim,
        "checkpoint": { "size": checkpoint.size, "epoch": checkpoint.epoch },
        "signatures": certificate.signatures.len(),
    }))
}
