//! The PBFT engine on its own, fed crafted messages: the NEW-VIEW check refuses each kind of
//! forgery with its typed error, the wire refuses bad bytes, bad signatures blame their sender,
//! and a restarted validator re-sends what its WAL holds and signs nothing that conflicts.

use pyralog_consensus::proposer::ProposerPriorities;
use std::time::Duration;

use proptest::prelude::*;
use pyralog_consensus::core::{ConsensusCore, Effect, Input};
use pyralog_consensus::pbft::new_view::{self, NewViewError, Selection};
use pyralog_consensus::pbft::wire::{
    self, Message, NewView, PreparedCertificate, Proposal, SignedVote, ViewChange, WireError,
};
use pyralog_consensus::pbft::{PbftEngine, PbftTimeouts, primary};
use pyralog_consensus::vote::{VoteKind, payload_id};
use pyralog_consensus::{Validator, ValidatorSet};
use pyralog_crypto::Keypair;

const CHAIN: &str = "pyralog-pbft-test";

struct Net {
    keys: Vec<Keypair>,
    set: ValidatorSet,
}

impl Net {
    fn new(n: u8) -> Net {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_secret(&[i + 1; 32])).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
        Net { keys, set }
    }

    fn key_of_primary(&self, view: u32) -> &Keypair {
        let key = primary(&self.set, view);
        self.keys.iter().find(|k| k.public() == key).unwrap()
    }

    fn proposal(&self, signer: &Keypair, height: u64, view: u32, prepared_view: i64, tag: &str) -> Proposal {
        Proposal::sign(signer, CHAIN, height, view, prepared_view, vec![tag.as_bytes().to_vec()])
    }

    fn vote(
        &self,
        signer: &Keypair,
        kind: VoteKind,
        height: u64,
        view: u32,
        proposal: &Proposal,
    ) -> SignedVote {
        SignedVote::sign(signer, CHAIN, kind, height, view, proposal.pre_prepare.block)
    }

    /// A prepared certificate of `proposal` (PREPAREs of validators 0..3).
    fn prepared(&self, proposal: &Proposal) -> PreparedCertificate {
        let (height, view) = (proposal.pre_prepare.height, proposal.pre_prepare.view);
        let prepares = self.keys[..3]
            .iter()
            .map(|k| self.vote(k, VoteKind::Prevote, height, view, proposal).share())
            .collect();
        PreparedCertificate { pre_prepare: proposal.pre_prepare.clone(), prepares }
    }

    fn view_change(
        &self,
        signer: &Keypair,
        height: u64,
        view: u32,
        prepared: Option<PreparedCertificate>,
    ) -> ViewChange {
        ViewChange::sign(signer, CHAIN, height, view, prepared, None, None)
    }

    fn check(&self, nv: &NewView, view: u32) -> Result<Selection, NewViewError> {
        let set = self.set.clone();
        let mut check_vc = |vc: &ViewChange| vc.verify(CHAIN, 1, &set);
        new_view::check(CHAIN, 1, view, &self.set, nv, &mut check_vc)
    }
}

