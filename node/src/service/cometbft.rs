//! The chain behind CometBFT (`"engine": "cometbft"`): instead of the consensus driver, the
//! node serves its chain app over ABCI ([`pyralog_abci`]) to the CometBFT node beside it, and
//! sends transactions (clients', anchors) to CometBFT's mempool through its RPC
//! (`broadcast_tx_sync`, CometBFT running `check_tx` on our app before it answers).
//!
//! The adapter reports each commit to the node ([`Progress`]), so the RPC's finalized height and
//! subscriptions follow CometBFT's blocks.

use base64::Engine as _;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use pyralog_abci::{AbciAdapter, AbciServer, ServerHandle};
use pyralog_chain::app::ChainApp;
use pyralog_config::ChainSection;
use pyralog_consensus::app::ReplicatedApp;
use pyralog_consensus::driver::{Admission, Progress, Submitter};
use tokio::sync::{mpsc, watch};

/// The running CometBFT side of a node: the ABCI server and the transaction forwarder.
pub(crate) struct CometSide {
    /// The ABCI server (stopped when dropped).
    pub(crate) server: ServerHandle,
    /// Heights the app committed.
    pub(crate) progress: watch::Receiver<Progress>,
    /// Transactions to send to CometBFT, answers unneeded (anchors).
    pub(crate) txs: mpsc::Sender<Vec<u8>>,
    /// Transactions to send, with CometBFT's `check_tx` answer (clients).
    pub(crate) submitter: Submitter,
    /// The forwarding task.
    pub(crate) forwarder: tokio::task::JoinHandle<()>,
}

/// Serves `app` over ABCI on `section.abci_listen` and forwards transactions to
/// `section.cometbft_rpc`.
pub(crate) fn start(app: ChainApp, section: &ChainSection) -> anyhow::Result<CometSide> {
    let committed = app.info()?.last_height;
    let (progress_in, progress) = watch::channel(Progress { height: committed, ..Progress::default() });
    let adapter =
        AbciAdapter::new(app).on_commit(move |height| progress_in.send_modify(|p| p.height = height));
    let server = AbciServer::bind(&section.abci_listen)
        .map_err(|e| anyhow::anyhow!("cannot listen for CometBFT's ABCI on {}: {e}", section.abci_listen))?
        .serve(adapter)?;
    tracing::info!(abci = %server.local_addr(), cometbft = %section.cometbft_rpc, "serving the chain app to CometBFT");
    let client = HttpClientBuilder::default().build(&section.cometbft_rpc)?;
    let (submitter, mut submissions) = Submitter::channel(1024);
    let (txs, mut unanswered) = mpsc::channel::<Vec<u8>>(1024);
    let rpc = section.cometbft_rpc.clone();
    let forwarder = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some((tx, reply)) = submissions.recv() => {
                    let _ = reply.send(broadcast(&client, &rpc, tx).await);
                }
                Some(tx) = unanswered.recv() => {
                    if let admission @ (Admission::Rejected(_) | Admission::MempoolFull { .. }) = broadcast(&client, &rpc, tx).await {
                        tracing::warn!(?admission, "CometBFT did not take a transaction");
                    }
                }
                else => return,
            }
        }
    });
    Ok(CometSide { server, progress, txs, submitter, forwarder })
}

/// Sends `tx` to CometBFT's mempool (`broadcast_tx_sync`: answered after `check_tx`).
async fn broadcast(client: &HttpClient, rpc: &str, tx: Vec<u8>) -> Admission {
    let mut params = ObjectParams::new();
    if params.insert("tx", base64::engine::general_purpose::STANDARD.encode(&tx)).is_err() {
        return Admission::Rejected("unencodable transaction".into());
    }
    match client.request::<serde_json::Value, _>("broadcast_tx_sync", params).await {
        Ok(answer) if answer["code"].as_u64() == Some(0) => Admission::Queued,
        Ok(answer) => Admission::Rejected(answer["log"].as_str().unwrap_or("refused by check_tx").to_owned()),
        // CometBFT answers a transaction it holds, and a full mempool, with errors.
        Err(err) if err.to_string().contains("tx already exists in cache") => Admission::AlreadyKnown,
        Err(err) if err.to_string().contains("mempool is full") => Admission::MempoolFull { capacity: 0 },
        Err(err) => Admission::Rejected(format!("CometBFT at {rpc}: {err}")),
    }
}
