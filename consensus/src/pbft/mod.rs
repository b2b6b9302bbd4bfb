//! PBFT (Castro and Liskov, OSDI '99 / ACM TOCS 2002) as a sans-I/O [`ConsensusCore`], one height
//! at a time (the sequence number is the height: the next block's header carries the state root
//! after the previous one, so there is no pipelining).
//!
//! - **Views are global**: the primary of view `v` is the `v`-th step of CometBFT's
//!   proposer-priority rotation over the height's set ([`primary`]; with equal powers, validator
//!   `v mod n` of the canonical order). A height starts in
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
mod height;
pub mod new_view;
mod normal;
mod view_change;
mod wal;
pub mod wire;

/// Decodes one write-ahead-log entry as a restart reads it back, checks that it re-encodes to
/// an entry that decodes the same, and returns its height (for the fuzz targets: the WAL is
/// bytes on disk, which may be corrupt).
pub fn decode_wal_entry(bytes: &[u8]) -> Result<u64, String> {
    let (height, record) = wal::decode(bytes)?;
    let again = wal::decode(&wal::encode(height, &record))?;
    assert_eq!(again, (height, record), "a PBFT WAL entry re-encodes to itself");
    Ok(height)
}

#[cfg(feature = "test-utils")]
pub use adversary::PbftAdversary;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use pyralog_crypto::quorum::SignatureShare;
use pyralog_crypto::{Digest, PublicKey};

use crate::core::{ConsensusCore, Effect, Input, Millis, Signer, TimerId, WalError};
use crate::finality::Engine;
use crate::proposer::rotation;
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

/// PRE-PREPAREs and votes for views further ahead of this replica's are dropped: no honest
/// replica is that far ahead at one height, and a Byzantine one cannot make it keep a record for
/// every view it signs.
const MAX_VIEWS_AHEAD: u32 = 1024;

/// Messages kept for the next height per peer (one that committed first), at most: enough for
/// a view change's worth of its messages, and a flooding peer crowds out no one else.
const MAX_EARLY_PER_PEER: usize = 32;

/// PBFT's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PbftTimeouts {
    /// The view timer's base: how long a view may go without a commit before a view change.
    pub view: Duration,
    /// How often a replica re-sends its latest messages while the height is undecided (lost
    /// messages are otherwise only recovered by a view change); shorter than `view`, so a lost
    /// message is re-sent before the view changes over it.
    pub rebroadcast: Duration,
}

impl Default for PbftTimeouts {
    fn default() -> Self {
        PbftTimeouts { view: Duration::from_millis(2000), rebroadcast: Duration::from_millis(1000) }
    }
}

/// The primary of `view` in `validators`: CometBFT's proposer-priority rotation from a fresh
/// set, one step per view ([`rotation`] over `min(total power, 8n)` steps, then any validator
/// the steps missed), cycled. Views span heights, so the primary depends on the set and the view
/// only; with equal powers it is validator `view mod n` of the canonical order, and a heavier
/// validator leads proportionally more views, spread out.
pub fn primary(validators: &ValidatorSet, view: u32) -> PublicKey {
    let n = validators.validators().len() as u64;
    let steps = validators.total_power().min(8 * n) as usize;
    let order = rotation(validators, steps);
    order[view as usize % order.len()]
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
    /// Each validator's highest VIEW-CHANGE (a lower one is of no use: its signer has moved
    /// on, and no NEW-VIEW for that view can bring it back). One per validator, whatever a
    /// flooding peer sends.
    view_changes: HashMap<PublicKey, ViewChange>,
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
    /// A payload the app built for a NEW-VIEW, used if the VIEW-CHANGEs still show nothing
    /// prepared when it is announced.
    fresh_payload: Option<(u32, Vec<Vec<u8>>)>,
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
    /// Signatures and certificates already verified.
    verified: crate::verified::Verified,
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
            verified: crate::verified::Verified::new(8192),
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

    /// Whether `certificate` is a commit certificate (precommits of a quorum) of this chain at
    /// `height` under `validators`.
    fn valid_certificate(
        &self,
        certificate: &CommitCertificate,
        height: u64,
        validators: &ValidatorSet,
    ) -> bool {
        let vote = &certificate.message;
        if vote.chain_id != self.chain_id
            || vote.height != height
            || vote.kind != VoteKind::Precommit
            || vote.block.is_none()
        {
            return false;
        }
        let digest = digest_of(b"pbft verified certificate\0", certificate);
        self.verified.once(digest, || certificate.verify(validators.members(), QUORUM).is_ok())
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
            Input::StartHeight { height, validators, last_commit, .. } => {
                self.start_height(height, validators, last_commit)
            }
            Input::Message { from, bytes } => match wire::decode(&bytes) {
                Ok(message) => self.on_message(from, message),
                Err(err) => self.blame(from, err.to_string()),
            },
            Input::TimeoutFired(id) if id.height == self.height && self.validators.is_some() => match id.step
            {
                VIEW_TIMER if Some(id) == self.round.view_timer => {
                    self.round.view_timer = None;
                    self.on_view_timeout();
                }
                REBROADCAST_TIMER => self.rebroadcast(),
                _ => {}
            },
            // A BFT engine never asks for a seal.
            Input::TimeoutFired(_) | Input::Mined(_) => {}
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

    fn validator_key(&self) -> Option<PublicKey> {
        Some(self.me)
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

fn kind_of(kind: u8) -> VoteKind {
    if kind == COMMIT { VoteKind::Precommit } else { VoteKind::Prevote }
}