#[test]
fn the_new_view_check_refuses_every_forgery_with_its_reason() {
    let net = Net::new(4);
    let old = net.proposal(net.key_of_primary(0), 1, 0, -1, "prepared in view 0");
    let prepared = net.prepared(&old);
    let new_primary = net.key_of_primary(1);
    let vcs: Vec<ViewChange> = net
        .keys
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, k)| net.view_change(k, 1, 1, (i == 0).then(|| prepared.clone())))
        .collect();
    // The same payload, so the same block, re-proposed by the new primary from view 0.
    let reproposal = net.proposal(new_primary, 1, 1, 0, "prepared in view 0");
    let good = NewView { view_changes: vcs.clone(), proposal: reproposal.clone() };
    assert_eq!(net.check(&good, 1), Ok(Selection::Reproposed { view: 0, block: old.pre_prepare.block }));

    // Wrong primary: another validator signs the same NEW-VIEW.
    let impostor = net.keys.iter().find(|k| k.public() != new_primary.public()).unwrap();
    let mut by_impostor = good.clone();
    by_impostor.proposal = net.proposal(impostor, 1, 1, 0, "prepared in view 0");
    assert!(matches!(net.check(&by_impostor, 1), Err(NewViewError::WrongPrimary { view: 1, .. })));

    // Too little power: two VIEW-CHANGEs of four equal validators.
    let few = NewView { view_changes: vcs[..2].to_vec(), proposal: reproposal.clone() };
    assert_eq!(net.check(&few, 1), Err(NewViewError::TooLittlePower { signed: 2, total: 4 }));

    // The same validator twice.
    let twice =
        NewView { view_changes: vec![vcs[0].clone(), vcs[1].clone(), vcs[1].clone()], ..good.clone() };
    assert_eq!(net.check(&twice, 1), Err(NewViewError::DuplicateSigner(vcs[1].signer)));

    // The prepared block left out for a fresh one.
    let fresh = net.proposal(new_primary, 1, 1, -1, "fresh");
    let omitted = NewView { view_changes: vcs.clone(), proposal: fresh.clone() };
    assert_eq!(
        net.check(&omitted, 1),
        Err(NewViewError::PreparedBlockOmitted {
            view: 0,
            expected: old.pre_prepare.block,
            got: fresh.pre_prepare.block
        })
    );

    // The right block claiming the wrong prepared view.
    let claimed = net.proposal(new_primary, 1, 1, 5, "prepared in view 0");
    let wrong_view = NewView { view_changes: vcs.clone(), proposal: claimed };
    assert_eq!(
        net.check(&wrong_view, 1),
        Err(NewViewError::WrongPreparedView { claimed: 5, shown: Some(0) })
    );

    // A VIEW-CHANGE for another view, or whose prepared certificate was stripped of a PREPARE.
    let mut other_view = vcs.clone();
    other_view[2] = net.view_change(&net.keys[2], 1, 2, None);
    let nv = NewView { view_changes: other_view, ..good.clone() };
    assert!(matches!(net.check(&nv, 1), Err(NewViewError::ViewChange { .. })));
    let mut thin = prepared.clone();
    thin.prepares.pop();
    let mut under = vcs.clone();
    under[0] = net.view_change(&net.keys[0], 1, 1, Some(thin));
    let nv = NewView { view_changes: under, ..good.clone() };
    match net.check(&nv, 1) {
        Err(NewViewError::ViewChange { reason, .. }) => assert!(reason.contains("PREPAREs"), "{reason}"),
        other => panic!("expected a refused prepared certificate, got {other:?}"),
    }

    // A payload that is not the PRE-PREPARE's block; a broken signature.
    let mut swapped = good.clone();
    swapped.proposal.txs = vec![b"something else".to_vec()];
    assert_eq!(net.check(&swapped, 1), Err(NewViewError::PayloadMismatch));
    let mut forged = good.clone();
    let mut raw = forged.proposal.pre_prepare.signature.to_bytes();
    raw[0] ^= 1;
    forged.proposal.pre_prepare.signature = pyralog_crypto::Signature::from_bytes(&raw);
    assert_eq!(net.check(&forged, 1), Err(NewViewError::BadSignature));

    // Checked for another view than it announces.
    assert!(matches!(net.check(&good, 2), Err(NewViewError::WrongPosition { view: 2, got_view: 1, .. })));

    // With nothing prepared, any fresh payload, and it must say so.
    let empty: Vec<ViewChange> = net.keys.iter().take(3).map(|k| net.view_change(k, 1, 1, None)).collect();
    assert_eq!(
        net.check(&NewView { view_changes: empty.clone(), proposal: fresh.clone() }, 1),
        Ok(Selection::Fresh)
    );
    let claims = NewView { view_changes: empty, proposal: net.proposal(new_primary, 1, 1, 0, "fresh") };
    assert_eq!(net.check(&claims, 1), Err(NewViewError::WrongPreparedView { claimed: 0, shown: None }));
}

