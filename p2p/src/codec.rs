//! The request-response protocol: direct consensus messages, block sync and app queries, as
//! length-prefixed postcard frames with a size cap on each side.

use std::io;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use pyralog_consensus::driver::StoredBlock;
use serde::{Deserialize, Serialize};

/// A request to one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A consensus message for this peer only (answered with [`Response::Ack`]).
    Consensus(Vec<u8>),
    /// Up to `max` committed blocks from `from_height` (block sync).
    Blocks {
        /// The first height wanted.
        from_height: u64,
        /// At most this many.
        max: u32,
    },
    /// An application query (state queries, cross-cluster reads): `path` names the handler.
    Query {
        /// Which query.
        path: String,
        /// Its argument.
        data: Vec<u8>,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Received.
    Ack,
    /// Committed blocks, in height order (empty: none newer).
    Blocks(Vec<StoredBlock>),
    /// A query's answer.
    Answer(Vec<u8>),
    /// The peer will not answer (no handler, overloaded, shutting down).
    Refused(String),
}

/// Frames each message as a 4-byte big-endian length and a postcard body; a length over the cap
/// is refused before anything is allocated.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_request: usize,
    max_response: usize,
}

impl FrameCodec {
    /// A codec refusing requests over `max_request` and responses over `max_response` bytes.
    pub fn new(max_request: usize, max_response: usize) -> Self {
        FrameCodec { max_request, max_response }
    }
}

async fn read_frame<T, M>(io: &mut T, max: usize) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: for<'de> Deserialize<'de>,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over the {max}-byte cap"),
        ));
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    postcard::from_bytes(&body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("undecodable frame: {e}")))
}

async fn write_frame<T, M>(io: &mut T, message: &M, max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: Serialize,
{
    let body = postcard::to_stdvec(message).map_err(|e| io::Error::other(e.to_string()))?;
    if body.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes over the {max}-byte cap", body.len()),
        ));
    }
    io.write_all(&(body.len() as u32).to_be_bytes()).await?;
    io.write_all(&body).await?;
    io.flush().await
}

#[async_trait]
impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, request: Request) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.max_request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.max_response).await
    }
}

/// Serves blocks from `blocks` until the encoded answer would pass `max_bytes` (a block sync
/// answer must fit the response cap; the peer asks again from where it stopped).
pub(crate) fn fit_blocks(blocks: Vec<StoredBlock>, max_bytes: usize) -> Vec<StoredBlock> {
    let mut used: usize = 16; // enum tag and length prefixes
    let mut kept = Vec::new();
    for block in blocks {
        let size = postcard::experimental::serialized_size(&block).unwrap_or(usize::MAX);
        if used.saturating_add(size) > max_bytes {
            break;
        }
        used += size;
        kept.push(block);
    }
    kept
}
