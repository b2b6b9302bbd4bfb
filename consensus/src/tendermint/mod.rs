//! Tendermint, as Malachite's `core-consensus` (informalsystems-malachitebft 0.5.0, pinned)
//! wrapped into a [`ConsensusCore`].
//!
//! Why 0.5.0 of the `informalsystems-malachitebft-*` crates: its core is sans-I/O already (a
//! coroutine that yields effects and is resumed with their results), it needs neither tokio nor
//! libp2p at this layer, and its dependencies leave the host features of the rest of the
//! workspace alone (no RocksDB rebuild).
//!
//! Malachite asks for signatures, signature checks and the validator set synchronously; the
//! engine answers those itself (signing is computation, not I/O). Everything else becomes an
//! [`Effect`] for the driver. Proposals carry their whole payload; a received proposal is held
//! back from Malachite until the app has checked its payload ([`Effect::CheckPayload`]), so an
//! invalid payload is never voted for (the round times out to a nil prevote instead).

#[cfg(feature = "test-utils")]
mod adversary;
pub mod context;
mod effects;
mod wal;
pub mod wire;

/// Decodes one write-ahead-log entry as a restart reads it back, and returns its height (for the
/// fuzz targets: the WAL is bytes on disk, which may be corrupt).
pub fn decode_wal_entry(bytes: &[u8]) -> Result<u64, String> {
    wal::decode(bytes).map(|(height, _)| height)
}

#[cfg(feature = "test-utils")]
pub use adversary::TendermintAdversary;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use malachitebft_core_consensus::{
    ConsensusMsg, Effect as MEffect, Input as MInput, LivenessMsg, LocallyProposedValue, Params, Resume,
    SignedConsensusMsg, State, ValuePayload,
};
use malachitebft_core_types::{
    CertificateError, CommitCertificate as MCommitCertificate, Round, SignedMessage, Timeout, TimeoutKind,
    ValidatorSet as _,
};
use malachitebft_metrics::Metrics;
use pyralog_crypto::quorum::{Signable, SignatureShare};
use pyralog_crypto::{PublicKey, Signature};

use crate::core::{ConsensusCore, Effect, Input, Millis, Signer, TimerId, WalError};
use crate::finality::Engine;
use crate::vote::{
    CommitCertificate, DuplicateProposal, DuplicateVote, Evidence, FinalityProof, Vote, VoteKind,
};

/// Kinds of reported equivocation.
const PREVOTE: u8 = 0;
const PRECOMMIT: u8 = 1;
const PROPOSAL: u8 = 2;
use context::{Address, EngineValidators, EngineVote, Height, Payload, PayloadId, PyralogContext, Sig};

type Ctx = PyralogContext;

/// Round timeouts: `base + round * increase` per step, as in Tendermint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for the proposal.
    pub propose: Duration,
    /// Waiting for more prevotes after seeing 2/3 of any.
    pub prevote: Duration,
    /// Waiting for more precommits after seeing 2/3 of any.
    pub precommit: Duration,
    /// Re-sending own votes when a round is stuck.
    pub rebroadcast: Duration,
    /// Added per round.
    pub increase: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            propose: Duration::from_millis(1000),
            prevote: Duration::from_millis(500),
            precommit: Duration::from_millis(500),
            rebroadcast: Duration::from_millis(2000),
            increase: Duration::from_millis(500),
        }
    }
}

/// The Tendermint engine of one validator.
pub struct TendermintEngine {
    state: Option<State<Ctx>>,
    metrics: Metrics,
    io: EngineIo,
}

impl std::fmt::Debug for TendermintEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TendermintEngine").field("address", &self.io.address).finish_non_exhaustive()
    }
}

