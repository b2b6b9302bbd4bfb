//! `pyralog zk ...`: the Groth16 membership keys (`setup`) and client-side membership proofs
//! (`prove-membership`), which keep the record off every node but the one serving its path.
//!
//! **Trusted setup.** `setup` makes circuit-specific keys alone, with this machine's randomness:
//! whoever ran it (or read its memory) could forge membership proofs. Verifiers must trust that
//! party. A multi-party ceremony (Powers of Tau, then a phase 2 for this circuit, as Zcash and
//! Semaphore ran) would replace it without changing anything else: its output is the same pair.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use pyralog_cluster::storage::zk::ZK_TREE_DEPTH;
use pyralog_zk::groth16::snarkjs::{SnarkjsProof, SnarkjsVerifyingKey, public_signals};
use pyralog_zk::groth16::{self, MembershipKeys, MembershipWitness};
use pyralog_zk::poseidon::{PoseidonHasher, RecordFields};
use pyralog_zk::proof::{Statement, ZkProof, membership_statement};
use pyralog_zk::tree::{AuthPath, DigestCodec};
use serde::Deserialize;
use serde_json::json;

use pyralog_light::wire::{certificate, decode_hex, unhex};
use pyralog_light::zk::{PROVING_KEY_FILE, ProofFile, VERIFYING_KEY_FILE, load_verifying_key};

use crate::cli::client::call;

/// `pyralog zk ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ZkCommand {
    /// Make the Groth16 membership keys for depth-32 trees (single party: see the docs).
    Setup(SetupArgs),
    /// Prove, on this machine, that a record you hold is in a log's certified Poseidon tree.
    ProveMembership(ProveArgs),
    /// Write a membership proof file and the verifying key in snarkjs's JSON (standard Groth16
    /// on BN254): `snarkjs groth16 verify verification_key.json public.json proof.json` checks
    /// the proof; it says nothing of the checkpoint (compare the root with a certified one).
    ExportSnarkjs(ExportArgs),
}

/// `pyralog zk export-snarkjs`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// A membership proof file (`pyralog zk prove-membership`, `zk_proveMembership`).
    #[arg(long)]
    proof: PathBuf,
    /// The key directory from `pyralog zk setup` (its verifying key).
    #[arg(long)]
    keys: PathBuf,
    /// Directory to write `verification_key.json`, `public.json` and `proof.json` to.
    #[arg(long)]
    out: PathBuf,
}

/// `pyralog zk setup`.
#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    /// Directory to write `membership.pk` and `membership.vk` to.
    #[arg(long)]
    out: PathBuf,
}

/// `pyralog zk prove-membership`.
#[derive(Debug, Args)]
pub(crate) struct ProveArgs {
    /// A node's JSON-RPC URL (serves the certified checkpoint and the record's path: that node
    /// learns the offset).
    #[arg(long)]
    rpc: String,
    /// The log.
    #[arg(long)]
    log: String,
    /// The partition.
    #[arg(long)]
    partition: u32,
    /// JSON `{"offset", "key", "value", "blinding"}` (bytes as 0x-hex; key and blinding may be
    /// null): the record you hold.
    #[arg(long)]
    record_file: PathBuf,
    /// The key directory from `pyralog zk setup`.
    #[arg(long)]
    keys: PathBuf,
    /// The verifier's nonce (0x-hex, 32 bytes, a canonical BN254 scalar).
    #[arg(long)]
    nonce: String,
    /// Disclose the record's key (as a field element) in the statement.
    #[arg(long)]
    disclose_key: bool,
    /// Where to write the proof file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The record a prover holds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    offset: u64,
    key: Option<String>,
    value: String,
    blinding: Option<String>,
}

/// Runs `pyralog zk ...`.
pub(crate) fn run(command: ZkCommand) -> anyhow::Result<()> {
    match command {
        ZkCommand::Setup(args) => setup(&args),
        ZkCommand::ExportSnarkjs(args) => export_snarkjs(&args),
        ZkCommand::ProveMembership(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let answer = runtime.block_on(prove_membership(&args))?;
            let text = serde_json::to_string_pretty(&answer)?;
            match &args.out {
                Some(path) => {
                    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
                }
                None => {
                    println!("{text}");
                    Ok(())
                }
            }
        }
    }
}

fn setup(args: &SetupArgs) -> anyhow::Result<()> {
    let keys = groth16::setup(ZK_TREE_DEPTH)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let proving = groth16::proving_key_to_bytes(&keys.proving);
    let verifying = groth16::verifying_key_to_bytes(&keys.verifying);
    std::fs::write(args.out.join(PROVING_KEY_FILE), &proving)?;
    std::fs::write(args.out.join(VERIFYING_KEY_FILE), &verifying)?;
    eprintln!(
        "warning: these keys come from a single-party setup on this machine; whoever ran it can forge \
         membership proofs, so verifiers must trust that party (see `pyralog zk --help`)"
    );
    println!(
        "{}",
        json!({ "depth": ZK_TREE_DEPTH, "provingKeyBytes": proving.len(), "verifyingKeyBytes": verifying.len(), "out": args.out })
    );
    Ok(())
}

