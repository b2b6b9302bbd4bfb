//! PBFT (Castro and Liskov, OSDI '99 / ACM TOCS 2002) as a sans-I/O [`ConsensusCore`], one height
//! at a time (the sequence number is the height: the next block's header carries the state root
//! after the previous one, so there is no pipelining).
//!
//! - **Views are global**: the primary of view `v` is validator `v mod n` of the height's set
//!   (for weighted sets, a validator drawn by power from a hash of the view). A height starts in
//!   the view its parent was committed in (the view of the stored commit certificate), so a
//!   primary that works stays primary.
//! - **Normal case**: the primary's PRE-PREPARE carries the payload; every validator (the primary
//!   too, which keeps weighted counting uniform) sends a signed PREPARE for the block; a
//!   PRE-PREPARE with PREPAREs of more than 2/3 of the power is a *prepared certificate*, after
//!   which it sends a signed COMMIT; COMMITs of more than 2/3 of the power are the commit
//!   certificate, the same quorum certificate of precommits a light client checks for any quorum
//!   engine. A commit certificate for the height, seen in any view, commits.
//! - **View change**: the view timer starts when a height starts, doubles with each consecutive
//!   failed view and resets on commit. On expiry a replica sends VIEW-CHANGE (its highest
//!   prepared certificate with the payload, and its last commit certificate). VIEW-CHANGEs of
//!   more than 1/3 of the power for higher views make a replica join the highest view they
//!   reach together. In a view change the timer runs once more than 2/3 of the power asks for
//!   this view or higher. The new primary, holding VIEW-CHANGEs of more than 2/3 for its view,
//!   sends NEW-VIEW: those VIEW-CHANGEs and the PRE-PREPARE of the block of the highest prepared
//!   view (a fresh payload if none); every replica checks it the same way ([`new_view::check`])
//!   and refuses any mismatch.
//! - **Starting a height in another view**: a replica that has signed no PRE-PREPARE, PREPARE or
//!   COMMIT at the height yet (it cannot have helped commit anything there) may follow a primary
//!   into another view (no lower than any VIEW-CHANGE it signed there), when the PRE-PREPARE comes
//!   with the previous height's commit certificate of that view. Once it has voted, it changes
//!   view only upwards, and only through a NEW-VIEW.
//! - **WAL**: everything the engine signs is in its WAL before it is sent; after a restart it
//!   re-sends the same messages and never signs a conflicting PRE-PREPARE, PREPARE, COMMIT or
//!   VIEW-CHANGE.
//!
//! Not built, on purpose: the read-only optimisation, and NEW-VIEWs without the prepared
//! certificates behind them.

#[cfg(feature = "test-utils")]
mod adversary;
pub mod new_view;
mod normal;
mod view_change;
mod wal;
pub mod wire;

#[cfg(feature = "test-utils")]
pub use adversary::PbftAdversary;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use pyralog_crypto::quorum::{Signable, SignatureShare};
use pyralog_crypto::{Digest, PublicKey, Signature};

use crate::core::{ConsensusCore, Effect, Input, Millis, Signer, TimerId, WalError};
use crate::finality::{Engine, FinalityProof};
use crate::validators::{QUORUM, ValidatorSet};
use crate::vote::{BlockId, CommitCertificate, VoteKind};
use wire::{Message, NewView, PrePrepare, PreparedCertificate, Proposal, SignedVote, ViewChange};

/// Timer steps.
const VIEW_TIMER: u8 = 0;
const REBROADCAST_TIMER: u8 = 1;

/// Kinds of own signatures (and of reported equivocations).
const PRE_PREPARE: u8 = 0;
const PREPARE: u8 = 1;
const COMMIT: u8 = 2;

/// The view timer doubles at most this many times (64 times the base).
const MAX_DOUBLINGS: u32 = 6;

/// Messages kept for the next height (a peer that committed first), at most.
const MAX_EARLY: usize = 1024;

/// PBFT's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PbftTimeouts {
    /// The view timer's base: how long a view may go without a commit before a view change.
    pub view: Duration,
    /// How often a replica re-sends its latest messages while the height is undecided (lost
    /// messages are otherwise only recovered by a view change).
    pub rebroadcast: Duration,
}