#[test]
fn the_wire_refuses_bad_bytes() {
    assert!(matches!(wire::decode(&[0xff, 0xff, 0xff]), Err(WireError::Malformed(_))));
    assert_eq!(
        wire::decode(&vec![0; wire::MAX_MESSAGE_BYTES + 1]),
        Err(WireError::TooLarge(wire::MAX_MESSAGE_BYTES + 1))
    );
    let net = Net::new(4);
    let proposal = net.proposal(&net.keys[0], 1, 0, -1, "x");
    let vc = net.view_change(&net.keys[0], 1, 1, None);
    let crowd = NewView { view_changes: vec![vc; 1025], proposal };
    assert_eq!(
        wire::decode(&wire::encode(&Message::NewView(crowd))),
        Err(WireError::TooManyViewChanges(1025))
    );
}

proptest! {
    /// Every message decodes to itself; truncated bytes never panic.
    #[test]
    fn messages_round_trip(height in 1u64..1_000_000, view in 0u32..1_000, tag in "[a-z]{0,40}", cut in 0usize..400) {
        let net = Net::new(4);
        let proposal = net.proposal(net.key_of_primary(view), height, view, -1, &tag);
        let prepare = net.vote(&net.keys[1], VoteKind::Prevote, height, view, &proposal);
        let commit = net.vote(&net.keys[2], VoteKind::Precommit, height, view, &proposal);
        let prepared = PreparedCertificate { pre_prepare: proposal.pre_prepare.clone(), prepares: vec![prepare.share()] };
        let mut vc = net.view_change(&net.keys[3], height, view + 1, Some(prepared));
        vc.payload = Some(proposal.txs.clone());
        let nv = NewView { view_changes: vec![vc.stripped()], proposal: proposal.clone() };
        for message in [
            Message::PrePrepare(proposal),
            Message::Prepare(prepare),
            Message::Commit(commit),
            Message::ViewChange(vc),
            Message::NewView(nv),
        ] {
            let bytes = wire::encode(&message);
            prop_assert_eq!(wire::decode(&bytes), Ok(message));
            let _ = wire::decode(&bytes[..cut.min(bytes.len())]);
        }
    }
}

fn engine(key: &Keypair) -> PbftEngine {
    let timeouts = PbftTimeouts { view: Duration::from_millis(500), rebroadcast: Duration::from_millis(500) };
    PbftEngine::new(CHAIN, key.clone(), timeouts)
}

fn start(engine: &mut PbftEngine, net: &Net) -> Vec<Effect> {
    engine.handle(
        0,
        Input::StartHeight {
            height: 1,
            proposers: ProposerPriorities::genesis(&net.set),
            validators: net.set.clone(),
            last_commit: None,
        },
    )
}

/// Feeds `message` from `from`, answering the app's payload check with `valid`.
fn feed(engine: &mut PbftEngine, from: &Keypair, message: &Message) -> Vec<Effect> {
    let mut effects = engine.handle(1, Input::Message { from: from.public(), bytes: wire::encode(message) });
    let checks: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::CheckPayload { block, .. } => Some(*block),
            _ => None,
        })
        .collect();
    for block in checks {
        effects.extend(engine.handle(1, Input::PayloadChecked { block, valid: true }));
    }
    effects
}

fn sent(effects: &[Effect]) -> Vec<Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(bytes) | Effect::SendTo { bytes, .. } => Some(wire::decode(bytes).unwrap()),
            _ => None,
        })
        .collect()
}