/// Everything the effect handler touches (kept apart from Malachite's state, which the running
/// coroutine borrows).
struct EngineIo {
    ctx: Ctx,
    signer: Box<dyn Signer>,
    address: Address,
    timeouts: Timeouts,
    height: u64,
    validators: Option<EngineValidators>,
    timers: BTreeSet<TimerId>,
    /// The round Malachite asked a payload for.
    wanted_payload: Option<(u64, Round)>,
    /// Payloads seen this height, by id.
    payloads: HashMap<PayloadId, Payload>,
    /// The app's verdicts on payloads this height.
    verdicts: HashMap<PayloadId, bool>,
    /// Proposals waiting for the app's verdict on their payload.
    held: BTreeMap<PayloadId, Vec<SignedMessage<Ctx, context::Proposal>>>,
    /// What this validator signed per (height, round, kind), restored from its WAL after a
    /// restart: it never signs another value there (CometBFT's last-sign-state, per vote).
    signed: HashMap<(u64, u32, VoteKind), Option<pyralog_crypto::Digest>>,
    /// Proposals for the next height, received before this engine got there (a peer that
    /// committed earlier); replayed when the height starts.
    early: Vec<SignedMessage<Ctx, context::Proposal>>,
    /// WAL entries restored after a restart, replayed when their height starts.
    replay: Vec<(u64, wal::WalRecord)>,
    /// True while replaying (those entries are in the WAL already).
    replaying: bool,
    /// Payloads this validator proposed, by (height, round): after a restart it proposes the
    /// same one again, never a second one.
    own_proposals: HashMap<(u64, u32), Payload>,
    /// Inputs an effect produced that must run after the current one (Malachite's state is
    /// borrowed while an input runs).
    deferred: Vec<MInput<Ctx>>,
    /// Equivocations already reported, by (height, round, kind, validator); kind is
    /// [`PREVOTE`], [`PRECOMMIT`] or [`PROPOSAL`].
    reported: BTreeSet<(u64, u32, u8, PublicKey)>,
    /// Signatures already verified: a message is checked when it arrives, to blame its sender,
    /// and Malachite asks again; the second check is a lookup.
    verified: crate::verified::Verified,
    out: Vec<Effect>,
}

impl TendermintEngine {
    /// The engine of the validator that signs with `signer` (a [`pyralog_crypto::Keypair`] or a remote
    /// signer), on chain `chain_id`.
    pub fn new(chain_id: impl Into<String>, signer: impl Signer, timeouts: Timeouts) -> Self {
        let address = Address(signer.public_key());
        TendermintEngine {
            state: None,
            metrics: Metrics::default(),
            io: EngineIo {
                ctx: PyralogContext { chain_id: chain_id.into() },
                signer: Box::new(signer),
                address,
                timeouts,
                height: 0,
                validators: None,
                timers: BTreeSet::new(),
                wanted_payload: None,
                payloads: HashMap::new(),
                verdicts: HashMap::new(),
                held: BTreeMap::new(),
                signed: HashMap::new(),
                reported: BTreeSet::new(),
                verified: crate::verified::Verified::new(4096),
                early: Vec::new(),
                replay: Vec::new(),
                replaying: false,
                own_proposals: HashMap::new(),
                deferred: Vec::new(),
                out: Vec::new(),
            },
        }
    }

    /// The payload this validator is locked on at the current height, and the round it locked in
    /// (Tendermint's lockedValue/lockedRound).
    pub fn locked(&self) -> Option<(u32, pyralog_crypto::Digest)> {
        let locked = self.state.as_ref()?.driver.round_state().locked.as_ref()?;
        Some((locked.round.as_u32()?, locked.value.digest()))
    }

    /// The height and round the engine is at (`None` before the first height starts).
    pub fn height_and_round(&self) -> Option<(u64, i64)> {
        self.state.as_ref().map(|s| (s.height().0, s.round().as_i64()))
    }

    /// This validator's key.
    pub fn public_key(&self) -> PublicKey {
        self.io.address.0
    }

    fn run(&mut self, input: MInput<Ctx>) {
        let mut next = Some(input);
        while let Some(input) = next.take().or_else(|| self.io.deferred.pop()) {
            let Some(state) = self.state.as_mut() else { return };
            let io = &mut self.io;
            let result: Result<(), malachitebft_core_consensus::Error<Ctx>> = malachitebft_core_consensus::process!(
                input: input,
                state: state,
                metrics: &self.metrics,
                with: effect => io.perform(effect)
            );
            if let Err(err) = result {
                // Malachite refuses inputs it cannot use (stale heights, bad signatures); the
                // input is dropped, the engine goes on.
                tracing::debug!(%err, "consensus input refused");
            }
        }
        self.report_equivocations();
    }

