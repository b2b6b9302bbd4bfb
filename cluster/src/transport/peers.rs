//! The client side: one multiplexed connection per peer, (re)opened on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{RaftRequest, RaftResponse, RequestFrame, ResponseFrame, Transport, read_frame, write_frame};
use crate::raft::GroupId;

/// Why an RPC got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The connection could not be opened (or broke) before the request was written: the peer
    /// never got it.
    #[error("peer {0} unreachable")]
    Unreachable(String),
    /// The connection broke after the request was written, before the answer came: the peer
    /// may or may not have acted on it.
    #[error("the connection to peer {0} broke before it answered")]
    Broken(String),
    /// No answer within the deadline.
    #[error("peer {addr} did not answer within {after:?}")]
    Timeout {
        /// The peer.
        addr: String,
        /// The deadline.
        after: Duration,
    },
}

struct Outgoing {
    frame: RequestFrame,
    reply: Reply,
}

/// Where a request's answer goes: the answer, or [`NotSent`] when the request was never written.
/// Dropped unanswered when the connection breaks after writing it.
type Reply = oneshot::Sender<Result<RaftResponse, NotSent>>;

/// The request was never written to the peer.
struct NotSent;

/// Connections to every peer, shared by all groups of the node.
pub struct PeerPool<T: Transport> {
    transport: Arc<T>,
    peers: Mutex<HashMap<String, mpsc::Sender<Outgoing>>>,
    next_id: AtomicU64,
}

impl<T: Transport> std::fmt::Debug for PeerPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerPool").finish_non_exhaustive()
    }
}

impl<T: Transport> PeerPool<T> {
    /// A pool that opens streams with `transport`.
    pub fn new(transport: T) -> Self {
        PeerPool {
            transport: Arc::new(transport),
            peers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends `body` to `group` on the peer at `addr` and waits for the answer.
    pub async fn call(
        &self,
        addr: &str,
        group: GroupId,
        body: RaftRequest,
        deadline: Duration,
    ) -> Result<RaftResponse, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let queue = self.connection(addr);
        if queue.send(Outgoing { frame: RequestFrame { id, group, body }, reply }).await.is_err() {
            return Err(CallError::Unreachable(addr.to_owned()));
        }
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(NotSent))) => Err(CallError::Unreachable(addr.to_owned())),
            Ok(Err(_)) => Err(CallError::Broken(addr.to_owned())),
            Err(_) => Err(CallError::Timeout { addr: addr.to_owned(), after: deadline }),
        }
    }

    /// The live connection to `addr`, or a new one.
    fn connection(&self, addr: &str) -> mpsc::Sender<Outgoing> {
        let mut peers = self.peers.lock().expect("peer map lock");
        if let Some(queue) = peers.get(addr).filter(|queue| !queue.is_closed()) {
            return queue.clone();
        }
        let (queue, outgoing) = mpsc::channel(1024);
        tokio::spawn(run_connection(self.transport.clone(), addr.to_owned(), outgoing));
        peers.insert(addr.to_owned(), queue.clone());
        queue
    }
}

/// Owns one stream: writes queued requests, routes answers to their callers. When the stream
/// fails every waiting caller is told: those whose request was written see their reply sender
/// dropped (the outcome is unknown), those still queued get [`NotSent`]; the queue closes, so the
/// next call reconnects.
async fn run_connection<T: Transport>(
    transport: Arc<T>,
    addr: String,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    if let Ok(stream) = transport.connect(&addr).await {
        serve_connection(stream, &mut outgoing).await;
    }
    outgoing.close();
    while let Some(Outgoing { reply, .. }) = outgoing.recv().await {
        let _ = reply.send(Err(NotSent));
    }
}

async fn serve_connection<S>(stream: S, outgoing: &mut mpsc::Receiver<Outgoing>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let pending: Arc<Mutex<HashMap<u64, Reply>>> = Arc::default();
    let answers = {
        let pending = pending.clone();
        async move {
            while let Ok(Some(frame)) = read_frame::<_, ResponseFrame>(&mut reader).await {
                if let Some(reply) = pending.lock().expect("pending lock").remove(&frame.id) {
                    let _ = reply.send(Ok(frame.body));
                }
            }
        }
    };
    let requests = async {
        while let Some(Outgoing { frame, reply }) = outgoing.recv().await {
            pending.lock().expect("pending lock").insert(frame.id, reply);
            if write_frame(&mut writer, &frame).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = answers => {}
        () = requests => {}
    }
}