fn wal(effects: &[Effect]) -> Vec<Vec<u8>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::PersistWal { entry, .. } => Some(entry.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_bad_signature_blames_its_sender_and_undecodable_bytes_too() {
    let net = Net::new(4);
    let me = net.keys.iter().find(|k| k.public() != primary(&net.set, 0)).unwrap();
    let mut engine = engine(me);
    start(&mut engine, &net);
    let mut proposal = net.proposal(net.key_of_primary(0), 1, 0, -1, "block");
    let mut raw = proposal.pre_prepare.signature.to_bytes();
    raw[5] ^= 1;
    proposal.pre_prepare.signature = pyralog_crypto::Signature::from_bytes(&raw);
    let relay = &net.keys[3];
    let effects = feed(&mut engine, relay, &Message::PrePrepare(proposal));
    assert!(
        effects.iter().any(|e| matches!(e, Effect::PeerMisbehaved { peer, reason } if *peer == relay.public() && reason.contains("bad signature"))),
        "{effects:?}"
    );
    assert!(sent(&effects).is_empty(), "nothing is prepared: {effects:?}");
    let effects = engine.handle(1, Input::Message { from: relay.public(), bytes: vec![0xff; 3] });
    assert!(matches!(&effects[..], [Effect::PeerMisbehaved { peer, .. }] if *peer == relay.public()));
}

/// A backup PREPAREs the primary's block (WAL first), crashes, and restarts from its WAL: it
/// sends the same PREPARE again, and a second, conflicting PRE-PREPARE of the same view gets no
/// PREPARE (it proves the primary's equivocation instead). After a VIEW-CHANGE it signs nothing
/// more in the old view.
#[test]
fn a_restarted_backup_resends_its_prepare_and_never_prepares_another_block() {
    let net = Net::new(4);
    let primary_key = net.key_of_primary(0);
    let me = net.keys.iter().find(|k| k.public() != primary_key.public()).unwrap();
    let mut first_life = engine(me);
    let mut entries = wal(&start(&mut first_life, &net));
    let block = net.proposal(primary_key, 1, 0, -1, "block");
    let effects = feed(&mut first_life, primary_key, &Message::PrePrepare(block.clone()));
    entries.extend(wal(&effects));
    let prepare = net.vote(me, VoteKind::Prevote, 1, 0, &block);
    let wal_at = effects.iter().position(|e| matches!(e, Effect::PersistWal { .. })).expect("persisted");
    let sent_at = effects.iter().position(|e| matches!(e, Effect::Broadcast(_))).expect("sent");
    assert!(wal_at < sent_at, "the PREPARE is in the WAL before it leaves");
    assert_eq!(sent(&effects), vec![Message::Prepare(prepare.clone())]);

    let mut second_life = engine(me);
    second_life.restore_wal(entries.clone()).unwrap();
    let effects = start(&mut second_life, &net);
    let twin = net.proposal(primary_key, 1, 0, -1, "twin");
    let effects: Vec<Effect> =
        effects.into_iter().chain(feed(&mut second_life, primary_key, &Message::PrePrepare(twin))).collect();
    let prepares: Vec<SignedVote> = sent(&effects)
        .into_iter()
        .filter_map(|m| match m {
            Message::Prepare(v) => Some(v),
            _ => None,
        })
        .collect();
    assert!(prepares.iter().all(|v| *v == prepare), "only the same PREPARE: {prepares:?}");
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Evidence(_))),
        "the twin proves the primary's equivocation: {effects:?}"
    );
    // The same block again after the restart: the same PREPARE, nothing new.
    let effects = feed(&mut second_life, primary_key, &Message::PrePrepare(block.clone()));
    assert!(sent(&effects).iter().all(|m| *m == Message::Prepare(prepare.clone())), "{effects:?}");

    // The view times out: VIEW-CHANGE for view 1 (in the WAL), then nothing more for view 0.
    let timer = effects_timer(&start(&mut engine(me), &net));
    let effects = second_life.handle(600, Input::TimeoutFired(timer));
    let messages = sent(&effects);
    assert!(
        matches!(&messages[..], [Message::ViewChange(vc)] if vc.view == 1 && vc.prepared.is_none()),
        "{messages:?}"
    );
    assert!(!wal(&effects).is_empty(), "the VIEW-CHANGE is in the WAL");
    let late = net.vote(&net.keys[3], VoteKind::Prevote, 1, 0, &block);
    let effects = feed(&mut second_life, &net.keys[3], &Message::Prepare(late));
    assert!(sent(&effects).is_empty(), "nothing signed in the view it left: {effects:?}");
}