    /// Replays the restored WAL entries of `height` into Malachite: the messages and timeouts
    /// that moved it, so it resumes in the same round with the same lock.
    fn replay(&mut self, height: u64) {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.io.replay).into_iter().partition(|(h, _)| *h == height);
        self.io.replay = later.into_iter().filter(|(h, _)| *h > height).collect();
        self.io.replaying = true;
        for (_, record) in now {
            match record {
                wal::WalRecord::Message(SignedConsensusMsg::Vote(vote)) => self.run(MInput::Vote(vote)),
                wal::WalRecord::Message(SignedConsensusMsg::Proposal(proposal)) => {
                    // It was checked before it was first fed in.
                    let id = PayloadId(proposal.value.digest());
                    self.io.payloads.insert(id, proposal.value.clone());
                    self.io.verdicts.insert(id, true);
                    self.run(MInput::Proposal(proposal));
                }
                wal::WalRecord::Timeout(timeout) => self.run(MInput::TimeoutElapsed(timeout)),
                wal::WalRecord::Value(value) => {
                    let id = PayloadId(value.value.digest());
                    self.io.payloads.insert(id, value.value.clone());
                    self.run(MInput::ProposedValue(value, malachitebft_core_types::ValueOrigin::Consensus));
                }
            }
        }
        self.io.replaying = false;
    }

    /// Turns the conflicting votes and proposals Malachite recorded into evidence, once each.
    fn report_equivocations(&mut self) {
        let (Some(state), Some(validators)) = (self.state.as_ref(), self.io.validators.as_ref()) else {
            return;
        };
        let votes = state.driver.votes().evidence();
        let proposals = state.driver.evidence();
        if votes.is_empty() && proposals.is_empty() {
            return;
        }
        let chain = self.io.ctx.chain_id.as_str();
        for validator in validators.set().validators() {
            let address = Address(validator.key);
            for (first, second) in votes.get(&address).into_iter().flatten() {
                let round = first.round.as_u32().unwrap_or(u32::MAX);
                let kind = if first.kind == context::EngineVoteKind::Precommit { PRECOMMIT } else { PREVOTE };
                if self.io.reported.insert((first.height.0, round, kind, validator.key)) {
                    self.io.out.push(Effect::Evidence(Box::new(Evidence::DuplicateVote(DuplicateVote {
                        validator: validator.key,
                        first: first.signed_message(chain),
                        first_signature: Signature::from_bytes(&first.signature.0),
                        second: second.signed_message(chain),
                        second_signature: Signature::from_bytes(&second.signature.0),
                    }))));
                }
            }
            for (first, second) in proposals.get(&address).into_iter().flatten() {
                let round = first.round.as_u32().unwrap_or(u32::MAX);
                if self.io.reported.insert((first.height.0, round, PROPOSAL, validator.key)) {
                    let evidence = DuplicateProposal {
                        validator: validator.key,
                        first: first.message.header(chain),
                        first_signature: Signature::from_bytes(&first.signature.0),
                        second: second.message.header(chain),
                        second_signature: Signature::from_bytes(&second.signature.0),
                    };
                    self.io.out.push(Effect::Evidence(Box::new(Evidence::DuplicateProposal(evidence))));
                }
            }
        }
    }

    fn on_message(&mut self, from: PublicKey, bytes: &[u8]) {
        let message = match wire::decode_message(bytes) {
            Ok(wire::EngineMessage::Consensus(message)) => message,
            Ok(wire::EngineMessage::Polka(certificate)) => {
                return self.run(MInput::PolkaCertificate(certificate));
            }
            Ok(wire::EngineMessage::Round(certificate)) => {
                return self.run(MInput::RoundCertificate(certificate));
            }
            Err(err) => {
                tracing::debug!(%err, "undecodable consensus message dropped");
                self.io.out.push(Effect::PeerMisbehaved { peer: from, reason: err.to_string() });
                return;
            }
        };
        // A signature that does not verify is the sender's doing (an honest node sends and
        // relays only what verifies): report it, with what it was, and drop the message.
        match message {
            SignedConsensusMsg::Vote(vote) => {
                let bytes = vote.signed_message(self.io.chain_id()).signing_bytes();
                let at = (vote.height.0, vote.round.as_i64());
                if self.io.signed_or_blame(from, "vote", &vote.voter.0, at, &bytes, &vote.signature) {
                    self.run(MInput::Vote(vote))
                }
            }
            SignedConsensusMsg::Proposal(proposal) => {
                let bytes = proposal.message.header(self.io.chain_id()).signing_bytes();
                let at = (proposal.height.0, proposal.round.as_i64());
                if self.io.signed_or_blame(
                    from,
                    "proposal",
                    &proposal.proposer.0,
                    at,
                    &bytes,
                    &proposal.signature,
                ) {
                    self.on_proposal(proposal)
                }
            }
        }
    }

    /// A proposal goes to Malachite once the app has found its payload valid.
    fn on_proposal(&mut self, proposal: SignedMessage<Ctx, context::Proposal>) {
        // Kept for the next height if signed by that round's proposer: one per round, for the
        // first 64 rounds.
        if proposal.height.0 == self.io.height + 1 {
            let round = proposal.round.as_u32().unwrap_or(u32::MAX);
            let fresh = !self.io.early.iter().any(|p| p.round == proposal.round);
            if round < 64 && fresh && self.io.verify_proposal(&proposal) {
                self.io.early.push(proposal);
            }
            return;
        }
        if proposal.height.0 != self.io.height || !self.io.verify_proposal(&proposal) {
            return;
        }
        let id = PayloadId(proposal.value.digest());
        self.io.payloads.entry(id).or_insert_with(|| proposal.value.clone());
        match self.io.verdicts.get(&id) {
            Some(true) => self.run(MInput::Proposal(proposal)),
            Some(false) => {}
            None => {
                let first = !self.io.held.contains_key(&id);
                self.io.held.entry(id).or_default().push(proposal.clone());
                if first {
                    self.io.out.push(Effect::CheckPayload {
                        height: proposal.height.0,
                        block: id.0,
                        txs: proposal.value.0.clone(),
                        on: None,
                    });
                }
            }
        }
    }
}

