//! A served record checked against its proven bytes. The inclusion, certificate and consistency
//! checks are `pyralog_crypto::light::verify_record` (to a certified checkpoint) and
//! [`crate::chain::verify_finality`] (to a finalized header); this module decodes the proven
//! bytes and refuses a server whose JSON says anything else about the record.

use anyhow::{Context, bail};
use pyralog_crypto::Checkpoint;
use pyralog_crypto::light::{RecordEvidence, RecordQuery, verify_record};
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof};
use pyralog_crypto::quorum::MemberSet;
use pyralog_record::StoredRecord;
use serde_json::{Value, json};

use crate::wire::{record_json, to_hex};

/// Verifies a served record up to a certified checkpoint: its inclusion in the certified tree,
/// the certificate under the trusted `signers`, consistency with the `trusted` checkpoint (with
/// the server's `consistency` proof when the tree grew), and the served JSON `record` against
/// the proven bytes. Returns the certified checkpoint and the proven record.
pub fn verify_served_record(
    query: &RecordQuery,
    signers: &MemberSet,
    evidence: &RecordEvidence,
    served: &Value,
    trusted: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
) -> anyhow::Result<(Checkpoint, StoredRecord)> {
    let checkpoint = verify_record(query, signers, evidence, trusted, consistency)?;
    let proven = proven_record(query.offset, &evidence.record, served)?;
    Ok((checkpoint, proven))
}

/// The record at `offset` decoded from its proven bytes, checked against the JSON the server
/// also sent (which must say the same).
pub fn proven_record(offset: u64, bytes: &[u8], served: &Value) -> anyhow::Result<StoredRecord> {
    let proven = StoredRecord::decode(offset, bytes).context("proven record bytes")?;
    check_json_matches(served, &proven)?;
    Ok(proven)
}

/// The JSON record must say what the proven bytes say, field by field (offset, epoch, key,
/// value, headers, timestamp, Scarab id, producer): a server that rewrites any of them is caught,
/// so nothing the client or its caller reads next to `"verified": true` is unproven.
fn check_json_matches(served: &Value, proven: &StoredRecord) -> anyhow::Result<()> {
    let expected = record_json(proven);
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

/// What the client prints about a verified record: every field from the proven bytes.
pub fn proven_fields(proven: &StoredRecord) -> Value {
    json!({
        "epoch": proven.epoch,
        "key": proven.record.key.as_deref().map(to_hex),
        "value": to_hex(&proven.record.value),
        "record": record_json(proven),
    })
}