impl Default for PbftTimeouts {
    fn default() -> Self {
        PbftTimeouts { view: Duration::from_millis(2000), rebroadcast: Duration::from_millis(2000) }
    }
}

/// The primary of `view` in `validators`: validator `view mod n` of the canonical order when
/// every validator has the same power; otherwise a validator drawn by power from a hash of the
/// view (so a heavy validator leads proportionally often, and never for long runs).
pub fn primary(validators: &ValidatorSet, view: u32) -> PublicKey {
    let list = validators.validators();
    if list.iter().all(|v| v.power == list[0].power) {
        return list[view as usize % list.len()].key;
    }
    let mut hasher = pyralog_crypto::Domain::ConsensusValue.hasher();
    hasher.update(b"pbft primary\0");
    hasher.update(&view.to_be_bytes());
    let hash = hasher.finalize();
    let mut slot_bytes = [0u8; 8];
    slot_bytes.copy_from_slice(&hash.as_bytes()[..8]);
    let mut slot = u64::from_be_bytes(slot_bytes) % validators.total_power();
    for v in list {
        if slot < v.power {
            return v.key;
        }
        slot -= v.power;
    }
    list[list.len() - 1].key
}

/// What the engine holds about the height it is deciding.
#[derive(Default)]
struct Round {
    /// Payloads seen, by block.
    payloads: HashMap<BlockId, Vec<Vec<u8>>>,
    /// The app's verdicts.
    verdicts: HashMap<BlockId, bool>,
    /// Proposals waiting for the app's verdict (with whether a checked NEW-VIEW carried them).
    held: BTreeMap<BlockId, Vec<(Proposal, bool)>>,
    /// The PRE-PREPARE accepted in each view.
    accepted: BTreeMap<u32, PrePrepare>,
    /// The first PRE-PREPARE seen from each primary in each view (equivocation).
    seen_proposals: HashMap<(u32, PublicKey), PrePrepare>,
    /// The first vote of each validator per view and kind (equivocation).
    votes: HashMap<(u32, u8, PublicKey), SignedVote>,
    /// Verified votes by view, kind and block.
    tallies: HashMap<(u32, u8, BlockId), Vec<SignatureShare>>,
    /// The highest prepared certificate.
    prepared: Option<PreparedCertificate>,
    /// A commit certificate whose payload has not arrived.
    pending_commit: Option<CommitCertificate>,
    /// The certificate this replica decided with.
    decided: Option<CommitCertificate>,
    /// Each validator's highest VIEW-CHANGE.
    highest_view_change: HashMap<PublicKey, u32>,
    /// VIEW-CHANGEs by view and signer.
    view_changes: BTreeMap<u32, BTreeMap<PublicKey, ViewChange>>,
    /// The NEW-VIEW that installed the current view (re-sent to replicas still changing).
    new_view: Option<NewView>,
    /// Own signatures per (view, kind): never another block there.
    signed: HashMap<(u32, u8), BlockId>,
    /// Whether it signed a PRE-PREPARE, PREPARE or COMMIT at this height.
    voted: bool,
    /// The highest view it signed a VIEW-CHANGE for.
    view_change_floor: u32,
    /// Own latest messages, re-sent while the height is undecided.
    own_proposal: Option<Proposal>,
    own_prepare: Option<SignedVote>,
    own_commit: Option<SignedVote>,
    own_view_change: Option<ViewChange>,
    /// The view whose payload was asked of the app.
    building: Option<u32>,
    /// The view whose view-change timer runs.
    change_timer_for: Option<u32>,
    /// The running view timer.
    view_timer: Option<TimerId>,
    /// Equivocations reported, by (view, kind, validator).
    reported: HashSet<(u32, u8, PublicKey)>,
    /// Peers answered with the commit certificate.
    answered: HashSet<PublicKey>,
}

