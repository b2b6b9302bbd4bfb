//! The engine's write-ahead-log entries: what Malachite asks to persist (messages that moved it,
//! its own votes and proposals, timeouts, the values it proposed), encoded with the height they
//! belong to so the driver can prune committed heights.

use malachitebft_core_consensus::{ProposedValue, SignedConsensusMsg, WalEntry};
use malachitebft_core_types::{Round, Timeout, Validity};
use pyralog_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use super::context::{Address, Height, Payload, PyralogContext};
use super::wire;

/// One entry, decoded.
#[derive(Debug, Clone)]
pub(crate) enum WalRecord {
    /// A vote or proposal (own or received), as on the wire.
    Message(SignedConsensusMsg<PyralogContext>),
    /// A timeout that fired.
    Timeout(Timeout),
    /// A value this engine proposed or accepted.
    Value(ProposedValue<PyralogContext>),
}

#[derive(Serialize, Deserialize)]
enum Stored {
    Message(Vec<u8>),
    Timeout {
        round: u32,
        step: u8,
    },
    Value {
        height: u64,
        round: u32,
        valid_round: Option<u32>,
        proposer: [u8; 32],
        txs: Vec<Vec<u8>>,
        valid: bool,
    },
}

/// The height of `entry` and its encoding.
pub(crate) fn encode(height: u64, entry: &WalEntry<PyralogContext>) -> (u64, Vec<u8>) {
    let stored = match entry {
        WalEntry::ConsensusMsg(message) => Stored::Message(wire::encode(message)),
        WalEntry::Timeout(timeout) => {
            Stored::Timeout { round: timeout.round.as_u32().unwrap_or(0), step: super::step_of(timeout.kind) }
        }
        WalEntry::ProposedValue(value) => Stored::Value {
            height: value.height.0,
            round: value.round.as_u32().unwrap_or(0),
            valid_round: value.valid_round.as_u32(),
            proposer: *value.proposer.0.as_bytes(),
            txs: value.value.0.clone(),
            valid: value.validity == Validity::Valid,
        },
    };
    (height, postcard::to_allocvec(&(height, stored)).expect("entries serialize"))
}

/// Decodes an entry written by [`encode`]; says why bytes this code did not write do not decode.
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, WalRecord), String> {
    let (height, stored): (u64, Stored) =
        postcard::from_bytes(bytes).map_err(|e| format!("not a WAL entry: {e}"))?;
    let record = match stored {
        Stored::Message(bytes) => {
            WalRecord::Message(wire::decode(&bytes).map_err(|e| format!("a stored message: {e}"))?)
        }
        Stored::Timeout { round, step } => {
            WalRecord::Timeout(Timeout::new(Round::new(round), super::kind_of(step)))
        }
        Stored::Value { height, round, valid_round, proposer, txs, valid } => {
            let proposer =
                PublicKey::from_bytes(&proposer).map_err(|e| format!("a stored value's proposer: {e}"))?;
            WalRecord::Value(ProposedValue {
                height: Height(height),
                round: Round::new(round),
                valid_round: valid_round.map_or(Round::Nil, Round::new),
                proposer: Address(proposer),
                value: Payload(txs),
                validity: if valid { Validity::Valid } else { Validity::Invalid },
            })
        }
    };
    Ok((height, record))
}