/// The view timer a fresh engine sets when its height starts.
fn effects_timer(effects: &[Effect]) -> pyralog_consensus::core::TimerId {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::SetTimer { id, .. } if id.step == 0 => Some(*id),
            _ => None,
        })
        .expect("a view timer")
}

/// After a restart its own PREPARE counts once: the primary's PRE-PREPARE again and one more
/// PREPARE (two of four) prepare nothing, and its own COMMIT echoed back by a peer adds nothing.
#[test]
fn a_restarted_validator_counts_its_own_votes_once() {
    let net = Net::new(4);
    let primary_key = net.key_of_primary(0);
    let me = net.keys.iter().find(|k| k.public() != primary_key.public()).unwrap();
    let other =
        net.keys.iter().find(|k| k.public() != primary_key.public() && k.public() != me.public()).unwrap();
    let mut first_life = engine(me);
    let mut entries = wal(&start(&mut first_life, &net));
    let block = net.proposal(primary_key, 1, 0, -1, "block");
    entries.extend(wal(&feed(&mut first_life, primary_key, &Message::PrePrepare(block.clone()))));

    let mut second_life = engine(me);
    second_life.restore_wal(entries).unwrap();
    start(&mut second_life, &net);
    let mut effects = feed(&mut second_life, primary_key, &Message::PrePrepare(block.clone()));
    effects.extend(feed(
        &mut second_life,
        other,
        &Message::Prepare(net.vote(other, VoteKind::Prevote, 1, 0, &block)),
    ));
    effects.extend(feed(
        &mut second_life,
        other,
        &Message::Prepare(net.vote(me, VoteKind::Prevote, 1, 0, &block)),
    ));
    assert!(
        !sent(&effects).iter().any(|m| matches!(m, Message::Commit(_))),
        "two PREPAREs of four prepared nothing: {effects:?}"
    );
}

/// A NEW-VIEW's PRE-PREPARE waiting for the app when the validator moves on to a later view:
/// the app's late verdict does not bring it back to PREPARE in the view it left.
#[test]
fn a_late_verdict_does_not_pull_a_validator_back_into_a_view_it_left() {
    let net = Net::new(4);
    let new_primary = net.key_of_primary(1);
    let me = net
        .keys
        .iter()
        .find(|k| k.public() != new_primary.public() && k.public() != net.key_of_primary(2).public())
        .unwrap();
    let mut engine = engine(me);
    start(&mut engine, &net);
    let vcs: Vec<ViewChange> = net.keys.iter().take(3).map(|k| net.view_change(k, 1, 1, None)).collect();
    let fresh = net.proposal(new_primary, 1, 1, -1, "fresh in view 1");
    let nv = NewView { view_changes: vcs, proposal: fresh.clone() };
    let effects = engine
        .handle(1, Input::Message { from: new_primary.public(), bytes: wire::encode(&Message::NewView(nv)) });
    assert!(effects.iter().any(|e| matches!(e, Effect::CheckPayload { .. })), "{effects:?}");
    // Two others (half the power) ask for view 2 before the app answers: it joins them.
    let others: Vec<&Keypair> = net.keys.iter().filter(|k| k.public() != me.public()).take(2).collect();
    let mut joined = Vec::new();
    for k in others {
        joined.extend(feed(&mut engine, k, &Message::ViewChange(net.view_change(k, 1, 2, None))));
    }
    assert!(sent(&joined).iter().any(|m| matches!(m, Message::ViewChange(vc) if vc.view == 2)), "{joined:?}");
    let effects = engine.handle(2, Input::PayloadChecked { block: fresh.pre_prepare.block, valid: true });
    assert!(sent(&effects).is_empty(), "nothing signed in view 1 after asking for view 2: {effects:?}");
}

