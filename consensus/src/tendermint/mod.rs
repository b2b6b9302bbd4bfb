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

pub mod context;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use malachitebft_core_consensus::{
    ConsensusMsg, Effect as MEffect, Input as MInput, LivenessMsg, LocallyProposedValue, Params, Resume,
    SignedConsensusMsg, State, ValuePayload, WalEntry,
};
use malachitebft_core_types::{
    CertificateError, CommitCertificate as MCommitCertificate, Round, SignedMessage, Timeout, TimeoutKind,
    ValidatorSet as _,
};
use malachitebft_metrics::Metrics;
use pyralog_crypto::quorum::{Signable, SignatureShare};
use pyralog_crypto::{Keypair, PublicKey, Signature};

use crate::core::{ConsensusCore, Effect, Input, Millis, TimerId};
use crate::vote::{CommitCertificate, DuplicateVote, FinalityProof, Vote, VoteKind};
use context::{
    Address, EngineValidators, EngineVote, Height, Payload, PayloadId, ProposalSigning, PyralogContext, Sig,
};

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
    keypair: Keypair,
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
    /// Equivocations already reported, by (height, round, kind, validator).
    reported: BTreeSet<(u64, u32, bool, PublicKey)>,
    out: Vec<Effect>,
}

impl TendermintEngine {
    /// The engine of the validator holding `keypair`, on chain `chain_id`.
    pub fn new(chain_id: impl Into<String>, keypair: Keypair, timeouts: Timeouts) -> Self {
        let address = Address(keypair.public());
        TendermintEngine {
            state: None,
            metrics: Metrics::default(),
            io: EngineIo {
                ctx: PyralogContext { chain_id: chain_id.into() },
                keypair,
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
                early: Vec::new(),
                out: Vec::new(),
            },
        }
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
        let Some(state) = self.state.as_mut() else { return };
        let io = &mut self.io;
        let result: Result<(), malachitebft_core_consensus::Error<Ctx>> = malachitebft_core_consensus::process!(
            input: input,
            state: state,
            metrics: &self.metrics,
            with: effect => io.perform(effect)
        );
        if let Err(err) = result {
            // Malachite refuses inputs it cannot use (stale heights, bad signatures); the input
            // is dropped, the engine goes on.
            tracing::debug!(%err, "consensus input refused");
        }
        self.report_equivocations();
    }

    /// Turns the conflicting vote pairs Malachite's vote keeper recorded into evidence, once each.
    fn report_equivocations(&mut self) {
        let (Some(state), Some(validators)) = (self.state.as_ref(), self.io.validators.as_ref()) else {
            return;
        };
        let evidence = state.driver.votes().evidence();
        if evidence.is_empty() {
            return;
        }
        for validator in validators.set().validators() {
            let Some(pairs) = evidence.get(&Address(validator.key)) else { continue };
            for (first, second) in pairs {
                let round = first.round.as_u32().unwrap_or(u32::MAX);
                let precommit = first.kind == context::EngineVoteKind::Precommit;
                if !self.io.reported.insert((first.height.0, round, precommit, validator.key)) {
                    continue;
                }
                let chain = self.io.chain_id();
                self.io.out.push(Effect::Evidence(Box::new(DuplicateVote {
                    validator: validator.key,
                    first: first.signed_message(chain),
                    first_signature: Signature::from_bytes(&first.signature.0),
                    second: second.signed_message(chain),
                    second_signature: Signature::from_bytes(&second.signature.0),
                })));
            }
        }
    }

    fn on_message(&mut self, bytes: &[u8]) {
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
                return;
            }
        };
        match message {
            SignedConsensusMsg::Vote(vote) => self.run(MInput::Vote(vote)),
            SignedConsensusMsg::Proposal(proposal) => self.on_proposal(proposal),
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
                    });
                }
            }
        }
    }
}

impl ConsensusCore for TendermintEngine {
    fn handle(&mut self, _now: Millis, input: Input) -> Vec<Effect> {
        match input {
            Input::StartHeight { height, validators } => {
                let set = EngineValidators::new(validators);
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
                let early = std::mem::take(&mut self.io.early);
                for proposal in early.into_iter().filter(|p| p.height.0 == height) {
                    self.on_proposal(proposal);
                }
            }
            Input::Message { bytes, .. } => self.on_message(&bytes),
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
            Input::BlockApplied { .. } => {}
        }
        std::mem::take(&mut self.io.out)
    }

