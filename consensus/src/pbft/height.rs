//! A height's life in the engine: it starts (in the view its parent was committed in, with what
//! the WAL says this validator signed there), messages are routed by height (the next height's
//! kept, a peer still on the previous one answered with its certificate), and a commit
//! certificate decides it.

use pyralog_crypto::PublicKey;

use super::wire::{self, Message, PreparedCertificate, Proposal, SignedVote, ViewChange};
use super::{COMMIT, MAX_EARLY_PER_PEER, PRE_PREPARE, PREPARE, PbftEngine, Round, primary, wal};
use crate::core::Effect;
use crate::finality::{Engine, FinalityProof};
use crate::validators::ValidatorSet;
use crate::vote::{BlockId, CommitCertificate};

impl PbftEngine {
    pub(super) fn start_height(
        &mut self,
        height: u64,
        validators: ValidatorSet,
        last_commit: Option<FinalityProof>,
    ) {
        if self.height.checked_add(1) == Some(height) {
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
        self.arm_rebroadcast();
        if self.changing {
            // Restored in a view change: its timer runs once a quorum asks for the view.
            self.resend();
            self.check_view_changes();
        } else {
            self.arm_view_timer();
            if self.round.voted {
                self.resend();
                // A primary that went down between its PRE-PREPARE and its PREPARE.
                let own = self
                    .round
                    .new_view
                    .as_ref()
                    .map(|nv| nv.proposal.clone())
                    .or(self.round.own_proposal.clone());
                if let Some(proposal) = own.filter(|p| p.pre_prepare.view == self.view)
                    && !self.round.signed.contains_key(&(self.view, PREPARE))
                {
                    self.accept(proposal, true);
                }
            } else if primary(self.set(), self.view) == self.me {
                self.build(self.view);
            }
        }
        let early = std::mem::take(&mut self.early);
        for (from, message) in early.into_iter().filter(|(_, m)| m.height() == height) {
            self.on_message(from, message);
        }
    }

    /// Asks the app for a payload for `view`.
    pub(super) fn build(&mut self, view: u32) {
        if self.round.building.is_none() {
            self.round.building = Some(view);
            self.out.push(Effect::BuildPayload { height: self.height, proposer: self.me, on: None });
        }
    }

    /// Restores what this validator signed at `height` before a restart.
    fn replay_restored(&mut self, height: u64) {
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.restored).into_iter().partition(|(h, _)| *h == height);
        self.restored = later.into_iter().filter(|(h, _)| *h > height).collect();
        if !now.is_empty() {
            // Where it was: the view of what it signed last (its views only rose at a height),
            // not the view the height would start in now.
            self.view = 0;
        }
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
                    self.count_vote(PREPARE, vote.clone());
                    self.round.own_prepare = Some(vote);
                }
                wal::Record::Commit { vote, prepares } => {
                    self.round.signed.insert((vote.view, COMMIT), vote.block);
                    self.count_vote(COMMIT, vote.clone());
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
        // Signed by the view's primary: a conflicting one proves its equivocation.
        self.round.seen_proposals.entry((pp.view, pp.proposer)).or_insert_with(|| pp.clone());
        self.round.voted = true;
        self.round.payloads.insert(pp.block, proposal.txs.clone());
        self.round.verdicts.insert(pp.block, true);
        self.round.accepted.insert(pp.view, pp.clone());
    }

    /// Signs `kind` for `block` in `view` unless it signed another block there; returns whether
    /// it may send it.
    pub(super) fn may_sign(&mut self, view: u32, kind: u8, block: BlockId) -> bool {
        // A node outside the height's set (a follower, a validator the set dropped) does not vote.
        if self.set().power_of(&self.me).is_none() {
            return false;
        }
        match self.round.signed.get(&(view, kind)) {
            Some(signed) => *signed == block,
            None => {
                self.round.signed.insert((view, kind), block);
                self.round.voted = true;
                true
            }
        }
    }

    pub(super) fn on_message(&mut self, from: PublicKey, message: Message) {
        let height = message.height();
        if let Message::Committed(certificate) = message {
            return self.on_certificate(from, certificate);
        }
        if Some(height) == self.height.checked_add(1) {
            // A peer that committed first: its VIEW-CHANGE or PRE-PREPARE may carry this height's
            // certificate.
            match &message {
                Message::ViewChange(ViewChange { last_commit: Some(c), .. })
                | Message::PrePrepare(Proposal { view_proof: Some(c), .. }) => {
                    self.on_certificate(from, c.clone());
                }
                _ => {}
            }
            if self.early.iter().filter(|(peer, _)| *peer == from).count() < MAX_EARLY_PER_PEER {
                self.early.push((from, message));
            }
            return;
        }
        // A peer still on a height this replica decided, whose view timer ran out (late votes
        // of a peer that decides a moment later are no sign of being stuck: the next
        // PRE-PREPARE carries the certificate to those).
        let decided = height.checked_add(1) == Some(self.height)
            || (height == self.height && self.round.decided.is_some());
        if decided {
            if matches!(message, Message::ViewChange(_)) {
                self.answer_laggard(from, height);
            }
            return;
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
            return self
                .blame(from, format!("a commit certificate of height {} that does not hold", self.height));
        }
        self.decide(certificate);
    }

    /// Commits with `certificate` once the block's payload is here.
    pub(super) fn decide(&mut self, certificate: CommitCertificate) {
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
    pub(super) fn payload_arrived(&mut self, block: BlockId, txs: Vec<Vec<u8>>) {
        self.round.payloads.entry(block).or_insert(txs);
        if let Some(pending) = self.round.pending_commit.clone()
            && pending.message.block == Some(block)
        {
            self.decide(pending);
        }
    }

    pub(super) fn rebroadcast(&mut self) {
        if self.round.decided.is_some() {
            return;
        }
        self.arm_rebroadcast();
        self.resend();
    }

    /// Sends this replica's latest messages of the current view again (after a restart, and
    /// now and then while the height is undecided: lost messages are otherwise only recovered
    /// by a view change).
    fn resend(&mut self) {
        let mut messages = Vec::new();
        if self.changing {
            messages.extend(self.round.own_view_change.clone().map(Message::ViewChange));
        } else {
            match (&self.round.new_view, &self.round.own_proposal) {
                (Some(nv), _)
                    if nv.proposal.pre_prepare.view == self.view
                        && nv.proposal.pre_prepare.proposer == self.me =>
                {
                    messages.push(Message::NewView(nv.clone()));
                }
                (_, Some(p)) if p.pre_prepare.view == self.view => {
                    messages.push(Message::PrePrepare(p.clone()))
                }
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