#[test]
fn messages_of_absurd_heights_and_views_are_dropped_without_a_panic() {
    let net = Net::new(4);
    let mut engine = engine(&net.keys[0]);
    start(&mut engine, &net);
    let block = net.proposal(net.key_of_primary(0), 1, 0, -1, "x");
    for (height, view) in [(u64::MAX, 0), (1, u32::MAX), (u64::MAX, u32::MAX)] {
        let vote = net.vote(&net.keys[1], VoteKind::Prevote, height, view, &block);
        let effects = feed(&mut engine, &net.keys[1], &Message::Prepare(vote));
        assert!(sent(&effects).is_empty(), "{effects:?}");
        let vc = net.view_change(&net.keys[1], height, view, None);
        let effects = feed(&mut engine, &net.keys[1], &Message::ViewChange(vc));
        assert!(sent(&effects).is_empty(), "{effects:?}");
    }
}

/// A NEW-VIEW whose fresh payload the app refuses leaves the validator in the new view with
/// nothing to vote for: a late VIEW-CHANGE for that view does not make it ask for the view
/// again (which stopped its timer), and its view timer takes it to the next view.
#[test]
fn a_refused_new_view_payload_ends_in_the_next_view_change() {
    let net = Net::new(4);
    let new_primary = net.key_of_primary(1);
    let me = net.keys.iter().find(|k| k.public() != new_primary.public()).unwrap();
    let mut engine = engine(me);
    start(&mut engine, &net);
    let signers: Vec<&Keypair> = net.keys.iter().filter(|k| k.public() != me.public()).collect();
    let vcs: Vec<ViewChange> = signers.iter().map(|k| net.view_change(k, 1, 1, None)).collect();
    let fresh = net.proposal(new_primary, 1, 1, -1, "refused by the app");
    let nv = NewView { view_changes: vcs.clone(), proposal: fresh.clone() };
    engine
        .handle(1, Input::Message { from: new_primary.public(), bytes: wire::encode(&Message::NewView(nv)) });
    let effects = engine.handle(1, Input::PayloadChecked { block: fresh.pre_prepare.block, valid: false });
    assert!(sent(&effects).is_empty(), "{effects:?}");
    let effects = feed(&mut engine, signers[0], &Message::ViewChange(vcs[0].clone()));
    assert!(
        !sent(&effects).iter().any(|m| matches!(m, Message::ViewChange(_))),
        "asked again for the view it is in: {effects:?}"
    );
    let timer = pyralog_consensus::core::TimerId { height: 1, round: 1, step: 0 };
    let effects = engine.handle(5_000, Input::TimeoutFired(timer));
    let messages = sent(&effects);
    assert!(matches!(&messages[..], [Message::ViewChange(vc)] if vc.view == 2), "{messages:?}");
}

/// A primary that went down after persisting its PRE-PREPARE and before its PREPARE reached the
/// WAL PREPAREs its own block after the restart (and proposes nothing else).
#[test]
fn a_primary_restarted_between_its_pre_prepare_and_its_prepare_prepares_its_block() {
    let net = Net::new(4);
    let me = net.key_of_primary(0);
    let mut first_life = engine(me);
    let effects = start(&mut first_life, &net);
    let height = match effects.iter().find(|e| matches!(e, Effect::BuildPayload { .. })) {
        Some(Effect::BuildPayload { height, .. }) => *height,
        other => panic!("the primary asks for a payload: {other:?}"),
    };
    let effects = first_life.handle(1, Input::PayloadBuilt { height, txs: vec![b"own block".to_vec()] });
    let entries = wal(&effects);
    assert_eq!(entries.len(), 2, "PRE-PREPARE and PREPARE: {effects:?}");
    let mut second_life = engine(me);
    second_life.restore_wal(entries[..1].to_vec()).unwrap();
    let effects = start(&mut second_life, &net);
    assert!(!effects.iter().any(|e| matches!(e, Effect::BuildPayload { .. })), "{effects:?}");
    let messages = sent(&effects);
    let block = payload_id(&[b"own block".to_vec()]);
    assert!(
        matches!(&messages[..], [Message::PrePrepare(p), Message::Prepare(v)] if p.pre_prepare.block == block && v.block == block),
        "{messages:?}"
    );
}