    fn name(&self) -> &'static str {
        "tendermint"
    }

    /// Votes this validator signed before a restart: it will sign the same value again rather
    /// than a different one at the same height, round and kind.
    fn restore_signed_votes(&mut self, votes: Vec<Vote>) {
        for vote in votes {
            self.io.signed.entry((vote.height, vote.round, vote.kind)).or_insert(vote.block);
        }
    }
}

/// Signature shares with each signer once (the first share of each).
fn unique_shares(signatures: impl Iterator<Item = (Address, Sig)>) -> Vec<SignatureShare> {
    let mut seen = BTreeSet::new();
    signatures
        .filter(|(address, _)| seen.insert(*address))
        .map(|(address, signature)| SignatureShare {
            signer: address.0,
            signature: Signature::from_bytes(&signature.0),
        })
        .collect()
}

fn step_of(kind: TimeoutKind) -> u8 {
    match kind {
        TimeoutKind::Propose => 0,
        TimeoutKind::Prevote => 1,
        TimeoutKind::Precommit => 2,
        TimeoutKind::Rebroadcast => 3,
    }
}

fn kind_of(step: u8) -> TimeoutKind {
    match step {
        0 => TimeoutKind::Propose,
        1 => TimeoutKind::Prevote,
        2 => TimeoutKind::Precommit,
        _ => TimeoutKind::Rebroadcast,
    }
}

impl EngineIo {
    fn chain_id(&self) -> &str {
        &self.ctx.chain_id
    }

    fn sign_vote(&self, vote: &EngineVote) -> Sig {
        Sig::from(self.keypair.sign(&vote.signed_message(self.chain_id()).signing_bytes()))
    }

    fn verify(&self, key: &PublicKey, bytes: &[u8], signature: &Sig) -> bool {
        key.verify(bytes, &Signature::from_bytes(&signature.0)).is_ok()
    }

    fn verify_proposal(&self, proposal: &SignedMessage<Ctx, context::Proposal>) -> bool {
        let Some(validators) = &self.validators else { return false };
        // Only the round's proposer may propose (anyone else's proposals would each cost an app
        // check and memory until the height ends).
        use malachitebft_core_types::{Context as _, Validator as _};
        let expected = self.ctx.select_proposer(validators, proposal.height, proposal.round);
        if *expected.address() != proposal.proposer {
            return false;
        }
        let bytes =
            ProposalSigning { chain_id: self.chain_id(), proposal: &proposal.message }.signing_bytes();
        self.verify(&proposal.proposer.0, &bytes, &proposal.signature)
    }

    /// Converts Malachite's commit certificate into ours (all precommits sign one message).
    fn finality_proof(&self, certificate: &MCommitCertificate<Ctx>) -> FinalityProof {
        let message = Vote {
            chain_id: self.chain_id().to_owned(),
            height: certificate.height.0,
            round: certificate.round.as_u32().unwrap_or(u32::MAX),
            kind: VoteKind::Precommit,
            block: Some(certificate.value_id.0),
        };
        // One share per signer: a validator can sign the same vote twice (ed25519 signatures are
        // not unique), Malachite keeps both, and a certificate listing a signer twice is invalid.
        let signatures =
            unique_shares(certificate.commit_signatures.iter().map(|s| (s.address, s.signature)));
        FinalityProof::Commit(CommitCertificate { message, signatures })
    }

