//! The server side: accepts peer connections and hands each RPC to its group's Raft.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use openraft::Raft;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use openraft::error::{ClientWriteError, RaftError};

use super::{
    ForwardRefusal, Listener, RaftRequest, RaftResponse, RequestFrame, ResponseFrame, read_frame, write_frame,
};
use crate::raft::{Appender, CheckpointSigner, GroupId, GroupRaft, ReplicaError, SignRefusal};

/// What serves one group's RPCs on this node.
#[derive(Clone)]
pub struct Route {
    /// The group's Raft.
    pub raft: Raft<GroupRaft>,
    /// Signs checkpoints (partition groups with checkpointing on).
    pub signer: Option<Arc<CheckpointSigner>>,
    /// Takes appends forwarded by other nodes (partition groups).
    pub appender: Option<Appender>,
}

/// The Raft groups this node runs, by group id.
#[derive(Default)]
pub struct RaftRouter {
    groups: RwLock<HashMap<GroupId, Route>>,
}

impl std::fmt::Debug for RaftRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<GroupId> = self.groups.read().expect("router lock").keys().copied().collect();
        f.debug_struct("RaftRouter").field("groups", &groups).finish()
    }
}

impl RaftRouter {
    /// Routes RPCs for `group` to `route`.
    pub fn insert(&self, group: GroupId, route: Route) {
        self.groups.write().expect("router lock").insert(group, route);
    }

    /// Stops routing RPCs for `group`.
    pub fn remove(&self, group: GroupId) -> Option<Route> {
        self.groups.write().expect("router lock").remove(&group)
    }

    fn get(&self, group: GroupId) -> Option<Route> {
        self.groups.read().expect("router lock").get(&group).cloned()
    }

    async fn handle(&self, request: RequestFrame) -> ResponseFrame {
        let Some(Route { raft, signer, appender }) = self.get(request.group) else {
            return ResponseFrame { id: request.id, body: RaftResponse::UnknownGroup(request.group) };
        };
        let body = match request.body {
            RaftRequest::Append(rpc) => RaftResponse::Append(raft.append_entries(rpc).await),
            RaftRequest::Vote(rpc) => RaftResponse::Vote(raft.vote(rpc).await),
            RaftRequest::InstallSnapshot(rpc) => {
                RaftResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            RaftRequest::Forward(command) => {
                RaftResponse::Forwarded(match raft.client_write(command).await {
                    Ok(response) => Ok(response.data),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
                        Err(ForwardRefusal::NotLeader(to.leader_id))
                    }
                    Err(err) => Err(ForwardRefusal::Failed(err.to_string())),
                })
            }
            RaftRequest::AppendRecords(records) => RaftResponse::RecordsAppended(match appender {
                Some(appender) => appender.append(records).await.map_err(|err| match err {
                    ReplicaError::NotLeader { leader, .. } => ForwardRefusal::NotLeader(leader),
                    ReplicaError::Refused { index, reason, constraint, .. } => ForwardRefusal::Refused {
                        index: u32::try_from(index).unwrap_or(u32::MAX),
                        reason,
                        constraint,
                    },
                    other => ForwardRefusal::Failed(other.to_string()),
                }),
                None => Err(ForwardRefusal::Failed("this group takes no appends".into())),
            }),
            RaftRequest::SignCheckpoint(checkpoint) => RaftResponse::Signed(match signer {
                Some(signer) => signer.sign(&checkpoint).await,
                None => Err(SignRefusal::NotSigning),
            }),
        };
        ResponseFrame { id: request.id, body }
    }
}

/// Accepts peers on `listener` until the returned future is dropped; dropping it also closes
/// every connection it accepted.
pub async fn serve<L: Listener>(mut listener: L, router: Arc<RaftRouter>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok(stream) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                connections.spawn(serve_connection(stream, router.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads requests, answers each from its own task (a slow snapshot does not hold up
/// heartbeats), and writes answers in completion order.
async fn serve_connection<S>(stream: S, router: Arc<RaftRouter>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (answers, mut to_write) = mpsc::channel::<ResponseFrame>(1024);
    let mut handlers = JoinSet::new();
    let write_loop = async move {
        while let Some(frame) = to_write.recv().await {
            if write_frame(&mut writer, &frame).await.is_err() {
                break;
            }
        }
    };
    let read_loop = async {
        while let Ok(Some(request)) = read_frame::<_, RequestFrame>(&mut reader).await {
            let (router, answers) = (router.clone(), answers.clone());
            handlers.spawn(async move {
                let _ = answers.send(router.handle(request).await).await;
            });
            while handlers.try_join_next().is_some() {}
        }
    };
    tokio::select! {
        () = write_loop => {}
        () = read_loop => {}
    }
}
