//! Peers that send invalid data are banned; honest validators are not.

use std::time::Duration;

use pyralog_crypto::Keypair;
use pyralog_p2p::{Inbox, Overlay, P2pConfig, Topic};

use crate::support::{CHAIN, dial_addr, loopback};

/// Polls `check` until it holds (generous deadline; no fixed sleeps).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A validator's overlay and a non-validator's (`intruder`) bootstrapped from it, with their
/// inboxes, once both see each other's subscriptions.
async fn validator_and_intruder(intruder: &Keypair) -> (Overlay, Inbox, Overlay, Inbox) {
    let validator = Keypair::generate();
    let mut config = P2pConfig::new(CHAIN, loopback());
    config.validators = vec![validator.public()];
    let (honest, inbox) = Overlay::start(&validator, config.clone()).await.unwrap();
    let mut intruder_config = P2pConfig::new(CHAIN, loopback());
    intruder_config.bootstrap = vec![dial_addr(&honest.handle, "tcp").await];
    intruder_config.validators = config.validators;
    let (intruder_overlay, intruder_inbox) = Overlay::start(intruder, intruder_config).await.unwrap();
    eventually("the peers see each other's subscriptions", async || {
        honest.handle.status().await.unwrap().consensus_peers == 1
            && intruder_overlay.handle.status().await.unwrap().consensus_peers == 1
    })
    .await;
    (honest, inbox, intruder_overlay, intruder_inbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_validator_publishing_consensus_messages_is_banned() {
    let (honest, mut inbox, intruder_overlay, _intruder_inbox) =
        validator_and_intruder(&Keypair::generate()).await;
    let intruder_id = intruder_overlay.handle.peer_id();

    // Once both are subscribed, the intruder's transactions are fine: they are delivered.
    intruder_overlay.handle.publish(Topic::Txs, b"a transaction".to_vec());
    let delivered =
        tokio::time::timeout(Duration::from_secs(30), inbox.events.recv()).await.unwrap().unwrap();
    assert!(
        matches!(delivered, pyralog_consensus::driver::NetEvent::Transaction(tx) if tx == b"a transaction")
    );

    // Its consensus messages are rejected, never delivered, and get it banned.
    for i in 0..5u8 {
        intruder_overlay.handle.publish(Topic::Consensus, vec![i; 64]);
    }
    eventually("the intruder is banned", async || {
        let status = honest.handle.status().await.unwrap();
        status.banned.contains(&intruder_id) && !status.connected.contains(&intruder_id)
    })
    .await;
    while let Ok(event) = inbox.events.try_recv() {
        assert!(
            !matches!(event, pyralog_consensus::driver::NetEvent::Message { .. }),
            "a consensus message from a non-validator was delivered"
        );
    }
    // Banned peers cannot reconnect: the intruder keeps redialing its bootstrap peer, and each
    // connection is refused (observed, not waited out).
    let refused = honest.handle.status().await.unwrap().refused_banned;
    eventually("the intruder's redials refused", async || {
        honest.handle.status().await.unwrap().refused_banned >= refused + 2
    })
    .await;
    assert!(!honest.handle.status().await.unwrap().connected.contains(&intruder_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_reported_for_bad_blocks_is_banned_after_the_limit() {
    use pyralog_consensus::driver::ConsensusNet;

    let a = Keypair::generate();
    let b = Keypair::generate();
    let mut config = P2pConfig::new(CHAIN, loopback());
    config.validators = vec![a.public(), b.public()];
    config.faults_before_ban = 2;
    let (first, _first_inbox) = Overlay::start(&a, config.clone()).await.unwrap();
    let mut second_config = config.clone();
    second_config.bootstrap = vec![dial_addr(&first.handle, "quic-v1").await];
    let (second, _second_inbox) = Overlay::start(&b, second_config).await.unwrap();
    eventually("connected over QUIC", async || first.handle.status().await.unwrap().connected.len() == 1)
        .await;

    first.handle.report(b.public(), "served a block that does not verify".into());
    assert!(first.handle.status().await.unwrap().banned.is_empty(), "one fault is under the limit");
    first.handle.report(b.public(), "served a block that does not verify".into());
    eventually("the reported peer is banned", async || {
        let status = first.handle.status().await.unwrap();
        status.banned == vec![second.handle.peer_id()] && status.connected.is_empty()
    })
    .await;
}

/// Evidence is checked before it is accepted (and so forwarded): a piece that proves an
/// equivocation reaches the driver; pieces with a forged signature never do, and get their
/// publisher banned, so an honest relay is never blamed for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_that_proves_nothing_is_rejected_and_its_publisher_banned() {
    use pyralog_consensus::driver::NetEvent;
    use pyralog_consensus::testkit::double_vote;
    use pyralog_consensus::vote::Evidence;
    use pyralog_crypto::quorum::SignatureShare;

    let intruder = Keypair::generate();
    let (honest, mut inbox, intruder_overlay, _intruder_inbox) = validator_and_intruder(&intruder).await;
    let intruder_id = intruder_overlay.handle.peer_id();

    let accused = Keypair::generate();
    let real = double_vote(&accused, CHAIN, 3);
    intruder_overlay.handle.publish(Topic::Evidence, postcard::to_allocvec(&real).unwrap());
    let delivered =
        tokio::time::timeout(Duration::from_secs(30), inbox.events.recv()).await.unwrap().unwrap();
    assert!(matches!(delivered, NetEvent::Evidence { evidence, .. } if *evidence == real));

    let Evidence::DuplicateVote(mut forged) = real.clone() else { unreachable!() };
    forged.second_signature = SignatureShare::sign(&intruder, &forged.second).signature;
    let forged = postcard::to_allocvec(&Evidence::DuplicateVote(forged)).unwrap();
    for i in 0..5u8 {
        // Distinct bytes each time, so gossipsub does not drop them as duplicates.
        let mut bytes = forged.clone();
        bytes.push(i);
        intruder_overlay.handle.publish(Topic::Evidence, bytes);
    }
    eventually("the intruder is banned", async || {
        let status = honest.handle.status().await.unwrap();
        status.banned.contains(&intruder_id) && !status.connected.contains(&intruder_id)
    })
    .await;
    while let Ok(event) = inbox.events.try_recv() {
        assert!(!matches!(event, NetEvent::Evidence { .. }), "evidence that proves nothing was delivered");
    }
}