/// The PBFT engine of one validator.
pub struct PbftEngine {
    chain_id: String,
    signer: Box<dyn Signer>,
    me: PublicKey,
    timeouts: PbftTimeouts,
    /// False only in tests that show the simulator catches a broken NEW-VIEW check.
    check_new_views: bool,
    height: u64,
    validators: Option<ValidatorSet>,
    /// The previous height's set (its commit certificates are checked against it).
    previous: Option<ValidatorSet>,
    /// The previous height's commit certificate, as the driver stored it.
    last_commit: Option<CommitCertificate>,
    view: u32,
    /// Sent VIEW-CHANGE for `view`, waiting for its NEW-VIEW.
    changing: bool,
    /// Consecutive failed views (the view timer doubles with each).
    failed: u32,
    round: Round,
    /// Own signed messages restored from the WAL, replayed when their height starts.
    restored: Vec<(u64, wal::Record)>,
    /// Messages of the next height, replayed when it starts.
    early: Vec<(PublicKey, Message)>,
    /// Digests of signatures and certificates already verified. Bounded: cleared when full.
    verified: RefCell<HashSet<Digest>>,
    out: Vec<Effect>,
}

impl std::fmt::Debug for PbftEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PbftEngine")
            .field("validator", &self.me)
            .field("height", &self.height)
            .field("view", &self.view)
            .field("changing", &self.changing)
            .finish_non_exhaustive()
    }
}

impl PbftEngine {
    /// The engine of the validator that signs with `signer`, on chain `chain_id`.
    pub fn new(chain_id: impl Into<String>, signer: impl Signer, timeouts: PbftTimeouts) -> Self {
        let me = signer.public_key();
        PbftEngine {
            chain_id: chain_id.into(),
            signer: Box::new(signer),
            me,
            timeouts,
            check_new_views: true,
            height: 0,
            validators: None,
            previous: None,
            last_commit: None,
            view: 0,
            changing: false,
            failed: 0,
            round: Round::default(),
            restored: Vec::new(),
            early: Vec::new(),
            verified: RefCell::default(),
            out: Vec::new(),
        }
    }

    /// The same engine accepting NEW-VIEWs unchecked: a deliberately broken replica, for the test
    /// that shows the simulator catches it. Never in a product build.
    #[cfg(feature = "test-utils")]
    pub fn with_unchecked_new_views(mut self) -> Self {
        self.check_new_views = false;
        self
    }

    /// The height, the view, and whether a view change is under way.
    pub fn position(&self) -> (u64, u32, bool) {
        (self.height, self.view, self.changing)
    }

    /// This validator's key.
    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    fn set(&self) -> &ValidatorSet {
        self.validators.as_ref().expect("a height has started")
    }

    fn send(&mut self, message: &Message) {
        self.out.push(Effect::Broadcast(wire::encode(message)));
    }

    fn persist(&mut self, record: &wal::Record) {
        self.out.push(Effect::PersistWal { height: self.height, entry: wal::encode(self.height, record) });
    }

    fn blame(&mut self, peer: PublicKey, reason: String) {
        tracing::debug!(%peer, %reason, "PBFT message refused");
        self.out.push(Effect::PeerMisbehaved { peer, reason });
    }

    /// Whether `digest` was verified before; remembers it if `check` passes now.
    fn verified_once(&self, digest: Digest, check: impl FnOnce() -> bool) -> bool {
        if self.verified.borrow().contains(&digest) {
            return true;
        }
        let valid = check();
        if valid {
            let mut verified = self.verified.borrow_mut();
            if verified.len() >= 8192 {
                verified.clear();
            }
            verified.insert(digest);
        }
        valid
    }

    fn verify_signature(&self, key: &PublicKey, bytes: &[u8], signature: &Signature) -> bool {
        let mut hasher = pyralog_crypto::Domain::ConsensusValue.hasher();
        hasher.update(b"pbft verified signature\0");
        hasher.update(key.as_bytes());
        hasher.update(&signature.to_bytes());
        hasher.update(bytes);
        let digest = Digest(*hasher.finalize().as_bytes());
        self.verified_once(digest, || key.verify(bytes, signature).is_ok())
    }

    /// Whether `certificate` is a commit certificate (precommits of a quorum) of this chain at
    /// `height` under `validators`.
    fn valid_certificate(&self, certificate: &CommitCertificate, height: u64, validators: &ValidatorSet) -> bool {
        let vote = &certificate.message;
        if vote.chain_id != self.chain_id
            || vote.height != height
            || vote.kind != VoteKind::Precommit
            || vote.block.is_none()
        {
            return false;
        }
        let digest = digest_of(b"pbft verified certificate\0", certificate);
        self.verified_once(digest, || certificate.verify(validators.members(), QUORUM).is_ok())
    }

