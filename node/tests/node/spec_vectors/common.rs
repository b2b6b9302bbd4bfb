//! What the vector builder and the independent checker share: the imports, the domain table,
//! the fixed inputs and small JSON helpers.

pub(super) use std::collections::BTreeMap;
pub(super) use std::path::PathBuf;

pub(super) use pyralog_chain::block::{ConsensusInfo, Header, transactions_root, validators_hash};
pub(super) use pyralog_chain::proof::verify_state_proof;
pub(super) use pyralog_chain::state::StateStore;
pub(super) use pyralog_chain::values::{
    Account, Anchor, ClusterRecord, account_key, anchor_key, cluster_key,
};
pub(super) use pyralog_cluster::model::{Header as RecordHeader, ProducerSeq, Record, StoredRecord};
pub(super) use pyralog_consensus::validators::QUORUM;
pub(super) use pyralog_consensus::vote::{DuplicateVote, Evidence, payload_id};
pub(super) use pyralog_consensus::{
    CommitCertificate, Engine, FinalityProof, Validator, ValidatorSet, Vote, VoteKind,
};
pub(super) use pyralog_crypto::light::RecordQuery;
pub(super) use pyralog_crypto::merkle::{Blake3Merkle, MemoryNodeStore, MerkleHasher, MerkleTree};
pub(super) use pyralog_crypto::quorum::{Signable, SignatureShare};
pub(super) use pyralog_crypto::{
    Checkpoint, ClusterId, Digest, Domain, Keypair, LogName, MemberSet, PublicKey, QuorumCertificate,
    Signature, Threshold, ZkTree,
};
pub(super) use pyralog_light::chain::{
    FinalityEvidence, ProvenValue, TrustedHead, verify_adjacent, verify_finality, verify_skipping,
};
pub(super) use serde_json::{Value, json};

/// The context strings exactly as the specification writes them (§3.1).
pub(super) const DOMAINS: [(&str, &str, Domain); 10] = [
    ("merkle", "pyralog 2026-11-23 merkle tree v1", Domain::Merkle),
    ("checkpoint", "pyralog 2026-11-23 checkpoint id v1", Domain::Checkpoint),
    ("partition_key", "pyralog 2026-11-23 partition key v1", Domain::PartitionKey),
    ("consensus_value", "pyralog 2026-11-23 consensus value v1", Domain::ConsensusValue),
    ("chain_state", "pyralog 2026-11-23 chain state v1", Domain::ChainState),
    ("chain_tx", "pyralog 2026-11-23 chain transaction v1", Domain::ChainTx),
    ("contract_code", "pyralog 2026-12-06 contract code v1", Domain::ContractCode),
    ("contract_id", "pyralog 2026-12-06 contract id v1", Domain::ContractId),
    ("client_request", "pyralog 2026-12-06 client request v1", Domain::ClientRequest),
    ("pow_seal", "pyralog 2026-12-06 pow seal v1", Domain::PowSeal),
];
pub(super) const MERKLE: &str = DOMAINS[0].1;
pub(super) const CHECKPOINT: &str = DOMAINS[1].1;
pub(super) const CONSENSUS_VALUE: &str = DOMAINS[3].1;
pub(super) const CHAIN_STATE: &str = DOMAINS[4].1;
pub(super) const CONTRACT_CODE: &str = DOMAINS[6].1;
pub(super) const CONTRACT_ID: &str = DOMAINS[7].1;
pub(super) const POW_SEAL: &str = DOMAINS[9].1;

/// The signing contexts as the specification writes them (§3.2), `\0` being one zero byte.
pub(super) const CHECKPOINT_CONTEXT: &[u8] = b"pyralog checkpoint signature v1\0";
pub(super) const VOTE_CONTEXT: &[u8] = b"pyralog/consensus/vote/v1\0";

pub(super) const CHAIN: &str = "pyralog-spec";
/// 2026-01-01T00:00:00Z in Unix ms (the Scarab epoch).
pub(super) const BASE_MS: u64 = 1_767_225_600_000;

pub(super) fn hx(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub(super) fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap_or_else(|| panic!("not a hex string: {value}"))).expect("hex")
}

pub(super) fn arr<const N: usize>(value: &Value) -> [u8; N] {
    unhex(value).try_into().unwrap_or_else(|_| panic!("not {N} bytes: {value}"))
}

pub(super) fn num(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a number: {value}"))
}

pub(super) fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/verifier-vectors.json")
}

pub(super) fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/verifier-spec.md")
}