impl ConsensusCore for TendermintEngine {
    fn handle(&mut self, _now: Millis, input: Input) -> Vec<Effect> {
        match input {
            Input::StartHeight { height, validators, proposers, .. } => {
                let set = EngineValidators::new(validators, proposers);
                let io = &mut self.io;
                io.height = height;
                io.validators = Some(set.clone());
                io.payloads.clear();
                io.verdicts.clear();
                io.held.clear();
                io.wanted_payload = None;
                io.signed.retain(|(h, _, _), _| *h >= height);
                io.reported.retain(|(h, ..)| *h >= height);
                for timer in std::mem::take(&mut io.timers) {
                    io.out.push(Effect::CancelTimer(timer));
                }
                if self.state.is_none() {
                    let params = Params {
                        initial_height: Height(height),
                        initial_validator_set: set.clone(),
                        address: self.io.address,
                        threshold_params: Default::default(),
                        value_payload: ValuePayload::ProposalOnly,
                    };
                    self.state = Some(State::new(self.io.ctx.clone(), params, 1024));
                }
                self.run(MInput::StartHeight(Height(height), set));
                self.replay(height);
                let early = std::mem::take(&mut self.io.early);
                for proposal in early.into_iter().filter(|p| p.height.0 == height) {
                    self.on_proposal(proposal);
                }
            }
            Input::Message { from, bytes } => self.on_message(from, &bytes),
            Input::TimeoutFired(id) => {
                if id.height == self.io.height && self.io.timers.remove(&id) {
                    let timeout = Timeout::new(Round::new(id.round), kind_of(id.step));
                    self.run(MInput::TimeoutElapsed(timeout));
                }
            }
            Input::PayloadBuilt { height, txs } => {
                if let Some((wanted, round)) = self.io.wanted_payload
                    && wanted == height
                    && height == self.io.height
                {
                    self.io.wanted_payload = None;
                    let value = Payload(txs);
                    let id = PayloadId(value.digest());
                    self.io.payloads.insert(id, value.clone());
                    self.io.verdicts.insert(id, true);
                    self.run(MInput::Propose(LocallyProposedValue::new(Height(height), round, value)));
                }
            }
            Input::PayloadChecked { block, valid } => {
                let id = PayloadId(block);
                self.io.verdicts.insert(id, valid);
                for proposal in self.io.held.remove(&id).unwrap_or_default() {
                    if valid {
                        self.run(MInput::Proposal(proposal));
                    }
                }
            }
            // A BFT engine never asks for a seal.
            Input::BlockApplied { .. } | Input::Mined(_) => {}
        }
        std::mem::take(&mut self.io.out)
    }

    fn engine(&self) -> Engine {
        Engine::Tendermint
    }

    fn validator_key(&self) -> Option<PublicKey> {
        Some(self.io.address.0)
    }

    /// Votes this validator signed before a restart: it will sign the same value again rather
    /// than a different one at the same height, round and kind.
    fn restore_wal(&mut self, entries: Vec<Vec<u8>>) -> Result<(), WalError> {
        let me = self.io.address;
        for (index, bytes) in entries.into_iter().enumerate() {
            let (height, record) = wal::decode(&bytes).map_err(|reason| WalError { index, reason })?;
            match &record {
                wal::WalRecord::Message(SignedConsensusMsg::Vote(vote)) if vote.voter == me => {
                    let message = vote.signed_message(self.io.chain_id());
                    self.io
                        .signed
                        .entry((message.height, message.round, message.kind))
                        .or_insert(message.block);
                }
                wal::WalRecord::Message(SignedConsensusMsg::Proposal(p)) if p.proposer == me => {
                    let round = p.round.as_u32().unwrap_or(0);
                    self.io.own_proposals.entry((p.height.0, round)).or_insert_with(|| p.value.clone());
                }
                wal::WalRecord::Value(v) if v.proposer == me => {
                    let round = v.round.as_u32().unwrap_or(0);
                    self.io.own_proposals.entry((v.height.0, round)).or_insert_with(|| v.value.clone());
                }
                _ => {}
            }
            self.io.replay.push((height, record));
        }
        Ok(())
    }
}

pub(crate) use effects::{kind_of, step_of};
