//! App queries over request-response (what state queries and cross-cluster reads ride on).

use std::time::Duration;

use pyralog_crypto::Keypair;
use pyralog_p2p::{Overlay, P2pConfig};

use crate::support::{CHAIN, dial_addr, loopback};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_answered_by_the_handler_and_refused_without_one() {
    let server_key = Keypair::generate();
    let client_key = Keypair::generate();
    let (server, mut server_inbox) =
        Overlay::start(&server_key, P2pConfig::new(CHAIN, loopback())).await.unwrap();
    let mut config = P2pConfig::new(CHAIN, loopback());
    config.bootstrap = vec![dial_addr(&server.handle, "tcp").await];
    let (client, client_inbox) = Overlay::start(&client_key, config).await.unwrap();

    // The server's app answers "echo" and refuses anything else, naming the asker.
    let asker = client_key.public();
    tokio::spawn(async move {
        while let Some(query) = server_inbox.queries.recv().await {
            assert_eq!(query.from, asker, "the query carries the authenticated asker");
            let answer = match query.path.as_str() {
                "echo" => Ok(query.data),
                other => Err(format!("unknown query {other:?}")),
            };
            let _ = query.reply.send(answer);
        }
    });

    // The client dials its bootstrap peer within the first maintenance ticks.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let answer = loop {
        match client.handle.query(&server_key.public(), "echo", b"ping".to_vec()).await {
            Ok(answer) => break answer,
            Err(err) => {
                assert!(tokio::time::Instant::now() < deadline, "no answer: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(answer, b"ping");
    let refused = client.handle.query(&server_key.public(), "balance", Vec::new()).await.unwrap_err();
    assert!(refused.0.contains(r#"unknown query "balance""#), "{refused}");

    // The client takes no queries: the server's question is refused, not left hanging.
    drop(client_inbox);
    let refused = server.handle.query(&client_key.public(), "echo", b"x".to_vec()).await.unwrap_err();
    assert!(refused.0.contains("no query handler"), "{refused}");
}
