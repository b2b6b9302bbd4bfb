//! Our types behind Malachite's `Context`: heights, values (block payloads), proposals, votes,
//! validators and the ed25519 signing scheme.
//!
//! Votes are signed over [`crate::vote::Vote`]'s canonical bytes (chain, height, round, kind,
//! block), with no validator address or extension inside, so the precommits of a decision are
//! signatures over one message and become a [`crate::CommitCertificate`] as they are.

use std::fmt;

use malachitebft_core_types as mc;
use malachitebft_core_types::{NilOrVal, Round, VoteType};
use pyralog_crypto::{Digest, Keypair, PublicKey, Signature};

use crate::proposer::ProposerPriorities;
use crate::validators::ValidatorSet;
use crate::vote::{ProposalHeader, Vote, VoteKind};

/// The Malachite context of the Pyralog chain.
#[derive(Debug, Clone)]
pub struct PyralogContext {
    /// The chain every vote and proposal is bound to.
    pub chain_id: String,
}

/// A block height.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0 + n)
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub PublicKey);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Address for Address {}

/// What consensus decides on: a block payload (transactions, in order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Payload(pub Vec<Vec<u8>>);

impl Payload {
    /// The payload's id ([`crate::vote::payload_id`]).
    pub fn digest(&self) -> Digest {
        crate::vote::payload_id(&self.0)
    }
}

/// A payload's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PayloadId(pub Digest);

impl fmt::Display for PayloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Value for Payload {
    type Id = PayloadId;

    fn id(&self) -> PayloadId {
        PayloadId(self.digest())
    }
}

/// A signed proposal's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The proposed payload (proposals carry it whole).
    pub value: Payload,
    /// The round of the proof-of-lock the proposer re-proposes from, or nil.
    pub pol_round: Round,
    /// The proposer.
    pub proposer: Address,
}

impl mc::Proposal<PyralogContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &Payload {
        &self.value
    }
    fn take_value(self) -> Payload {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

impl Proposal {
    /// What the proposer signs (chain, height, round, proof-of-lock round, payload id).
    pub(crate) fn header(&self, chain_id: &str) -> ProposalHeader {
        ProposalHeader {
            chain_id: chain_id.to_owned(),
            height: self.height.0,
            round: self.round.as_i64(),
            pol_round: self.pol_round.as_i64(),
            block: self.value.digest(),
        }
    }
}

/// Proposals travel whole, so there are no parts; the type exists because Malachite asks for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoParts;

impl mc::ProposalPart<PyralogContext> for NoParts {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

/// A vote as Malachite handles it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EngineVote {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: EngineVoteKind,
    /// The payload voted for, or nil.
    pub value: NilOrVal<PayloadId>,
    /// The voter.
    pub voter: Address,
}

/// [`VoteType`] with `Ord` (Malachite's votes must be ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EngineVoteKind {
    /// Prevote.
    Prevote,
    /// Precommit.
    Precommit,
}

impl EngineVote {
    /// The message the voter signs.
    pub fn signed_message(&self, chain_id: &str) -> Vote {
        Vote {
            chain_id: chain_id.to_owned(),
            height: self.height.0,
            round: self.round.as_u32().unwrap_or(u32::MAX),
            kind: match self.kind {
                EngineVoteKind::Prevote => VoteKind::Prevote,
                EngineVoteKind::Precommit => VoteKind::Precommit,
            },
            block: match &self.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(id) => Some(id.0),
            },
        }
    }
}

impl mc::Vote<PyralogContext> for EngineVote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<PayloadId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<PayloadId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        match self.kind {
            EngineVoteKind::Prevote => VoteType::Prevote,
            EngineVoteKind::Precommit => VoteType::Precommit,
        }
    }
    fn validator_address(&self) -> &Address {
        &self.voter
    }
    fn extension(&self) -> Option<&mc::SignedExtension<PyralogContext>> {
        None
    }
    fn take_extension(&mut self) -> Option<mc::SignedExtension<PyralogContext>> {
        None
    }
    fn extend(self, _extension: mc::SignedExtension<PyralogContext>) -> Self {
        self
    }
}

/// A validator as Malachite sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineValidator {
    address: Address,
    power: u64,
}

impl mc::Validator<PyralogContext> for EngineValidator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.address.0
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// A validator set as Malachite sees it (same order as [`ValidatorSet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineValidators {
    set: ValidatorSet,
    validators: Vec<EngineValidator>,
    proposers: ProposerPriorities,
}

impl EngineValidators {
    /// Wraps `set`, whose proposers follow `proposers` (the height's priorities).
    pub fn new(set: ValidatorSet, proposers: ProposerPriorities) -> Self {
        let validators = set
            .validators()
            .iter()
            .map(|v| EngineValidator { address: Address(v.key), power: v.power })
            .collect();
        EngineValidators { set, validators, proposers }
    }

    /// Our validator set.
    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }
}

impl mc::ValidatorSet<PyralogContext> for EngineValidators {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.set.total_power()
    }
    fn get_by_address(&self, address: &Address) -> Option<&EngineValidator> {
        self.validators.iter().find(|v| v.address == *address)
    }
    fn get_by_index(&self, index: usize) -> Option<&EngineValidator> {
        self.validators.get(index)
    }
}

/// An ed25519 signature with the ordering Malachite requires.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sig(pub [u8; 64]);

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({})", Signature::from_bytes(&self.0))
    }
}

impl From<Signature> for Sig {
    fn from(signature: Signature) -> Self {
        Sig(signature.to_bytes())
    }
}

/// ed25519 (through pyralog-crypto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519;

impl mc::SigningScheme for Ed25519 {
    type DecodingError = String;
    type Signature = Sig;
    type PublicKey = PublicKey;
    type PrivateKey = Keypair;

    fn decode_signature(bytes: &[u8]) -> Result<Sig, String> {
        let bytes: [u8; 64] =
            bytes.try_into().map_err(|_| format!("a signature has 64 bytes, not {}", bytes.len()))?;
        Ok(Sig(bytes))
    }

    fn encode_signature(signature: &Sig) -> Vec<u8> {
        signature.0.to_vec()
    }
}

impl mc::Context for PyralogContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = NoParts;
    type Proposal = Proposal;
    type Validator = EngineValidator;
    type ValidatorSet = EngineValidators;
    type Value = Payload;
    type Vote = EngineVote;
    type Extension = ();
    type SigningScheme = Ed25519;

    /// CometBFT's proposer priority: the height's priorities moved one step per round, so each
    /// validator proposes in proportion to its power.
    fn select_proposer<'a>(
        &self,
        validators: &'a EngineValidators,
        _height: Height,
        round: Round,
    ) -> &'a EngineValidator {
        let key = validators.proposers.proposer(round.as_u32().unwrap_or(0));
        validators.validators.iter().find(|v| v.address.0 == key).unwrap_or(&validators.validators[0])
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: Payload,
        pol_round: Round,
        proposer: Address,
    ) -> Proposal {
        Proposal { height, round, value, pol_round, proposer }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value: NilOrVal<PayloadId>,
        voter: Address,
    ) -> EngineVote {
        EngineVote { height, round, kind: EngineVoteKind::Prevote, value, voter }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value: NilOrVal<PayloadId>,
        voter: Address,
    ) -> EngineVote {
        EngineVote { height, round, kind: EngineVoteKind::Precommit, value, voter }
    }
}
