//! View changes: VIEW-CHANGE on a timeout or when more than 1/3 of the power has moved on,
//! NEW-VIEW from the new primary, checked by every replica before it enters the view.

use pyralog_crypto::PublicKey;

use super::new_view::{self, Selection};
use super::wire::{Message, NewView, ViewChange};
use super::{PbftEngine, digest_of, primary, wal};

impl PbftEngine {
    /// The view went by without a commit: ask for the next one.
    pub(super) fn on_view_timeout(&mut self) {
        if self.round.decided.is_some() {
            return;
        }
        self.failed += 1;
        self.send_view_change(self.view.saturating_add(1));
    }

    /// Signs and sends VIEW-CHANGE for `view` (at least the current view).
    pub(super) fn send_view_change(&mut self, view: u32) {
        let prepared = self.round.prepared.clone();
        let payload = prepared.as_ref().and_then(|p| self.round.payloads.get(&p.block()).cloned());
        let last_commit = self.last_commit.clone();
        let vc = ViewChange::sign(
            &*self.signer,
            &self.chain_id,
            self.height,
            view,
            prepared,
            payload,
            last_commit,
        );
        self.view = view;
        self.changing = true;
        self.round.view_change_floor = self.round.view_change_floor.max(view);
        self.round.building = None;
        self.stop_view_timer();
        self.persist(&wal::Record::ViewChange(vc.clone()));
        self.round.own_view_change = Some(vc.clone());
        self.send(&Message::ViewChange(vc.clone()));
        self.record_view_change(vc);
        self.check_view_changes();
    }

    /// A peer's VIEW-CHANGE.
    pub(super) fn on_view_change(&mut self, from: PublicKey, vc: ViewChange) {
        if let Err(reason) = self.verify_view_change(&vc) {
            return self.blame(from, reason);
        }
        if let (Some(txs), Some(prepared)) = (vc.payload.clone(), vc.prepared.as_ref()) {
            self.payload_arrived(prepared.block(), txs);
        }
        if self.round.decided.is_some() {
            return;
        }
        // A replica behind this one: the NEW-VIEW that brought this one here brings it too.
        let behind = vc.view < self.view || (vc.view == self.view && !self.changing);
        if behind
            && let Some(new_view) = self.round.new_view.clone()
            && new_view.proposal.pre_prepare.view == self.view
        {
            let bytes = super::wire::encode(&Message::NewView(new_view));
            self.out.push(crate::core::Effect::SendTo { to: from, bytes });
        }
        self.record_view_change(vc);
        self.join_higher_view();
        self.check_view_changes();
    }

    /// Checks a VIEW-CHANGE once (its signature and prepared certificate).
    pub(super) fn verify_view_change(&self, vc: &ViewChange) -> Result<(), String> {
        let digest = digest_of(b"pbft verified view change\0", &vc.stripped());
        let mut result = Ok(());
        let set = self.set();
        let valid = self.verified.once(digest, || {
            result = vc.verify(&self.chain_id, self.height, set);
            result.is_ok()
        });
        if valid
            && let (Some(txs), Some(prepared)) = (&vc.payload, &vc.prepared)
            && crate::vote::payload_id(txs) != prepared.block()
        {
            return Err("the VIEW-CHANGE's payload is not the prepared block's".into());
        }
        result
    }

    pub(super) fn record_view_change(&mut self, vc: ViewChange) {
        match self.round.view_changes.get(&vc.signer) {
            Some(known) if known.view >= vc.view => {}
            _ => {
                self.round.view_changes.insert(vc.signer, vc);
            }
        }
    }

    /// VIEW-CHANGEs of more than 1/3 of the power for views this replica has not reached (or
    /// for its own view, where it has accepted no PRE-PREPARE): it joins the highest view that
    /// more than 1/3 of the power asks for, at least.
    fn join_higher_view(&mut self) {
        if self.round.decided.is_some() {
            return;
        }
        // VIEW-CHANGEs for its own view move it only while it is there by no NEW-VIEW and has
        // accepted no PRE-PREPARE (others want the view installed; it can help), and it never
        // asks twice for one view.
        let installed =
            self.round.new_view.as_ref().is_some_and(|nv| nv.proposal.pre_prepare.view == self.view);
        let here = if self.changing || installed || self.round.accepted.contains_key(&self.view) {
            i64::from(self.view)
        } else {
            i64::from(self.view) - 1
        };
        let asked = self.round.own_view_change.as_ref().map_or(-1, |vc| i64::from(vc.view));
        let level = here.max(asked);
        let set = self.set();
        let mut ahead: Vec<(u32, u64)> = self
            .round
            .view_changes
            .iter()
            .filter(|(signer, vc)| **signer != self.me && i64::from(vc.view) > level)
            .map(|(signer, vc)| (vc.view, set.power_of(signer).unwrap_or(0)))
            .collect();
        ahead.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        let mut power = 0;
        let mut join = None;
        for (view, weight) in ahead {
            power += weight;
            if set.is_one_third(power) {
                join = Some(view);
                break;
            }
        }
        if let Some(view) = join {
            self.failed += 1;
            self.send_view_change(view);
        }
    }

