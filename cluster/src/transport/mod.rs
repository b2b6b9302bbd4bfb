//! Node-to-node transport: request/response frames multiplexed over one byte stream per peer
//! pair, carrying every Raft group.
//!
//! Frames are a 4-byte big-endian length then a postcard payload, at most
//! [`MAX_FRAME_BYTES`]. Streams come from a [`Transport`] so the WireGuard tunnel can replace TCP
//! without touching the engine.

mod frame;
mod peers;
mod server;

pub use frame::{MAX_FRAME_BYTES, read_frame, write_frame};
pub use peers::{CallError, PeerPool};
pub use server::{RaftRouter, Route, serve};

use std::net::SocketAddr;

use std::future::Future;
use std::io;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use pyralog_crypto::Checkpoint;
use pyralog_crypto::quorum::SignatureShare;

use crate::model::Record;
use crate::raft::{Appended, GroupCommand, GroupId, GroupRaft, GroupReply, NodeId, SignRefusal};

/// A Raft RPC addressed to one group on the peer.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestFrame {
    /// Matches the response to the request on a multiplexed stream.
    pub id: u64,
    /// The group the RPC is for.
    pub group: GroupId,
    /// The RPC.
    pub body: RaftRequest,
}

/// The Raft RPCs.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum RaftRequest {
    /// Log replication and heartbeats.
    Append(AppendEntriesRequest<GroupRaft>),
    /// Leader election.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<GroupRaft>),
    /// A command proposed by a member that does not lead the group; the leader proposes it.
    Forward(GroupCommand),
    /// The partition leader asks a replica to sign a checkpoint it has applied.
    SignCheckpoint(Checkpoint),
    /// Records a node that does not lead the partition forwards to its leader (one hop).
    AppendRecords(Vec<Record>),
}

/// The answer to a [`RequestFrame`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ResponseFrame {
    /// The request's id.
    pub id: u64,
    /// The answer.
    pub body: RaftResponse,
}

/// Answers to [`RaftRequest`]s.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftResponse {
    /// Answer to [`RaftRequest::Append`].
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRequest::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRequest::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// Answer to [`RaftRequest::Forward`].
    Forwarded(Result<GroupReply, ForwardRefusal>),
    /// Answer to [`RaftRequest::AppendRecords`].
    RecordsAppended(Result<Appended, ForwardRefusal>),
    /// Answer to [`RaftRequest::SignCheckpoint`].
    Signed(Result<SignatureShare, SignRefusal>),
    /// The peer does not (yet) run this group.
    UnknownGroup(GroupId),
}

/// Why a forwarded command was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardRefusal {
    /// The peer does not lead the group either (forwarding takes one hop only).
    #[error("not the leader; leader is {0:?}")]
    NotLeader(Option<NodeId>),
    /// Raft failed on the peer.
    #[error("raft: {0}")]
    Failed(String),
    /// The log's constraint refused a record of the batch (nothing of it was written).
    #[error("record {index} refused by constraint {constraint}: {reason}")]
    Refused {
        /// The record's position in the batch.
        index: u32,
        /// The contract's reason.
        reason: String,
        /// The constraint's code hash.
        constraint: pyralog_crypto::Digest,
    },
}

/// Opens byte streams to peers.
pub trait Transport: Send + Sync + 'static {
    /// A connected, reliable, ordered byte stream.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Connects to the peer listening at `addr`.
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Accepts byte streams from peers: the server side of a [`Transport`].
pub trait Listener: Send + 'static {
    /// An accepted, reliable, ordered byte stream.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// The address peers dial to reach this listener (the node's registered address).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }

    async fn accept(&mut self) -> io::Result<TcpStream> {
        let (stream, _) = TcpListener::accept(self).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Plain TCP (with `TCP_NODELAY`: Raft messages are latency-bound).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTransport;

impl Transport for TcpTransport {
    type Stream = TcpStream;

    async fn connect(&self, addr: &str) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}
