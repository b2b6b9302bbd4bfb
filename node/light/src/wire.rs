//! The JSON shapes a node serves and a light client reads: bytes as 0x-hex, records, checkpoint
//! certificates, consistency proofs, headers, commit certificates and finality proofs. The RPC
//! server encodes with these functions and the client decodes with their counterparts, so the
//! two cannot drift apart. What the client verifies always travels as the canonical encoding
//! (`encoded`); the readable fields beside it are either ignored or checked against it.

use std::collections::BTreeMap;

use anyhow::Context;
use pyralog_chain::block::Header;
use pyralog_consensus_types::{CommitCertificate, FinalityProof, Validator};
use pyralog_crypto::light::RecordEvidence;
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof};
use pyralog_crypto::quorum::{QuorumCertificate, SignatureShare};
use pyralog_crypto::{Checkpoint, Digest, PublicKey, Signature, ZkTree};
use pyralog_record::StoredRecord;
use serde_json::{Value, json};

/// Bytes as 0x-prefixed hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// The bytes of 0x-prefixed hex `text`; the error names `field`.
pub fn decode_hex(field: &str, text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").ok_or_else(|| format!("{field}: bytes are 0x-prefixed hex"))?;
    hex::decode(digits).map_err(|err| format!("{field}: {err}"))
}

/// The bytes of a JSON 0x-hex string.
pub fn unhex(value: &Value, what: &str) -> anyhow::Result<Vec<u8>> {
    let text = value.as_str().with_context(|| format!("{what}: not a string"))?;
    decode_hex(what, text).map_err(anyhow::Error::msg)
}

/// A 32-byte digest from a JSON 0x-hex string.
pub fn digest(value: &Value, what: &str) -> anyhow::Result<Digest> {
    let bytes: [u8; 32] =
        unhex(value, what)?.try_into().map_err(|_| anyhow::anyhow!("{what}: not 32 bytes"))?;
    Ok(Digest(bytes))
}

/// A JSON number that must be a u64.
pub fn u64_field(value: &Value, what: &str) -> anyhow::Result<u64> {
    value.as_u64().with_context(|| format!("{what}: not a number"))
}

/// A record as JSON (`log_read`, `log_getProof`, subscriptions).
pub fn record_json(stored: &StoredRecord) -> Value {
    let record = &stored.record;
    json!({
        "offset": stored.offset,
        "epoch": stored.epoch,
        "key": record.key.as_deref().map(to_hex),
        "value": to_hex(&record.value),
        "headers": record.headers.iter().map(|h| json!({ "name": h.name, "value": to_hex(&h.value) })).collect::<Vec<_>>(),
        "timestampMs": record.timestamp_ms,
        "scarabId": record.scarab_id.to_string(),
        "producer": record.producer.map(|p| json!({ "id": p.producer, "seq": p.sequence })),
    })
}