/// Writes the proof file's membership proof, its public inputs and the verifying key in
/// snarkjs's JSON.
fn export_snarkjs(args: &ExportArgs) -> anyhow::Result<()> {
    let text = std::fs::read(&args.proof).with_context(|| format!("cannot read {}", args.proof.display()))?;
    let file: ProofFile = serde_json::from_slice(&text).context("proof file")?;
    let Statement::Membership(statement) = &file.proof.statement else {
        bail!("only membership proofs are Groth16 (an append proof is a STARK)");
    };
    let proof = groth16::proof_from_bytes(&file.proof.proof)?;
    let key = load_verifying_key(&args.keys)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let files = [
        ("verification_key.json", serde_json::to_value(SnarkjsVerifyingKey::from(&key))?),
        ("public.json", serde_json::to_value(public_signals(statement))?),
        ("proof.json", serde_json::to_value(SnarkjsProof::from(&proof))?),
    ];
    for (name, value) in &files {
        let path = args.out.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(value)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    println!("{}", json!({ "out": args.out, "files": names, "publicSignals": files[1].1 }));
    Ok(())
}

/// The membership keys in `dir`: the proving key checked against its digest, the verifying key
/// with checked deserialization, and the two required to come from one setup.
pub(crate) fn load_keys(dir: &Path) -> anyhow::Result<MembershipKeys> {
    let path = dir.join(PROVING_KEY_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let proving = groth16::proving_key_from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
    let verifying = load_verifying_key(dir)?;
    MembershipKeys::from_parts(ZK_TREE_DEPTH, proving, verifying)
        .with_context(|| format!("{}", dir.display()))
}

async fn prove_membership(args: &ProveArgs) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read(&args.record_file)
        .with_context(|| format!("cannot read {}", args.record_file.display()))?;
    let held: RecordFile = serde_json::from_slice(&text).context("record file")?;
    let bytes = |field: &str, text: &str| decode_hex(field, text).map_err(anyhow::Error::msg);
    let key = held.key.as_deref().map(|k| bytes("key", k)).transpose()?;
    let value = bytes("value", &held.value)?;
    let blinding: Option<[u8; 32]> = match &held.blinding {
        Some(text) => {
            Some(bytes("blinding", text)?.try_into().map_err(|_| anyhow::anyhow!("blinding: not 32 bytes"))?)
        }
        None => None,
    };
    let nonce: [u8; 32] =
        bytes("nonce", &args.nonce)?.try_into().map_err(|_| anyhow::anyhow!("nonce: not 32 bytes"))?;
    let nonce = PoseidonHasher::from_bytes(&nonce).context("nonce: not a canonical field element")?;
    let fields = RecordFields::of_record(key.as_deref(), &value, blinding.as_ref());

    let answer =
        call(&args.rpc, "log_getCheckpoint", json!({ "log": args.log, "partition": args.partition })).await?;
    if answer.is_null() {
        bail!("no certified checkpoint of {}/{} yet", args.log, args.partition);
    }
    let checkpoint = certificate(&answer)?.message;
    if held.offset >= checkpoint.size {
        bail!("offset {} is not certified yet (checkpoint size {})", held.offset, checkpoint.size);
    }
    let statement = membership_statement(&checkpoint, args.disclose_key.then_some(fields.key), nonce)
        .context("the log keeps no Poseidon tree (create it with zk [\"groth16\"])")?;
    let params = json!({ "log": args.log, "partition": args.partition, "offset": held.offset, "size": checkpoint.size });
    let served = call(&args.rpc, "log_getZkPath", params).await?;
    let siblings = served["siblings"]
        .as_array()
        .context("siblings")?
        .iter()
        .map(|s| {
            let bytes: [u8; 32] =
                unhex(s, "sibling")?.try_into().map_err(|_| anyhow::anyhow!("sibling: not 32 bytes"))?;
            PoseidonHasher::from_bytes(&bytes).context("sibling: not a canonical field element")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let path = AuthPath { index: held.offset, siblings };
    // The served path must lead from *our* record to the certified root; otherwise the record
    // file is wrong or the node lied, and a proof would be refused anyway.
    if path.siblings.len() != ZK_TREE_DEPTH || path.root::<PoseidonHasher>(&fields.leaf()) != statement.root {
        bail!("the record at offset {} is not this record in the certified tree", held.offset);
    }
    let keys = load_keys(&args.keys)?;
    let witness = MembershipWitness::of_record(&fields, path);
    let proof =
        tokio::task::spawn_blocking(move || ZkProof::prove_membership(&keys, statement, &witness)).await??;
    let file = ProofFile {
        cluster: checkpoint.cluster.to_string(),
        log: args.log.clone(),
        partition: args.partition,
        proof,
    };
    Ok(serde_json::to_value(file)?)
}
