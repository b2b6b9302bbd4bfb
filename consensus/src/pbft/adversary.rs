//! PBFT's Byzantine behaviours for the simulator: twin PRE-PREPAREs and votes for them, validly
//! signed; broken signatures; and the view-change storm: VIEW-CHANGEs for random views and
//! forged NEW-VIEWs (wrong primary, too little power, the prepared block left out).

use pyralog_crypto::Keypair;

use super::wire::{self, Message, NewView, Proposal, SignedVote, ViewChange};
use crate::sim::{Adversary, SimRng};
use crate::vote::{BlockId, VoteKind, payload_id};

/// PBFT's [`Adversary`] on the chain `chain_id`.
#[derive(Debug, Clone)]
pub struct PbftAdversary {
    chain_id: String,
}

impl PbftAdversary {
    /// The adversary for messages of `chain_id`.
    pub fn new(chain_id: impl Into<String>) -> Self {
        PbftAdversary { chain_id: chain_id.into() }
    }

    fn twin(&self, height: u64, view: u32) -> Vec<Vec<u8>> {
        vec![format!("conflicting h{height} v{view}").into_bytes()]
    }

    /// A PRE-PREPARE of `txs` at `(height, view)` signed by `key`.
    fn propose(
        &self,
        key: &Keypair,
        height: u64,
        view: u32,
        prepared_view: i64,
        txs: Vec<Vec<u8>>,
    ) -> Proposal {
        Proposal::sign(key, &self.chain_id, height, view, prepared_view, txs)
    }

    fn vote(&self, key: &Keypair, kind: VoteKind, height: u64, view: u32, block: BlockId) -> SignedVote {
        SignedVote::sign(key, &self.chain_id, kind, height, view, block)
    }

    fn view_change(&self, key: &Keypair, height: u64, view: u32) -> ViewChange {
        ViewChange::sign(key, &self.chain_id, height, view, None, None, None)
    }
}

/// The height and view a message is at.
fn position(message: &Message) -> (u64, u32) {
    match message {
        Message::PrePrepare(p) => (p.pre_prepare.height, p.pre_prepare.view),
        Message::Prepare(v) | Message::Commit(v) => (v.height, v.view),
        Message::ViewChange(vc) => (vc.height, vc.view),
        Message::NewView(nv) => (nv.proposal.pre_prepare.height, nv.proposal.pre_prepare.view),
        Message::Committed(c) => (c.message.height, c.message.round),
    }
}

impl Adversary for PbftAdversary {
    /// The twin PRE-PREPARE (or fresh NEW-VIEW) at the same height and view, or a vote for it.
    fn conflicting(&self, key: &Keypair, bytes: &[u8]) -> Option<Vec<u8>> {
        let message = match wire::decode(bytes).ok()? {
            Message::PrePrepare(p) => {
                let pp = &p.pre_prepare;
                let mut twin =
                    self.propose(key, pp.height, pp.view, pp.prepared_view, self.twin(pp.height, pp.view));
                twin.view_proof = p.view_proof;
                Message::PrePrepare(twin)
            }
            Message::Prepare(v) => {
                let block = payload_id(&self.twin(v.height, v.view));
                Message::Prepare(self.vote(key, VoteKind::Prevote, v.height, v.view, block))
            }
            Message::Commit(v) => {
                let block = payload_id(&self.twin(v.height, v.view));
                Message::Commit(self.vote(key, VoteKind::Precommit, v.height, v.view, block))
            }
            Message::NewView(nv) if nv.proposal.pre_prepare.prepared_view < 0 => {
                let pp = &nv.proposal.pre_prepare;
                let proposal = self.propose(key, pp.height, pp.view, -1, self.twin(pp.height, pp.view));
                Message::NewView(NewView { view_changes: nv.view_changes, proposal })
            }
            _ => return None,
        };
        Some(wire::encode(&message))
    }

    fn is_proposal(&self, bytes: &[u8]) -> bool {
        matches!(wire::decode(bytes), Ok(Message::PrePrepare(_) | Message::NewView(_)))
    }

    /// No COMMITs or commit certificates, and PRE-PREPAREs and VIEW-CHANGEs without the
    /// previous height's certificate.
    fn withheld(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let message = match wire::decode(bytes).ok()? {
            Message::Commit(_) | Message::Committed(_) => return None,
            Message::PrePrepare(mut p) => {
                p.view_proof = None;
                Message::PrePrepare(p)
            }
            Message::ViewChange(mut vc) => {
                vc.last_commit = None;
                Message::ViewChange(vc)
            }
            other => other,
        };
        Some(wire::encode(&message))
    }

    fn is_view_change(&self, bytes: &[u8]) -> bool {
        matches!(wire::decode(bytes), Ok(Message::ViewChange(_) | Message::NewView(_)))
    }

    fn is_commit(&self, bytes: &[u8]) -> bool {
        matches!(wire::decode(bytes), Ok(Message::Commit(_) | Message::Committed(_)))
    }

    fn break_signature(&self, bytes: &[u8]) -> Vec<u8> {
        let flip = |s: &mut pyralog_crypto::Signature| {
            let mut raw = s.to_bytes();
            raw[0] ^= 0x01;
            *s = pyralog_crypto::Signature::from_bytes(&raw);
        };
        let Ok(mut message) = wire::decode(bytes) else { return bytes.to_vec() };
        match &mut message {
            Message::PrePrepare(p) => flip(&mut p.pre_prepare.signature),
            Message::Prepare(v) | Message::Commit(v) => flip(&mut v.signature),
            Message::ViewChange(vc) => flip(&mut vc.signature),
            Message::NewView(nv) => flip(&mut nv.proposal.pre_prepare.signature),
            Message::Committed(c) => {
                if let Some(share) = c.signatures.first_mut() {
                    flip(&mut share.signature);
                }
            }
        }
        wire::encode(&message)
    }

    /// Beside each message: VIEW-CHANGEs for random higher views and a NEW-VIEW for one of them
    /// signed by this validator (most likely not its primary, and with too little power); beside
    /// its own NEW-VIEWs, copies with the prepared block left out and with one VIEW-CHANGE only.
    fn storm(&self, key: &Keypair, bytes: &[u8], rng: &mut SimRng) -> Vec<Vec<u8>> {
        let Ok(message) = wire::decode(bytes) else { return Vec::new() };
        let (height, view) = position(&message);
        let mut forged = Vec::new();
        for _ in 0..2 {
            let to = view + 1 + rng.below(50) as u32;
            forged.push(Message::ViewChange(self.view_change(key, height, to)));
        }
        let to = view + 1 + rng.below(50) as u32;
        let proposal = self.propose(key, height, to, -1, self.twin(height, to));
        forged.push(Message::NewView(NewView {
            view_changes: vec![self.view_change(key, height, to)],
            proposal,
        }));
        if let Message::NewView(nv) = &message {
            let pp = &nv.proposal.pre_prepare;
            if pp.prepared_view >= 0 {
                let omitted = self.propose(key, height, pp.view, -1, self.twin(height, pp.view));
                forged.push(Message::NewView(NewView {
                    view_changes: nv.view_changes.clone(),
                    proposal: omitted,
                }));
            }
            let few = nv.view_changes.iter().take(1).cloned().collect();
            forged.push(Message::NewView(NewView { view_changes: few, proposal: nv.proposal.clone() }));
        }
        forged.iter().map(wire::encode).collect()
    }
}
