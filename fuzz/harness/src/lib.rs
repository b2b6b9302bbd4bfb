//! One check per decoder of untrusted bytes, shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and the corpus replay that `make test` runs on the stable toolchain: decoding any bytes
//! returns a value or a typed error and never panics, and what decodes survives a round trip
//! (canonical encodings re-encode to the same bytes; postcard values, which admit non-minimal
//! varints, decode again to the same value).
//!
//! Each target takes arbitrary bytes. The first bytes may select a variant where a decoder takes
//! more than the bytes (the record's offset).

mod clients;
mod peers;
mod structured;

pub use clients::{arrow_ipc, config_toml, kafka_batch, kafka_request, rpc_params};
pub use peers::{
    abci_frame, cluster_frame, consensus_wal, light_answer, p2p_frame, pbft_wire, tendermint_wire,
    tunnel_datagram, zk_proof,
};
use pyralog_chain::block::{ConsensusInfo, Header};
use pyralog_chain::genesis::GenesisFile;
use pyralog_chain::proof::{StateProof, verify_state_proof};
use pyralog_chain::tx::SignedTx;
use pyralog_consensus_types::FinalityProof;
use pyralog_consensus_types::vote::Evidence;
use pyralog_crypto::Checkpoint;
use pyralog_record::StoredRecord;
pub use structured::structured;

/// A fuzz target: a name and its check.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name of its corpus folder (`fuzz/corpus/<name>/`).
pub const TARGETS: &[Target] = &[
    ("chain_tx", chain_tx),
    ("block_header", block_header),
    ("consensus_info", consensus_info),
    ("finality_proof", finality_proof),
    ("evidence", evidence),
    ("state_proof", state_proof),
    ("checkpoint", checkpoint),
    ("record", record),
    ("genesis_json", genesis_json),
    ("tendermint_wire", tendermint_wire),
    ("pbft_wire", pbft_wire),
    ("consensus_wal", consensus_wal),
    ("cluster_frame", cluster_frame),
    ("p2p_frame", p2p_frame),
    ("zk_proof", zk_proof),
    ("light_answer", light_answer),
    ("kafka_request", kafka_request),
    ("kafka_batch", kafka_batch),
    ("config_toml", config_toml),
    ("tunnel_datagram", tunnel_datagram),
    ("arrow_ipc", arrow_ipc),
    ("rpc_params", rpc_params),
    ("structured", structured),
    ("abci_frame", abci_frame),
];

/// A chain transaction from a client or the mempool gossip: size, decoding, chain and signature
/// checks; a decoded one re-encodes to bytes that decode to the same transaction with the same id.
pub fn chain_tx(data: &[u8]) {
    if let Ok(tx) = SignedTx::decode_and_verify(data, "fuzz-chain") {
        let again = SignedTx::decode_and_verify(&tx.encode(), "fuzz-chain")
            .expect("a re-encoded transaction decodes");
        assert_eq!(again, tx);
        assert_eq!(again.id(), tx.id());
    }
    let _ = postcard::from_bytes::<SignedTx>(data);
}

/// A block header from a proposer or a block-sync peer.
pub fn block_header(data: &[u8]) {
    if let Ok(header) = Header::decode(data) {
        let again = Header::decode(&header.encode()).expect("a re-encoded header decodes");
        assert_eq!(again, header);
        assert_eq!(again.block_id(), header.block_id());
    }
}

/// The consensus info a payload carries (last commit, evidence).
pub fn consensus_info(data: &[u8]) {
    if let Ok(info) = ConsensusInfo::decode(data) {
        let again = ConsensusInfo::decode(&info.encode()).expect("re-encoded consensus info decodes");
        assert_eq!(again, info);
        for piece in &info.evidence {
            let _ = piece.verify();
        }
        if let Some(proof) = &info.last_commit {
            let _ = proof.signers();
        }
    }
}

/// A finality proof a (possibly malicious) server sends a light client.
pub fn finality_proof(data: &[u8]) {
    if let Ok(proof) = postcard::from_bytes::<FinalityProof>(data) {
        let bytes = postcard::to_allocvec(&proof).expect("proofs encode");
        assert_eq!(postcard::from_bytes::<FinalityProof>(&bytes).expect("re-encoded"), proof);
        let _ = proof.signers();
    }
}

/// Evidence of equivocation gossiped by a peer.
pub fn evidence(data: &[u8]) {
    if let Ok(piece) = postcard::from_bytes::<Evidence>(data) {
        let _ = piece.verify();
        let bytes = postcard::to_allocvec(&piece).expect("evidence encodes");
        assert_eq!(postcard::from_bytes::<Evidence>(&bytes).expect("re-encoded"), piece);
    }
}

/// A state proof a server sends, verified against a root and key taken from the input.
pub fn state_proof(data: &[u8]) {
    if data.len() < 33 {
        return;
    }
    let (head, rest) = data.split_at(32);
    let root: [u8; 32] = head.try_into().expect("32 bytes");
    let key_len = usize::from(rest[0] % 16).min(rest.len() - 1);
    let (key, proof_bytes) = rest[1..].split_at(key_len);
    if let Ok(proof) = postcard::from_bytes::<StateProof>(proof_bytes) {
        let _ = verify_state_proof(&root, key, None, &proof);
        let _ = verify_state_proof(&root, key, Some(b"value"), &proof);
    }
}

/// A checkpoint's canonical encoding (signed by replicas, anchored on the chain): byte-exact
/// round trip.
pub fn checkpoint(data: &[u8]) {
    if let Ok(checkpoint) = Checkpoint::decode(data) {
        assert_eq!(checkpoint.encode(), data, "the checkpoint encoding is canonical");
    }
}

/// A record's canonical encoding (what a server proves): byte-exact round trip. The first eight
/// bytes are the offset it is read at.
pub fn record(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (offset, bytes) = data.split_at(8);
    let offset = u64::from_be_bytes(offset.try_into().expect("8 bytes"));
    if let Ok(record) = StoredRecord::decode(offset, bytes) {
        assert_eq!(
            record.encode().expect("a decoded record encodes"),
            bytes,
            "the record encoding is canonical"
        );
    }
}

/// A genesis file (JSON) an operator or light client loads: parsing and every check.
pub fn genesis_json(data: &[u8]) {
    if let Ok(genesis) = serde_json::from_slice::<GenesisFile>(data) {
        let _ = genesis.consensus.check();
        let _ = genesis.validator_set();
        let _ = genesis.staking_params();
        let _ = genesis.app_state();
    }
}