    /// A round certificate mixes votes over different messages, so each signature is checked on
    /// its own; skip certificates need more than 1/3 of the power, precommit ones a quorum.
    // The error type is the one Malachite resumes with.
    #[allow(clippy::result_large_err)]
    fn verify_round_certificate(
        &self,
        certificate: &malachitebft_core_types::RoundCertificate<Ctx>,
        validators: &EngineValidators,
    ) -> Result<(), CertificateError<Ctx>> {
        use malachitebft_core_types::{RoundCertificateType, VoteType};
        let mut seen = BTreeSet::new();
        let mut power = 0u64;
        for s in &certificate.round_signatures {
            if !seen.insert(s.address) {
                continue; // the same validator's vote signed twice counts once
            }
            let Some(weight) = validators.set().power_of(&s.address.0) else {
                return Err(CertificateError::UnknownValidator(s.address));
            };
            let kind = match s.vote_type {
                VoteType::Prevote => context::EngineVoteKind::Prevote,
                VoteType::Precommit => context::EngineVoteKind::Precommit,
            };
            if certificate.cert_type == RoundCertificateType::Precommit && s.vote_type != VoteType::Precommit
            {
                return Err(CertificateError::InvalidVoteType(s.address));
            }
            let vote = EngineVote {
                height: certificate.height,
                round: certificate.round,
                kind,
                value: s.value_id,
                voter: s.address,
            };
            let bytes = vote.signed_message(self.chain_id()).signing_bytes();
            if !self.verify(&s.address.0, &bytes, &s.signature) {
                return Err(CertificateError::InvalidRoundSignature(s.clone()));
            }
            power += weight;
        }
        let set = validators.set();
        let enough = match certificate.cert_type {
            RoundCertificateType::Skip => set.is_one_third(power),
            RoundCertificateType::Precommit => set.is_quorum(power),
        };
        if !enough {
            let total = set.total_power();
            return Err(CertificateError::NotEnoughVotingPower { signed: power, total, expected: total });
        }
        Ok(())
    }

    fn timer(&mut self, timeout: Timeout) -> TimerId {
        TimerId {
            height: self.height,
            round: timeout.round.as_u32().unwrap_or(0),
            step: step_of(timeout.kind),
        }
    }