    /// Whether `certificate` is a commit certificate of the previous height (checked against its
    /// set, or the current one after a restart).
    fn valid_previous_certificate(&self, certificate: &CommitCertificate) -> bool {
        let set = self.previous.as_ref().or(self.validators.as_ref());
        match set {
            Some(set) if self.height > 1 => self.valid_certificate(certificate, self.height - 1, set),
            _ => false,
        }
    }

    fn view_timeout(&self) -> Duration {
        self.timeouts.view * 2u32.pow(self.failed.min(MAX_DOUBLINGS))
    }

    /// (Re)starts the view timer for the current view.
    fn arm_view_timer(&mut self) {
        if let Some(old) = self.round.view_timer.take() {
            self.out.push(Effect::CancelTimer(old));
        }
        let id = TimerId { height: self.height, round: self.view, step: VIEW_TIMER };
        self.round.view_timer = Some(id);
        self.out.push(Effect::SetTimer { id, after: self.view_timeout() });
    }

    fn stop_view_timer(&mut self) {
        if let Some(old) = self.round.view_timer.take() {
            self.out.push(Effect::CancelTimer(old));
        }
    }

    fn arm_rebroadcast(&mut self) {
        let id = TimerId { height: self.height, round: 0, step: REBROADCAST_TIMER };
        self.out.push(Effect::SetTimer { id, after: self.timeouts.rebroadcast });
    }

    fn start_height(&mut self, height: u64, validators: ValidatorSet, last_commit: Option<FinalityProof>) {
        if self.height + 1 == height {
            self.previous = self.validators.take();
        } else {
            self.previous = None;
        }
        self.validators = Some(validators);
        self.height = height;
        self.round = Round::default();
        self.changing = false;
        self.failed = 0;
        self.last_commit = last_commit.and_then(|proof| proof.commit_certificate().cloned());
        // The view the parent was committed in: where the primary that committed it leads on.
        self.view = self.last_commit.as_ref().map_or(0, |c| c.message.round);
        self.replay_restored(height);
        self.arm_view_timer();
        self.arm_rebroadcast();
        if let Some(proposal) = self.round.own_proposal.clone() {
            self.send(&Message::PrePrepare(proposal));
        } else if let Some(vc) = self.round.own_view_change.clone().filter(|_| self.changing) {
            self.send(&Message::ViewChange(vc));
            self.check_view_changes();
        } else if !self.changing && !self.round.voted && primary(self.set(), self.view) == self.me {
            self.build(self.view);
        }
        let early = std::mem::take(&mut self.early);
        for (from, message) in early.into_iter().filter(|(_, m)| m.height() == height) {
            self.on_message(from, message);
        }
    }

    /// Asks the app for a payload for `view`.
    fn build(&mut self, view: u32) {
        if self.round.building.is_none() {
            self.round.building = Some(view);
            self.out.push(Effect::BuildPayload { height: self.height, proposer: self.me });
        }
    }