    /// In a view change: runs the timer once more than 2/3 of the power asks for this view or a
    /// higher one, and, as the new primary with VIEW-CHANGEs of a quorum, announces the view.
    pub(super) fn check_view_changes(&mut self) {
        if !self.changing || self.round.decided.is_some() {
            return;
        }
        let view = self.view;
        let set = self.set().clone();
        let asking: u64 = self
            .round
            .view_changes
            .iter()
            .filter(|(_, vc)| vc.view >= view)
            .filter_map(|(signer, _)| set.power_of(signer))
            .sum();
        if set.is_quorum(asking) && self.round.change_timer_for != Some(view) {
            self.round.change_timer_for = Some(view);
            self.arm_view_timer();
        }
        if primary(&set, view) != self.me || self.round.building.is_some() {
            return;
        }
        let here: Vec<&ViewChange> = self.round.view_changes.values().filter(|vc| vc.view == view).collect();
        let power: u64 = here.iter().filter_map(|vc| set.power_of(&vc.signer)).sum();
        if !set.is_quorum(power) {
            return;
        }
        let highest = here.iter().filter_map(|vc| vc.prepared.as_ref()).max_by_key(|p| p.view()).cloned();
        // Decided on the VIEW-CHANGEs held now, which are the ones the NEW-VIEW carries.
        match highest {
            Some(prepared) => match self.round.payloads.get(&prepared.block()).cloned() {
                Some(txs) => self.announce_new_view(view, txs, i64::from(prepared.view())),
                None => tracing::debug!(view, "waiting for the prepared block's payload"),
            },
            None => match self.round.fresh_payload.take() {
                Some((built_for, txs)) if built_for == view => self.announce_new_view(view, txs, -1),
                _ => self.build(view),
            },
        }
    }

    /// Sends NEW-VIEW for `view` with `txs` (the prepared block's payload, or a fresh one) and
    /// enters the view.
    pub(super) fn announce_new_view(&mut self, view: u32, txs: Vec<Vec<u8>>, prepared_view: i64) {
        let set = self.set();
        let view_changes: Vec<ViewChange> = self
            .round
            .view_changes
            .values()
            .filter(|vc| vc.view == view && set.power_of(&vc.signer).is_some())
            .map(ViewChange::stripped)
            .collect();
        let Some(proposal) = self.sign_proposal(view, prepared_view, txs) else { return };
        let new_view = NewView { view_changes, proposal };
        self.persist(&wal::Record::NewView(new_view.clone()));
        self.send(&Message::NewView(new_view.clone()));
        self.enter_new_view(new_view, true);
    }

    /// A NEW-VIEW: checked, then the view is entered and its PRE-PREPARE handled.
    pub(super) fn on_new_view(&mut self, from: PublicKey, new_view: NewView) {
        let view = new_view.proposal.pre_prepare.view;
        if self.round.decided.is_some()
            || view < self.view
            || (view == self.view && !self.changing && self.round.accepted.contains_key(&view))
            || self.round.new_view.as_ref().is_some_and(|nv| nv.proposal.pre_prepare.view == view)
        {
            return;
        }
        let selection = if self.check_new_views {
            let set = self.set().clone();
            let mut check_vc = |vc: &ViewChange| self.verify_view_change(vc);
            match new_view::check(&self.chain_id, self.height, view, &set, &new_view, &mut check_vc) {
                Ok(selection) => selection,
                Err(err) => return self.blame(from, err.to_string()),
            }
        } else {
            Selection::Fresh
        };
        let reproposed = matches!(selection, Selection::Reproposed { .. });
        for vc in &new_view.view_changes {
            self.record_view_change(vc.clone());
        }
        self.enter_new_view(new_view, reproposed);
    }

    /// Enters the NEW-VIEW's view and handles its PRE-PREPARE (`trusted`: no app check, as this
    /// replica's own or a block a quorum prepared).
    fn enter_new_view(&mut self, new_view: NewView, trusted: bool) {
        let proposal = new_view.proposal.clone();
        self.view = proposal.pre_prepare.view;
        self.changing = false;
        self.round.new_view = Some(new_view);
        self.arm_view_timer();
        if trusted {
            self.round.verdicts.insert(proposal.pre_prepare.block, true);
        }
        self.on_proposal(self.me, proposal, true);
    }
}
