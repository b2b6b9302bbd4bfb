//! The engine's messages on the wire: postcard over plain fields. Decoding checks sizes only;
//! signatures are checked by the engine (through Malachite's `VerifySignature`).

use malachitebft_core_consensus::SignedConsensusMsg;
use malachitebft_core_types::{NilOrVal, Round, SignedMessage};
use pyralog_crypto::{Digest, PublicKey};
use serde::{Deserialize, Serialize};

use super::context::{
    Address, EngineVote, EngineVoteKind, Height, Payload, PayloadId, Proposal, PyralogContext, Sig,
};

/// The largest message the engine decodes (a proposal carries its whole payload).
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

#[derive(Serialize, Deserialize)]
enum Wire {
    Vote {
        height: u64,
        round: u32,
        precommit: bool,
        value: Option<[u8; 32]>,
        voter: [u8; 32],
        signature: Vec<u8>,
    },
    Proposal {
        height: u64,
        round: u32,
        pol_round: Option<u32>,
        txs: Vec<Vec<u8>>,
        proposer: [u8; 32],
        signature: Vec<u8>,
    },
}

/// Why bytes are not an engine message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Over [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not our encoding.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes a signed vote or proposal.
pub fn encode(message: &SignedConsensusMsg<PyralogContext>) -> Vec<u8> {
    let wire = match message {
        SignedConsensusMsg::Vote(v) => Wire::Vote {
            height: v.height.0,
            round: v.round.as_u32().unwrap_or(u32::MAX),
            precommit: v.kind == EngineVoteKind::Precommit,
            value: match &v.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(id) => Some(id.0.0),
            },
            voter: *v.voter.0.as_bytes(),
            signature: v.signature.0.to_vec(),
        },
        SignedConsensusMsg::Proposal(p) => Wire::Proposal {
            height: p.height.0,
            round: p.round.as_u32().unwrap_or(u32::MAX),
            pol_round: p.pol_round.as_u32(),
            txs: p.value.0.clone(),
            proposer: *p.proposer.0.as_bytes(),
            signature: p.signature.0.to_vec(),
        },
    };
    postcard::to_allocvec(&wire).expect("plain fields serialize")
}

/// Decodes a signed vote or proposal (signature not yet checked).
pub fn decode(bytes: &[u8]) -> Result<SignedConsensusMsg<PyralogContext>, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let wire: Wire = postcard::from_bytes(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    let key =
        |bytes: [u8; 32]| PublicKey::from_bytes(&bytes).map_err(|e| WireError::Malformed(e.to_string()));
    let sig = |bytes: Vec<u8>| {
        let bytes: [u8; 64] =
            bytes.try_into().map_err(|_| WireError::Malformed("a signature has 64 bytes".into()))?;
        Ok::<_, WireError>(Sig(bytes))
    };
    Ok(match wire {
        Wire::Vote { height, round, precommit, value, voter, signature } => {
            let vote = EngineVote {
                height: Height(height),
                round: Round::new(round),
                kind: if precommit { EngineVoteKind::Precommit } else { EngineVoteKind::Prevote },
                value: value.map_or(NilOrVal::Nil, |id| NilOrVal::Val(PayloadId(Digest(id)))),
                voter: Address(key(voter)?),
            };
            SignedConsensusMsg::Vote(SignedMessage::new(vote, sig(signature)?))
        }
        Wire::Proposal { height, round, pol_round, txs, proposer, signature } => {
            let proposal = Proposal {
                height: Height(height),
                round: Round::new(round),
                value: Payload(txs),
                pol_round: pol_round.map_or(Round::Nil, Round::new),
                proposer: Address(key(proposer)?),
            };
            SignedConsensusMsg::Proposal(SignedMessage::new(proposal, sig(signature)?))
        }
    })
}
