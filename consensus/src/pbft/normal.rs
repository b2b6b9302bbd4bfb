//! The normal case: PRE-PREPARE, PREPARE, COMMIT, and the equivocations they can prove.

use pyralog_crypto::PublicKey;
use pyralog_crypto::quorum::Signable;

use super::wire::{Message, PrePrepare, PreparedCertificate, Proposal, SignedVote};
use super::{COMMIT, PRE_PREPARE, PREPARE, PbftEngine, kind_of, primary, wal};
use crate::core::Effect;
use crate::vote::{BlockId, DuplicateProposal, DuplicateVote, Evidence, payload_id};

impl PbftEngine {
    /// Signs a PRE-PREPARE of `txs` in `view` (re-proposing from `prepared_view`, or -1).
    pub(super) fn sign_proposal(
        &mut self,
        view: u32,
        prepared_view: i64,
        txs: Vec<Vec<u8>>,
    ) -> Option<Proposal> {
        if !self.may_sign(view, PRE_PREPARE, payload_id(&txs)) {
            return None;
        }
        Some(Proposal::sign(&*self.signer, &self.chain_id, self.height, view, prepared_view, txs))
    }

    /// The app built the payload asked for `view`: a PRE-PREPARE, or a NEW-VIEW's.
    pub(super) fn on_payload_built(&mut self, view: u32, txs: Vec<Vec<u8>>) {
        if view != self.view || self.round.decided.is_some() {
            return;
        }
        if self.changing {
            // For a NEW-VIEW: announced if the VIEW-CHANGEs held then still show nothing
            // prepared (one that arrived meanwhile may).
            self.round.fresh_payload = Some((view, txs));
            return self.check_view_changes();
        }
        if primary(self.set(), view) != self.me || self.round.accepted.contains_key(&view) {
            return;
        }
        let Some(mut proposal) = self.sign_proposal(view, -1, txs) else { return };
        // Replicas that start the height in another view follow this one on the previous
        // height's commit certificate of this view.
        proposal.view_proof = self.last_commit.clone().filter(|c| c.message.round == view);
        self.persist(&wal::Record::Proposal(proposal.clone()));
        self.round.own_proposal = Some(proposal.clone());
        self.send(&Message::PrePrepare(proposal.clone()));
        self.round.verdicts.insert(proposal.pre_prepare.block, true);
        self.on_proposal(self.me, proposal, true);
    }

    /// A PRE-PREPARE, alone or from a NEW-VIEW this replica checked (`checked`).
    pub(super) fn on_proposal(&mut self, from: PublicKey, proposal: Proposal, checked: bool) {
        let pp = &proposal.pre_prepare;
        if self.set().power_of(&pp.proposer).is_none()
            || pp.view > self.view.saturating_add(super::MAX_VIEWS_AHEAD)
        {
            return;
        }
        if !self.verified.signature(&pp.proposer, &pp.signing_bytes(&self.chain_id), &pp.signature) {
            return self.blame(from, format!("a PRE-PREPARE of view {} with a bad signature", pp.view));
        }
        if payload_id(&proposal.txs) != pp.block {
            return self
                .blame(from, format!("a PRE-PREPARE of view {} whose payload is not its block", pp.view));
        }
        self.check_proposal_equivocation(pp);
        // A checked NEW-VIEW's PRE-PREPARE is its primary's already.
        if !checked && pp.proposer != primary(self.set(), pp.view) {
            tracing::debug!(view = pp.view, proposer = %pp.proposer, "PRE-PREPARE not from the view's primary");
            return;
        }
        if !checked && !self.may_accept_alone(&proposal) {
            return;
        }
        let block = pp.block;
        match self.round.verdicts.get(&block) {
            Some(true) => self.accept(proposal, checked),
            Some(false) => {}
            None => {
                let first = !self.round.held.contains_key(&block);
                self.round.held.entry(block).or_default().push((proposal.clone(), checked));
                if first {
                    self.out.push(Effect::CheckPayload {
                        height: self.height,
                        block,
                        txs: proposal.txs,
                        on: None,
                    });
                }
            }
        }
    }

