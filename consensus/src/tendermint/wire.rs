//! The engine's messages on the wire: postcard over plain fields. Decoding checks sizes only;
//! signatures are checked by the engine (through Malachite's `VerifySignature`).

use malachitebft_core_consensus::SignedConsensusMsg;
use malachitebft_core_types::{
    NilOrVal, PolkaCertificate, PolkaSignature, Round, RoundCertificate, RoundCertificateType,
    RoundSignature, SignedMessage, VoteType,
};
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
    /// Prevotes of a quorum for one value in one round (sent with re-proposals).
    Polka { height: u64, round: u32, value: [u8; 32], signatures: Vec<([u8; 32], Vec<u8>)> },
    /// Votes that justify moving to a round: f+1 of any kind (skip) or a quorum of precommits.
    RoundCert { height: u64, round: u32, precommits: bool, votes: Vec<RoundVote> },
}

#[derive(Serialize, Deserialize)]
struct RoundVote {
    precommit: bool,
    value: Option<[u8; 32]>,
    voter: [u8; 32],
    signature: Vec<u8>,
}

/// Everything the engine sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMessage {
    /// A signed vote or proposal.
    Consensus(SignedConsensusMsg<PyralogContext>),
    /// A polka certificate.
    Polka(PolkaCertificate<PyralogContext>),
    /// A round certificate.
    Round(RoundCertificate<PyralogContext>),
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
    encode_message(&EngineMessage::Consensus(message.clone()))
}

fn value_bytes(value: &NilOrVal<PayloadId>) -> Option<[u8; 32]> {
    match value {
        NilOrVal::Nil => None,
        NilOrVal::Val(id) => Some(id.0.0),
    }
}

/// Encodes any engine message.
pub fn encode_message(message: &EngineMessage) -> Vec<u8> {
    let message = match message {
        EngineMessage::Consensus(message) => message,
        EngineMessage::Polka(c) => {
            let signatures = c
                .polka_signatures
                .iter()
                .map(|s| (*s.address.0.as_bytes(), s.signature.0.to_vec()))
                .collect();
            let wire = Wire::Polka {
                height: c.height.0,
                round: c.round.as_u32().unwrap_or(u32::MAX),
                value: c.value_id.0.0,
                signatures,
            };
            return postcard::to_allocvec(&wire).expect("plain fields serialize");
        }
        EngineMessage::Round(c) => {
            let votes = c
                .round_signatures
                .iter()
                .map(|s| RoundVote {
                    precommit: s.vote_type == VoteType::Precommit,
                    value: value_bytes(&s.value_id),
                    voter: *s.address.0.as_bytes(),
                    signature: s.signature.0.to_vec(),
                })
                .collect();
            let wire = Wire::RoundCert {
                height: c.height.0,
                round: c.round.as_u32().unwrap_or(u32::MAX),
                precommits: c.cert_type == RoundCertificateType::Precommit,
                votes,
            };
            return postcard::to_allocvec(&wire).expect("plain fields serialize");
        }
    };
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

/// Decodes a signed vote or proposal (signature not yet checked); certificates are refused.
pub fn decode(bytes: &[u8]) -> Result<SignedConsensusMsg<PyralogContext>, WireError> {
    match decode_message(bytes)? {
        EngineMessage::Consensus(message) => Ok(message),
        _ => Err(WireError::Malformed("a certificate, not a vote or proposal".into())),
    }
}

/// Decodes any engine message (signatures not yet checked).
pub fn decode_message(bytes: &[u8]) -> Result<EngineMessage, WireError> {
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
    let value = |v: Option<[u8; 32]>| v.map_or(NilOrVal::Nil, |id| NilOrVal::Val(PayloadId(Digest(id))));
    Ok(EngineMessage::Consensus(match wire {
        Wire::Vote { height, round, precommit, value: value_opt, voter, signature } => {
            let vote = EngineVote {
                height: Height(height),
                round: Round::new(round),
                kind: if precommit { EngineVoteKind::Precommit } else { EngineVoteKind::Prevote },
                value: value(value_opt),
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
        Wire::Polka { height, round, value: id, signatures } => {
            let polka_signatures = signatures
                .into_iter()
                .map(|(voter, signature)| Ok(PolkaSignature::new(Address(key(voter)?), sig(signature)?)))
                .collect::<Result<_, WireError>>()?;
            return Ok(EngineMessage::Polka(PolkaCertificate {
                height: Height(height),
                round: Round::new(round),
                value_id: PayloadId(Digest(id)),
                polka_signatures,
            }));
        }
        Wire::RoundCert { height, round, precommits, votes } => {
            let round_signatures = votes
                .into_iter()
                .map(|v| {
                    let kind = if v.precommit { VoteType::Precommit } else { VoteType::Prevote };
                    Ok(RoundSignature::new(kind, value(v.value), Address(key(v.voter)?), sig(v.signature)?))
                })
                .collect::<Result<_, WireError>>()?;
            let cert_type =
                if precommits { RoundCertificateType::Precommit } else { RoundCertificateType::Skip };
            return Ok(EngineMessage::Round(RoundCertificate {
                height: Height(height),
                round: Round::new(round),
                cert_type,
                round_signatures,
            }));
        }
    }))
}
