//! zk proof files checked against certified state: the proof must verify on its own (Groth16
//! under the circuit's verifying key, STARKs at 96 bits or more) and its statement must be about
//! the partition's certified checkpoint (`ZkProof::check_certified`). A membership proof must
//! carry the nonce the verifier issued.

use std::path::Path;

use anyhow::{Context, bail};
use ark_bn254::Bn254;
use ark_groth16::VerifyingKey;
use pyralog_crypto::light::{CHECKPOINT_THRESHOLD, check_extends};
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof};
use pyralog_crypto::quorum::{MemberSet, QuorumCertificate};
use pyralog_crypto::{Checkpoint, ClusterId, LogName};
use pyralog_zk::groth16;
use pyralog_zk::poseidon::PoseidonHasher;
use pyralog_zk::proof::{Statement, ZkProof};
use pyralog_zk::rescue::RescueHasher;
use pyralog_zk::tree::DigestCodec;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::wire::to_hex;

/// The Groth16 proving key's file in a key directory (`pyralog zk setup`).
pub const PROVING_KEY_FILE: &str = "membership.pk";
/// The Groth16 verifying key's file in a key directory.
pub const VERIFYING_KEY_FILE: &str = "membership.vk";

/// A proof file: the answer of the `zk_prove*` methods and of `pyralog zk prove-membership`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofFile {
    /// The cluster holding the log.
    pub cluster: String,
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// The proof and its statement.
    pub proof: ZkProof,
}

/// The verifying key in the key directory `dir`.
pub fn load_verifying_key(dir: &Path) -> anyhow::Result<VerifyingKey<Bn254>> {
    let path = dir.join(VERIFYING_KEY_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    groth16::verifying_key_from_bytes(&bytes).with_context(|| format!("{}", path.display()))
}

/// The key `file`'s proof verifies under: a membership proof must carry the verifier's `nonce`
/// (0x-hex; else it may be a replay) and needs the key directory; an append STARK needs nothing.
pub fn verifying_key_for(
    file: &ProofFile,
    nonce: Option<&str>,
    keys: Option<&Path>,
) -> anyhow::Result<Option<VerifyingKey<Bn254>>> {
    match &file.proof.statement {
        Statement::Membership(statement) => {
            let expected = nonce.context("a membership proof needs the --nonce you issued")?;
            if to_hex(&PoseidonHasher::to_bytes(&statement.nonce)) != expected.to_ascii_lowercase() {
                bail!("the proof was made for another nonce (a replay?)");
            }
            let dir = keys.context("a membership proof needs --keys (the verifying key)")?;
            Ok(Some(load_verifying_key(dir)?))
        }
        Statement::Appends(_) => Ok(None),
    }
}

/// Verifies the proof on its own, under `key` for a membership proof ([`verifying_key_for`]).
/// CPU-heavy: run it off an async runtime's threads.
pub fn verify_proof(file: &ProofFile, key: Option<&VerifyingKey<Bn254>>) -> anyhow::Result<()> {
    file.proof.verify(key).context("the proof")
}

/// Checks that `certificate` certifies a checkpoint of `file`'s partition in the trusted
/// `cluster` (the trust file's, never the proof file's word) under the trusted `signers`.
pub fn check_certificate(
    file: &ProofFile,
    cluster: &str,
    certificate: &QuorumCertificate<Checkpoint>,
    signers: &MemberSet,
) -> anyhow::Result<()> {
    if file.cluster != cluster {
        bail!("the proof is about cluster {:?}, the trust file pins {:?}", file.cluster, cluster);
    }
    let checkpoint = &certificate.message;
    let (cluster, log) = (ClusterId::new(cluster.to_owned())?, LogName::new(file.log.clone())?);
    if (&checkpoint.cluster, &checkpoint.log, checkpoint.partition) != (&cluster, &log, file.partition) {
        bail!("the server's checkpoint is for another partition");
    }
    certificate.verify_quorum(signers, CHECKPOINT_THRESHOLD).context("checkpoint certificate")?;
    Ok(())
}

/// Checks that `file`'s statement is about the certified `checkpoint` ([`check_certificate`]):
/// it extends the `trusted` one (with the server's `consistency` proof when it grew), and the
/// statement is about it (for an append batch, starting at the trusted one).
pub fn check_statement(
    file: &ProofFile,
    checkpoint: &Checkpoint,
    trusted: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
) -> anyhow::Result<()> {
    if let Some(old) = trusted {
        check_extends(old, checkpoint, consistency).context("the certified checkpoint")?;
    }
    file.proof.check_certified(checkpoint, trusted)?;
    Ok(())
}

/// What a verified proof claims, as JSON.
pub fn claim_json(statement: &Statement) -> Value {
    match statement {
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
    }
}