    /// Whether a PRE-PREPARE outside a NEW-VIEW may be accepted: in the current view before any
    /// other, or, while this replica has voted for nothing at the height, in the view of the
    /// previous height's commit certificate it comes with (no lower than its VIEW-CHANGEs).
    fn may_accept_alone(&self, proposal: &Proposal) -> bool {
        let pp = &proposal.pre_prepare;
        if self.round.decided.is_some() {
            return false;
        }
        if let Some(accepted) = self.round.accepted.get(&pp.view) {
            return accepted == pp && pp.view == self.view && !self.changing;
        }
        if self.round.voted || pp.view < self.round.view_change_floor {
            return false;
        }
        pp.view == self.view
            || proposal
                .view_proof
                .as_ref()
                .is_some_and(|c| c.message.round == pp.view && self.valid_previous_certificate(c))
    }

    /// Accepts a proposal the app found valid (or a checked NEW-VIEW carried): PREPARE it.
    pub(super) fn accept(&mut self, proposal: Proposal, checked: bool) {
        let pp = proposal.pre_prepare.clone();
        if self.round.decided.is_some() || (!checked && !self.may_accept_alone(&proposal)) {
            return;
        }
        // A checked proposal (own, or a NEW-VIEW's) only in the view it was checked for: the
        // app's verdict may come back after this replica moved on to a VIEW-CHANGE.
        if checked && (pp.view != self.view || self.changing || pp.view < self.round.view_change_floor) {
            return;
        }
        // One PRE-PREPARE per view, the first accepted.
        if self.round.accepted.get(&pp.view).is_some_and(|accepted| *accepted != pp) {
            return;
        }
        if pp.view != self.view || self.changing {
            // Following a primary into its view (see may_accept_alone).
            self.view = pp.view;
            self.changing = false;
            self.arm_view_timer();
        }
        if pp.view != self.view {
            return;
        }
        self.round.accepted.insert(pp.view, pp.clone());
        self.payload_arrived(pp.block, proposal.txs.clone());
        if self.round.decided.is_some() {
            return;
        }
        if self.may_sign(pp.view, PREPARE, pp.block) {
            let vote = SignedVote::sign(
                &*self.signer,
                &self.chain_id,
                kind_of(PREPARE),
                self.height,
                pp.view,
                pp.block,
            );
            if self.round.own_prepare.as_ref() != Some(&vote) {
                self.persist(&wal::Record::Prepare { vote: vote.clone(), proposal });
            }
            self.round.own_prepare = Some(vote.clone());
            self.send(&Message::Prepare(vote.clone()));
            self.count_vote(PREPARE, vote);
        }
        self.check_prepared(pp.view, pp.block);
    }

    /// A peer's PREPARE or COMMIT.
    pub(super) fn on_vote(&mut self, from: PublicKey, kind: u8, vote: SignedVote) {
        if self.set().power_of(&vote.signer).is_none()
            || vote.view > self.view.saturating_add(super::MAX_VIEWS_AHEAD)
        {
            return;
        }
        let bytes = vote.vote(&self.chain_id, kind_of(kind)).signing_bytes();
        if !self.verified.signature(&vote.signer, &bytes, &vote.signature) {
            let what = if kind == COMMIT { "COMMIT" } else { "PREPARE" };
            return self.blame(from, format!("a {what} of view {} with a bad signature", vote.view));
        }
        let (view, block) = (vote.view, vote.block);
        self.count_vote(kind, vote);
        if kind == PREPARE {
            self.check_prepared(view, block);
        } else {
            self.check_committed(view, block);
        }
    }

