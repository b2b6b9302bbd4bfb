//! Tendermint's Byzantine behaviours for the simulator: twin proposals and votes for them,
//! validly signed, and broken signatures.

use malachitebft_core_consensus::SignedConsensusMsg;
use malachitebft_core_types::{NilOrVal, Round, SignedMessage};
use pyralog_crypto::Keypair;
use pyralog_crypto::quorum::Signable;

use super::context::{Payload, PayloadId, Sig};
use super::wire;
use crate::sim::Adversary;

/// Tendermint's [`Adversary`] on the chain `chain_id`.
#[derive(Debug, Clone)]
pub struct TendermintAdversary {
    chain_id: String,
}

impl TendermintAdversary {
    /// The adversary for messages of `chain_id`.
    pub fn new(chain_id: impl Into<String>) -> Self {
        TendermintAdversary { chain_id: chain_id.into() }
    }
}

/// The payload an equivocating validator shows at a height and round (the same one every time,
/// so its votes can back it).
fn twin_payload(height: u64, round: Round) -> Payload {
    Payload(vec![format!("conflicting h{height} r{}", round.as_i64()).into_bytes()])
}

impl Adversary for TendermintAdversary {
    /// The twin proposal at the same height and round, or a vote for that twin (nil when the
    /// original already was one).
    fn conflicting(&self, key: &Keypair, bytes: &[u8]) -> Option<Vec<u8>> {
        let message = match wire::decode(bytes).ok()? {
            SignedConsensusMsg::Vote(signed) => {
                let mut vote = signed.message;
                let twin = NilOrVal::Val(PayloadId(twin_payload(vote.height.0, vote.round).digest()));
                vote.value = if vote.value == twin { NilOrVal::Nil } else { twin };
                let signature = Sig::from(key.sign(&vote.signed_message(&self.chain_id).signing_bytes()));
                SignedConsensusMsg::Vote(SignedMessage::new(vote, signature))
            }
            SignedConsensusMsg::Proposal(signed) => {
                let mut proposal = signed.message;
                proposal.value = twin_payload(proposal.height.0, proposal.round);
                let signing = proposal.header(&self.chain_id).signing_bytes();
                let signature = Sig::from(key.sign(&signing));
                SignedConsensusMsg::Proposal(SignedMessage::new(proposal, signature))
            }
        };
        Some(wire::encode(&message))
    }

    fn is_proposal(&self, bytes: &[u8]) -> bool {
        matches!(wire::decode(bytes), Ok(SignedConsensusMsg::Proposal(_)))
    }

    fn is_commit(&self, bytes: &[u8]) -> bool {
        matches!(wire::decode(bytes), Ok(SignedConsensusMsg::Vote(v)) if v.message.kind == super::context::EngineVoteKind::Precommit)
    }

    /// Every encoding ends with the signature: flipping its last byte breaks it.
    fn break_signature(&self, bytes: &[u8]) -> Vec<u8> {
        let mut broken = bytes.to_vec();
        if let Some(last) = broken.last_mut() {
            *last ^= 0x01;
        }
        broken
    }
}