    /// Restores what this validator signed at `height` before a restart.
    fn replay_restored(&mut self, height: u64) {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.restored).into_iter().partition(|(h, _)| *h == height);
        self.restored = later.into_iter().filter(|(h, _)| *h > height).collect();
        for (_, record) in now {
            match record {
                wal::Record::Proposal(proposal) => {
                    self.restore_proposal(&proposal);
                    self.round.own_proposal = Some(proposal);
                }
                wal::Record::NewView(new_view) => {
                    self.restore_proposal(&new_view.proposal);
                    self.round.new_view = Some(new_view);
                }
                wal::Record::Prepare { vote, proposal } => {
                    self.restore_proposal(&proposal);
                    self.round.signed.insert((vote.view, PREPARE), vote.block);
                    self.round.tallies.entry((vote.view, PREPARE, vote.block)).or_default().push(vote.share());
                    self.round.own_prepare = Some(vote);
                }
                wal::Record::Commit { vote, prepares } => {
                    self.round.signed.insert((vote.view, COMMIT), vote.block);
                    self.round.tallies.entry((vote.view, COMMIT, vote.block)).or_default().push(vote.share());
                    if let Some(pre_prepare) = self.round.accepted.get(&vote.view).cloned() {
                        self.note_prepared(PreparedCertificate { pre_prepare, prepares });
                    }
                    self.round.voted = true;
                    self.round.own_commit = Some(vote);
                }
                wal::Record::ViewChange(vc) => {
                    self.view = self.view.max(vc.view);
                    self.changing = true;
                    self.round.view_change_floor = self.round.view_change_floor.max(vc.view);
                    self.record_view_change(vc.clone());
                    self.round.own_view_change = Some(vc);
                }
            }
        }
    }

    /// A proposal this validator signed or accepted before a restart: accepted again.
    fn restore_proposal(&mut self, proposal: &Proposal) {
        let pp = &proposal.pre_prepare;
        if pp.view >= self.view {
            self.view = pp.view;
            self.changing = false;
        }
        if pp.proposer == self.me {
            self.round.signed.insert((pp.view, PRE_PREPARE), pp.block);
        }
        self.round.voted = true;
        self.round.payloads.insert(pp.block, proposal.txs.clone());
        self.round.verdicts.insert(pp.block, true);
        self.round.accepted.insert(pp.view, pp.clone());
    }

    /// Signs `kind` for `block` in `view` unless it signed another block there; returns whether
    /// it may send it.
    fn may_sign(&mut self, view: u32, kind: u8, block: BlockId) -> bool {
        match self.round.signed.get(&(view, kind)) {
            Some(signed) => *signed == block,
            None => {
                self.round.signed.insert((view, kind), block);
                self.round.voted = true;
                true
            }
        }
    }

    fn on_message(&mut self, from: PublicKey, message: Message) {
        let height = message.height();
        if let Message::Committed(certificate) = message {
            return self.on_certificate(from, certificate);
        }
        if height == self.height + 1 {
            // A peer that committed first: its VIEW-CHANGE or PRE-PREPARE may carry this height's
            // certificate.
            match &message {
                Message::ViewChange(ViewChange { last_commit: Some(c), .. })
                | Message::PrePrepare(Proposal { view_proof: Some(c), .. }) => {
                    self.on_certificate(from, c.clone());
                }
                _ => {}
            }
            if self.early.len() < MAX_EARLY {
                self.early.push((from, message));
            }
            return;
        }
        if height + 1 == self.height || (height == self.height && self.round.decided.is_some()) {
            return self.answer_laggard(from, height);
        }
        if height != self.height || self.validators.is_none() {
            return;
        }
        match message {
            Message::PrePrepare(proposal) => self.on_proposal(from, proposal, false),
            Message::Prepare(vote) => self.on_vote(from, PREPARE, vote),
            Message::Commit(vote) => self.on_vote(from, COMMIT, vote),
            Message::ViewChange(vc) => self.on_view_change(from, vc),
            Message::NewView(new_view) => self.on_new_view(from, new_view),
            Message::Committed(_) => {}
        }
    }

    /// A peer still deciding `height`, which this replica committed: it gets the certificate
    /// once (its payload it has, or block sync brings).
    fn answer_laggard(&mut self, peer: PublicKey, height: u64) {
        let certificate =
            if height == self.height { self.round.decided.clone() } else { self.last_commit.clone() };
        if let Some(certificate) = certificate
            && certificate.message.height == height
            && self.round.answered.insert(peer)
        {
            let bytes = wire::encode(&Message::Committed(certificate));
            self.out.push(Effect::SendTo { to: peer, bytes });
        }
    }

    /// A commit certificate for this height commits, whatever its view.
    fn on_certificate(&mut self, from: PublicKey, certificate: CommitCertificate) {
        if certificate.message.height != self.height || self.round.decided.is_some() {
            return;
        }
        let Some(set) = self.validators.clone() else { return };
        if !self.valid_certificate(&certificate, self.height, &set) {
            return self.blame(from, format!("a commit certificate of height {} that does not hold", self.height));
        }
        self.decide(certificate);
    }

    /// Commits with `certificate` once the block's payload is here.
    fn decide(&mut self, certificate: CommitCertificate) {
        if self.round.decided.is_some() {
            return;
        }
        let Some(block) = certificate.message.block else { return };
        let Some(txs) = self.round.payloads.get(&block).cloned() else {
            self.round.pending_commit = Some(certificate);
            return;
        };
        self.stop_view_timer();
        self.failed = 0;
        self.round.decided = Some(certificate.clone());
        self.round.pending_commit = None;
        let proof = FinalityProof::quorum(Engine::Pbft, certificate);
        self.out.push(Effect::CommitBlock { height: self.height, block, txs, proof });
    }

    /// A payload arrived: a pending commit may complete.
    fn payload_arrived(&mut self, block: BlockId, txs: Vec<Vec<u8>>) {
        self.round.payloads.entry(block).or_insert(txs);
        if let Some(pending) = self.round.pending_commit.clone()
            && pending.message.block == Some(block)
        {
            self.decide(pending);
        }
    }

    fn rebroadcast(&mut self) {
        if self.round.decided.is_some() {
            return;
        }
        self.arm_rebroadcast();
        let mut messages = Vec::new();
        if self.changing {
            messages.extend(self.round.own_view_change.clone().map(Message::ViewChange));
        } else {
            match (&self.round.new_view, &self.round.own_proposal) {
                (Some(nv), _) if nv.proposal.pre_prepare.view == self.view && nv.proposal.pre_prepare.proposer == self.me => {
                    messages.push(Message::NewView(nv.clone()));
                }
                (_, Some(p)) if p.pre_prepare.view == self.view => messages.push(Message::PrePrepare(p.clone())),
                _ => {}
            }
            let current = |v: &Option<SignedVote>| v.clone().filter(|v| v.view == self.view);
            messages.extend(current(&self.round.own_prepare).map(Message::Prepare));
            messages.extend(current(&self.round.own_commit).map(Message::Commit));
        }
        for message in messages {
            self.send(&message);
        }
    }
}

