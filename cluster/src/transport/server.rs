//! The server side: accepts peer connections and hands each RPC to its group's Raft.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use openraft::Raft;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{RaftRequest, RaftResponse, RequestFrame, ResponseFrame, read_frame, write_frame};
use crate::raft::{GroupId, PartitionRaft};

/// The Raft groups this node runs, by group id.
#[derive(Default)]
pub struct RaftRouter {
    groups: RwLock<HashMap<GroupId, Raft<PartitionRaft>>>,
}

impl std::fmt::Debug for RaftRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<GroupId> = self.groups.read().expect("router lock").keys().copied().collect();
        f.debug_struct("RaftRouter").field("groups", &groups).finish()
    }
}

impl RaftRouter {
    /// Routes RPCs for `group` to `raft`.
    pub fn insert(&self, group: GroupId, raft: Raft<PartitionRaft>) {
        self.groups.write().expect("router lock").insert(group, raft);
    }

    /// Stops routing RPCs for `group`.
    pub fn remove(&self, group: GroupId) -> Option<Raft<PartitionRaft>> {
        self.groups.write().expect("router lock").remove(&group)
    }

    fn get(&self, group: GroupId) -> Option<Raft<PartitionRaft>> {
        self.groups.read().expect("router lock").get(&group).cloned()
    }

    async fn handle(&self, request: RequestFrame) -> ResponseFrame {
        let Some(raft) = self.get(request.group) else {
            return ResponseFrame { id: request.id, body: RaftResponse::UnknownGroup(request.group) };
        };
        let body = match request.body {
            RaftRequest::Append(rpc) => RaftResponse::Append(raft.append_entries(rpc).await),
            RaftRequest::Vote(rpc) => RaftResponse::Vote(raft.vote(rpc).await),
            RaftRequest::InstallSnapshot(rpc) => {
                RaftResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
        };
        ResponseFrame { id: request.id, body }
    }
}

/// Accepts peers on `listener` until the returned future is dropped; dropping it also closes
/// every connection it accepted.
pub async fn serve(listener: TcpListener, router: Arc<RaftRouter>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(stream, router.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads requests, answers each from its own task (a slow snapshot does not hold up
/// heartbeats), and writes answers in completion order.
async fn serve_connection(stream: tokio::net::TcpStream, router: Arc<RaftRouter>) {
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