    /// Tallies a verified vote (once per signer); proves an equivocation if the signer voted for
    /// another block in the same view.
    pub(super) fn count_vote(&mut self, kind: u8, vote: SignedVote) {
        // Only the height's validators count (a certificate holding anyone else's share would not
        // verify against the set).
        if self.set().power_of(&vote.signer).is_none() {
            return;
        }
        let key = (vote.view, kind, vote.signer);
        match self.round.votes.get(&key) {
            Some(first) if first.block != vote.block => {
                if self.round.reported.insert(key) {
                    let evidence = DuplicateVote {
                        validator: vote.signer,
                        first: first.vote(&self.chain_id, kind_of(kind)),
                        first_signature: first.signature,
                        second: vote.vote(&self.chain_id, kind_of(kind)),
                        second_signature: vote.signature,
                    };
                    self.out.push(Effect::Evidence(Box::new(Evidence::DuplicateVote(evidence))));
                }
                return;
            }
            Some(_) => return,
            None => {
                self.round.votes.insert(key, vote.clone());
            }
        }
        self.round.tallies.entry((vote.view, kind, vote.block)).or_default().push(vote.share());
    }

    fn check_proposal_equivocation(&mut self, pp: &PrePrepare) {
        let key = (pp.view, pp.proposer);
        match self.round.seen_proposals.get(&key) {
            Some(first) if first.block != pp.block => {
                if self.round.reported.insert((pp.view, PRE_PREPARE, pp.proposer)) {
                    let evidence = DuplicateProposal {
                        validator: pp.proposer,
                        first: first.header(&self.chain_id),
                        first_signature: first.signature,
                        second: pp.header(&self.chain_id),
                        second_signature: pp.signature,
                    };
                    self.out.push(Effect::Evidence(Box::new(Evidence::DuplicateProposal(evidence))));
                }
            }
            Some(_) => {}
            None => {
                self.round.seen_proposals.insert(key, pp.clone());
            }
        }
    }

    fn power(&self, kind: u8, view: u32, block: BlockId) -> u64 {
        let set = self.set();
        let shares = self.round.tallies.get(&(view, kind, block));
        shares.into_iter().flatten().filter_map(|s| set.power_of(&s.signer)).sum()
    }

    /// Prepared: the accepted PRE-PREPARE and PREPAREs of a quorum for it. Then COMMIT.
    fn check_prepared(&mut self, view: u32, block: BlockId) {
        let Some(pre_prepare) = self.round.accepted.get(&view).cloned() else { return };
        if pre_prepare.block != block || !self.set().is_quorum(self.power(PREPARE, view, block)) {
            return;
        }
        let prepares = self.round.tallies.get(&(view, PREPARE, block)).cloned().unwrap_or_default();
        self.note_prepared(PreparedCertificate { pre_prepare, prepares: prepares.clone() });
        if view == self.view
            && !self.changing
            && self.round.decided.is_none()
            && self.may_sign(view, COMMIT, block)
        {
            let vote =
                SignedVote::sign(&*self.signer, &self.chain_id, kind_of(COMMIT), self.height, view, block);
            if self.round.own_commit.as_ref() != Some(&vote) {
                self.persist(&wal::Record::Commit { vote: vote.clone(), prepares });
                self.round.own_commit = Some(vote.clone());
                self.send(&Message::Commit(vote.clone()));
                self.count_vote(COMMIT, vote);
            }
        }
        self.check_committed(view, block);
    }

    /// Keeps `certificate` if it is the highest prepared one.
    pub(super) fn note_prepared(&mut self, certificate: PreparedCertificate) {
        if self.round.prepared.as_ref().is_none_or(|p| p.view() < certificate.view()) {
            self.round.prepared = Some(certificate);
        }
    }

    /// COMMITs of a quorum for one block in one view: the commit certificate.
    fn check_committed(&mut self, view: u32, block: BlockId) {
        if self.round.decided.is_some() || !self.set().is_quorum(self.power(COMMIT, view, block)) {
            return;
        }
        let signatures = self.round.tallies.get(&(view, COMMIT, block)).cloned().unwrap_or_default();
        let message = sign_vote_message(&self.chain_id, self.height, view, block);
        self.decide(crate::vote::CommitCertificate { message, signatures });
    }
}

/// The precommit a commit certificate signs.
fn sign_vote_message(chain_id: &str, height: u64, view: u32, block: BlockId) -> crate::vote::Vote {
    crate::vote::Vote {
        chain_id: chain_id.into(),
        height,
        round: view,
        kind: crate::vote::VoteKind::Precommit,
        block: Some(block),
    }
}