/// A digest of `value`'s encoding under `domain`.
fn digest_of<T: serde::Serialize>(domain: &[u8], value: &T) -> Digest {
    let mut hasher = pyralog_crypto::Domain::ConsensusValue.hasher();
    hasher.update(domain);
    hasher.update(&postcard::to_allocvec(value).expect("serializes"));
    Digest(*hasher.finalize().as_bytes())
}

impl ConsensusCore for PbftEngine {
    fn handle(&mut self, _now: Millis, input: Input) -> Vec<Effect> {
        match input {
            Input::StartHeight { height, validators, last_commit } => {
                self.start_height(height, validators, last_commit)
            }
            Input::Message { from, bytes } => match wire::decode(&bytes) {
                Ok(message) => self.on_message(from, message),
                Err(err) => self.blame(from, err.to_string()),
            },
            Input::TimeoutFired(id) if id.height == self.height && self.validators.is_some() => match id.step {
                VIEW_TIMER if Some(id) == self.round.view_timer => {
                    self.round.view_timer = None;
                    self.on_view_timeout();
                }
                REBROADCAST_TIMER => self.rebroadcast(),
                _ => {}
            },
            Input::TimeoutFired(_) => {}
            Input::PayloadBuilt { height, txs } => {
                if height == self.height
                    && let Some(view) = self.round.building.take()
                {
                    self.on_payload_built(view, txs);
                }
            }
            Input::PayloadChecked { block, valid } => {
                self.round.verdicts.insert(block, valid);
                for (proposal, checked) in self.round.held.remove(&block).unwrap_or_default() {
                    if valid {
                        self.accept(proposal, checked);
                    }
                }
            }
            Input::BlockApplied { .. } => {}
        }
        std::mem::take(&mut self.out)
    }

    fn engine(&self) -> Engine {
        Engine::Pbft
    }

    /// What this validator signed at the heights not yet committed: it re-sends the same
    /// messages and signs nothing that conflicts with them.
    fn restore_wal(&mut self, entries: Vec<Vec<u8>>) -> Result<(), WalError> {
        for (index, bytes) in entries.into_iter().enumerate() {
            let (height, record) = wal::decode(&bytes).map_err(|reason| WalError { index, reason })?;
            self.restored.push((height, record));
        }
        Ok(())
    }
}

/// The signature share of `vote` signed by `signer`.
fn sign_vote(signer: &dyn Signer, chain_id: &str, kind: VoteKind, height: u64, view: u32, block: BlockId) -> SignedVote {
    let vote = crate::vote::Vote { chain_id: chain_id.into(), height, round: view, kind, block: Some(block) };
    SignedVote { height, view, block, signer: signer.public_key(), signature: signer.sign(&vote.signing_bytes()) }
}

fn kind_of(kind: u8) -> VoteKind {
    if kind == COMMIT { VoteKind::Precommit } else { VoteKind::Prevote }
}
