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
use pyralog_light::wire::certificate;
use pyralog_light::zk::{
    ProofFile, check_certificate, check_statement, claim_json, verify_proof, verifying_key_for,
};
use serde_json::{Value, json};

use crate::cli::client::call;
use crate::cli::light::record::{consistency_since, load_trust};

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

pub(super) async fn verify_zk(args: &VerifyZkArgs) -> anyhow::Result<Value> {
    let text = std::fs::read(&args.proof).with_context(|| format!("cannot read {}", args.proof.display()))?;
    let file: ProofFile = serde_json::from_slice(&text).context("proof file")?;
    let mut trust = load_trust(&args.trust, args.trust_on_first_use, &args.rpc, &file.log).await?;
    if file.cluster != trust.cluster {
        bail!("the proof is about cluster {:?}, the trust file pins {:?}", file.cluster, trust.cluster);
    }
    let signers = trust.signers(&file.log, file.partition)?;

    // 1. The proof verifies on its own.
    let key = verifying_key_for(&file, args.nonce.as_deref(), args.keys.as_deref())?;
    let proven = file.clone();
    tokio::task::spawn_blocking(move || verify_proof(&proven, key.as_ref())).await??;

    // 2. The certified checkpoint, under the trusted keys, extending what was trusted before.
    let answer =
        call(&args.rpc, "log_getCheckpoint", json!({ "log": file.log, "partition": file.partition })).await?;
    if answer.is_null() {
        bail!("no certified checkpoint of {}/{} yet", file.log, file.partition);
    }
    let certificate = certificate(&answer)?;
    check_certificate(&file, &trust.cluster, &certificate, &signers)?;
    let checkpoint = &certificate.message;
    let trusted = trust.trusted(&file.log, file.partition)?;
    let consistency =
        consistency_since(&args.rpc, &file.log, file.partition, trusted.as_ref(), checkpoint.size).await?;
    // 3. The statement is about that checkpoint (and, for a batch, the trusted one before it).
    check_statement(&file, checkpoint, trusted.as_ref(), consistency.as_ref())?;

    trust.keep_newer(&file.log, file.partition, checkpoint)?;
    trust.save(&args.trust)?;
    let claim = claim_json(&file.proof.statement);
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