    fn perform(&mut self, effect: MEffect<Ctx>) -> Result<Resume<Ctx>, String> {
        use malachitebft_core_consensus::Resumable;
        Ok(match effect {
            MEffect::ResetTimeouts(r) => r.resume_with(()),
            MEffect::CancelAllTimeouts(r) => {
                for timer in std::mem::take(&mut self.timers) {
                    self.out.push(Effect::CancelTimer(timer));
                }
                r.resume_with(())
            }
            MEffect::CancelTimeout(timeout, r) => {
                let id = self.timer(timeout);
                if self.timers.remove(&id) {
                    self.out.push(Effect::CancelTimer(id));
                }
                r.resume_with(())
            }
            MEffect::ScheduleTimeout(timeout, r) => {
                let id = self.timer(timeout);
                let t = self.timeouts;
                let base = match timeout.kind {
                    TimeoutKind::Propose => t.propose,
                    TimeoutKind::Prevote => t.prevote,
                    TimeoutKind::Precommit => t.precommit,
                    TimeoutKind::Rebroadcast => t.rebroadcast,
                };
                let after = base + t.increase * id.round;
                self.timers.insert(id);
                self.out.push(Effect::SetTimer { id, after });
                r.resume_with(())
            }
            MEffect::GetValidatorSet(_height, r) => r.resume_with(self.validators.clone()),
            MEffect::StartRound(_, _, _, _, r) => r.resume_with(()),
            MEffect::PublishConsensusMsg(message, r) => {
                self.out.push(Effect::Broadcast(wire::encode(&message)));
                r.resume_with(())
            }
            MEffect::PublishLivenessMsg(LivenessMsg::Vote(vote), r) | MEffect::RepublishVote(vote, r) => {
                self.out.push(Effect::Broadcast(wire::encode(&SignedConsensusMsg::Vote(vote))));
                r.resume_with(())
            }
            MEffect::PublishLivenessMsg(LivenessMsg::PolkaCertificate(certificate), r) => {
                self.out
                    .push(Effect::Broadcast(wire::encode_message(&wire::EngineMessage::Polka(certificate))));
                r.resume_with(())
            }
            MEffect::PublishLivenessMsg(LivenessMsg::SkipRoundCertificate(certificate), r)
            | MEffect::RepublishRoundCertificate(certificate, r) => {
                self.out
                    .push(Effect::Broadcast(wire::encode_message(&wire::EngineMessage::Round(certificate))));
                r.resume_with(())
            }
            MEffect::GetValue(height, round, _timeout, r) => {
                self.wanted_payload = Some((height.0, round));
                self.out.push(Effect::BuildPayload { height: height.0 });
                r.resume_with(())
            }
            MEffect::RestreamProposal(.., r) => r.resume_with(()),
            MEffect::SyncValue(_, r) => r.resume_with(()),
            MEffect::Decide(certificate, _extensions, r) => {
                let id = certificate.value_id;
                match self.payloads.get(&id) {
                    Some(payload) => {
                        let txs = payload.0.clone();
                        let proof = self.finality_proof(&certificate);
                        self.out.push(Effect::CommitBlock {
                            height: certificate.height.0,
                            block: id.0,
                            txs,
                            proof,
                        });
                    }
                    // Decided without the payload (never seen here): block sync fetches it, with
                    // transactions that hash to the id.
                    None => tracing::error!(
                        height = certificate.height.0,
                        "decided a payload this node never saw"
                    ),
                }
                r.resume_with(())
            }
            MEffect::SignVote(mut vote, r) => {
                let message = vote.signed_message(self.chain_id());
                let key = (message.height, message.round, message.kind);
                match self.signed.get(&key) {
                    // Signed before (a previous life): sign exactly that again.
                    Some(block) if *block != message.block => {
                        vote.value = match block {
                            None => malachitebft_core_types::NilOrVal::Nil,
                            Some(id) => malachitebft_core_types::NilOrVal::Val(PayloadId(*id)),
                        };
                    }
                    Some(_) => {}
                    None => {
                        self.signed.insert(key, message.block);
                    }
                }
                let signature = self.sign_vote(&vote);
                r.resume_with(SignedMessage::new(vote, signature))
            }
            MEffect::SignProposal(proposal, r) => {
                let bytes =
                    ProposalSigning { chain_id: self.chain_id(), proposal: &proposal }.signing_bytes();
                let signature = Sig::from(self.keypair.sign(&bytes));
                r.resume_with(SignedMessage::new(proposal, signature))
            }
            MEffect::VerifySignature(signed, key, r) => {
                let valid = match &signed.message {
                    ConsensusMsg::Vote(vote) => {
                        let bytes = vote.signed_message(self.chain_id()).signing_bytes();
                        self.verify(&key, &bytes, &signed.signature)
                    }
                    ConsensusMsg::Proposal(proposal) => {
                        let bytes = ProposalSigning { chain_id: self.chain_id(), proposal }.signing_bytes();
                        self.verify(&key, &bytes, &signed.signature)
                    }
                };
                r.resume_with(valid)
            }
            MEffect::VerifyCommitCertificate(certificate, validators, _, r) => {
                let proof = self.finality_proof(&certificate);
                let verdict = proof
                    .verify(self.chain_id(), certificate.height.0, &certificate.value_id.0, validators.set())
                    .map(|_| ())
                    .map_err(|_| CertificateError::NotEnoughVotingPower {
                        signed: 0,
                        total: validators.set().total_power(),
                        expected: validators.set().total_power(),
                    });
                r.resume_with(verdict)
            }
            MEffect::VerifyPolkaCertificate(certificate, validators, _, r) => {
                let message = Vote {
                    chain_id: self.chain_id().to_owned(),
                    height: certificate.height.0,
                    round: certificate.round.as_u32().unwrap_or(u32::MAX),
                    kind: VoteKind::Prevote,
                    block: Some(certificate.value_id.0),
                };
                let signatures =
                    unique_shares(certificate.polka_signatures.iter().map(|s| (s.address, s.signature)));
                let total = validators.total_voting_power();
                let verdict = CommitCertificate { message, signatures }
                    .verify(validators.set().members(), crate::validators::QUORUM)
                    .map(|_| ())
                    .map_err(|_| CertificateError::NotEnoughVotingPower {
                        signed: 0,
                        total,
                        expected: total,
                    });
                r.resume_with(verdict)
            }
            MEffect::VerifyRoundCertificate(certificate, validators, _, r) => {
                r.resume_with(self.verify_round_certificate(&certificate, &validators))
            }
            MEffect::WalAppend(entry, r) => {
                if let WalEntry::ConsensusMsg(SignedConsensusMsg::Vote(vote)) = &entry
                    && vote.voter == self.address
                {
                    self.out.push(Effect::PersistVote(vote.signed_message(self.chain_id())));
                }
                r.resume_with(())
            }
            MEffect::ExtendVote(.., r) => r.resume_with(None),
            MEffect::VerifyVoteExtension(.., r) => r.resume_with(Ok(())),
        })
    }
}