/// The record [`record_json`] wrote (for readers of `log_read` that re-encode what they read,
/// such as the chaos harness computing a log's Merkle root; a light client verifies `encoded`
/// bytes instead).
pub fn record(value: &Value) -> anyhow::Result<StoredRecord> {
    let field = |name: &str| value.get(name).with_context(|| format!("record: no {name}"));
    let number = |name: &str| u64_field(field(name)?, name);
    let key = match field("key")? {
        Value::Null => None,
        key => Some(unhex(key, "key")?),
    };
    let headers = field("headers")?
        .as_array()
        .context("headers: not an array")?
        .iter()
        .map(|h| {
            let name = h.get("name").and_then(Value::as_str).context("header name: not a string")?;
            let value = unhex(h.get("value").unwrap_or(&Value::Null), "header value")?;
            Ok(pyralog_record::Header { name: name.to_owned(), value })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scarab_id = field("scarabId")?.as_str().context("scarabId: not a string")?;
    let producer = match field("producer")? {
        Value::Null => None,
        p => Some(pyralog_record::ProducerSeq {
            producer: u64_field(p.get("id").unwrap_or(&Value::Null), "producer.id")?,
            sequence: u64_field(p.get("seq").unwrap_or(&Value::Null), "producer.seq")?,
        }),
    };
    Ok(StoredRecord {
        offset: number("offset")?,
        epoch: number("epoch")?,
        record: pyralog_record::Record {
            key,
            value: unhex(field("value")?, "value")?,
            headers,
            timestamp_ms: number("timestampMs")?,
            scarab_id: scarab_id.parse().context("scarabId: not a u64")?,
            producer,
        },
    })
}

/// A checkpoint certificate as JSON: readable fields, the canonical encoding, the signatures.
pub fn certificate_json(certificate: &QuorumCertificate<Checkpoint>) -> Value {
    let c = &certificate.message;
    json!({
        "checkpoint": {
            "cluster": c.cluster.as_str(), "log": c.log.as_str(), "partition": c.partition, "epoch": c.epoch,
            "size": c.size, "root": to_hex(&c.root.0), "timeMs": c.time_ms,
            "zkRoots": zk_roots_json(&c.zk_roots),
        },
        "encoded": to_hex(&c.encode()),
        "signatures": shares_json(&certificate.signatures),
    })
}

/// Signature shares as JSON: `[{signer, signature}]`.
fn shares_json(shares: &[SignatureShare]) -> Value {
    shares
        .iter()
        .map(|s| json!({ "signer": s.signer.to_string(), "signature": to_hex(&s.signature.to_bytes()) }))
        .collect()
}

/// A checkpoint certificate from its JSON ([`certificate_json`]): the canonical encoding and the
/// signatures; the readable fields are ignored.
pub fn certificate(certificate: &Value) -> anyhow::Result<QuorumCertificate<Checkpoint>> {
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

/// zk roots by tree name (`poseidon`, `rescue`), as 0x-hex.
pub fn zk_roots_json(roots: &BTreeMap<ZkTree, Digest>) -> Value {
    let entries = roots.iter().map(|(tree, root)| {
        let name = serde_json::to_value(tree).expect("a tree name is JSON");
        (name.as_str().expect("tree names are strings").to_owned(), json!(to_hex(&root.0)))
    });
    Value::Object(entries.collect())
}

/// A consistency proof as JSON: `{oldSize, newSize, path}`.
pub fn consistency_json(proof: &ConsistencyProof<Blake3Merkle>) -> Value {
    json!({
        "oldSize": proof.old_size, "newSize": proof.new_size,
        "path": proof.path.iter().map(|d| to_hex(&d.0)).collect::<Vec<_>>(),
    })
}

/// The hashes of a consistency proof's JSON `path`.
pub fn consistency_path(proof: &Value) -> anyhow::Result<Vec<Digest>> {
    let path = proof["path"].as_array().context("consistency path")?;
    path.iter().map(|d| digest(d, "consistency path")).collect()
}

/// A consistency proof from its JSON ([`consistency_json`]).
pub fn consistency(proof: &Value) -> anyhow::Result<ConsistencyProof<Blake3Merkle>> {
    Ok(ConsistencyProof::new(
        u64_field(&proof["oldSize"], "consistency.oldSize")?,
        u64_field(&proof["newSize"], "consistency.newSize")?,
        consistency_path(proof)?,
    ))
}

/// An inclusion proof as JSON: `{index, treeSize, path}`.
pub fn inclusion_json(proof: &InclusionProof<Blake3Merkle>) -> Value {
    json!({
        "index": proof.index, "treeSize": proof.size,
        "path": proof.path.iter().map(|d| to_hex(&d.0)).collect::<Vec<_>>(),
    })
}

/// The evidence in a `log_getProof` answer: the proven record bytes (`encoded`), the inclusion
/// proof and the checkpoint certificate.
pub fn record_evidence(answer: &Value) -> anyhow::Result<RecordEvidence> {
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

/// A header as JSON, with its block id and canonical encoding.
pub fn header_json(header: &Header) -> Value {
    json!({
        "chainId": header.chain_id,
        "height": header.height,
        "timeMs": header.time_ms,
        "parent": to_hex(&header.parent.0),
        "txCount": header.tx_count,
        "txRoot": to_hex(&header.tx_root.0),
        "stateRoot": to_hex(&header.state_root.0),
        "validatorsHash": to_hex(&header.validators_hash.0),
        "nextValidatorsHash": to_hex(&header.next_validators_hash.0),
        "proposer": header.proposer.to_string(),
        "engine": header.engine,
        "blockId": to_hex(&header.block_id().0),
        "encoded": to_hex(&header.encode()),
    })
}

/// A header from its JSON ([`header_json`]): decoded from `encoded`.
pub fn header(header: &Value) -> anyhow::Result<Header> {
    Header::decode(&unhex(&header["encoded"], "header.encoded")?).map_err(anyhow::Error::msg)
}

/// A commit certificate as JSON, with its postcard encoding.
pub fn commit_json(commit: &CommitCertificate) -> Value {
    json!({
        "height": commit.message.height,
        "round": commit.message.round,
        "blockId": commit.message.block.map(|b| to_hex(&b.0)),
        "signatures": shares_json(&commit.signatures),
        "encoded": to_hex(&postcard::to_allocvec(commit).expect("certificates serialize")),
    })
}

/// A finality proof as JSON: its engine and family, who signed it, and its postcard encoding
/// (what a light client verifies).
pub fn finality_json(proof: &FinalityProof) -> Value {
    json!({
        "engine": proof.engine().name(),
        "family": proof.family(),
        "signers": proof.signers().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "encoded": to_hex(&postcard::to_allocvec(proof).expect("proofs serialize")),
    })
}

/// A finality proof from its JSON ([`finality_json`]): decoded from `encoded`.
pub fn finality(finality: &Value) -> anyhow::Result<FinalityProof> {
    postcard::from_bytes(&unhex(&finality["encoded"], "finality.encoded")?)
        .context("undecodable finality proof")
}

/// The validators of a `chain_getValidators` answer (`{validators: [{publicKey, power}]}`).
pub fn validators(answer: &Value) -> anyhow::Result<Vec<Validator>> {
    answer["validators"]
        .as_array()
        .context("validators")?
        .iter()
        .map(|v| {
            let key: PublicKey = v["publicKey"].as_str().context("publicKey")?.parse()?;
            Ok(Validator { key, power: u64_field(&v["power"], "power")? })
        })
        .collect()
}

/// The finality evidence of a `log_getProof {finality: true}` answer (`finality.evidence`,
/// postcard of [`crate::chain::FinalityEvidence`]).
pub fn finality_evidence(answer: &Value) -> anyhow::Result<crate::chain::FinalityEvidence> {
    postcard::from_bytes(&unhex(&answer["finality"]["evidence"], "finality.evidence")?)
        .context("undecodable finality evidence")
}

/// The proven state value of a `contract_getStorage` answer (`stateValue` and `proof`, postcard
/// of the state proof); absent `stateValue` means the key has none.
pub fn proven_state(answer: &Value) -> anyhow::Result<crate::chain::ProvenValue> {
    let value = match &answer["stateValue"] {
        Value::Null => None,
        value => Some(unhex(value, "stateValue")?),
    };
    let proof =
        postcard::from_bytes(&unhex(&answer["proof"], "proof")?).context("undecodable state proof")?;
    Ok(crate::chain::ProvenValue { value, proof })
}

/// The seals of a `chain_getSeals` answer (`{seals: [hex of the 92-byte encoding]}`).
pub fn seals(answer: &Value) -> anyhow::Result<Vec<pyralog_consensus_types::pow::Seal>> {
    answer["seals"]
        .as_array()
        .context("seals")?
        .iter()
        .map(|seal| {
            let bytes = unhex(seal, "seal")?;
            pyralog_consensus_types::pow::Seal::decode(&bytes).context("a seal is 92 bytes")
        })
        .collect()
}
