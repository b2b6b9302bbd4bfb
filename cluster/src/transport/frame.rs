//! Length-delimited frames.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted or sent. Snapshots travel in chunks well below it.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// What a frame's buffer starts at; it grows as the frame's bytes arrive, so a peer that
/// announces a large frame and sends little makes the node hold little.
const INITIAL_FRAME_BUFFER: usize = 64 << 10;

/// Writes one frame holding `message`.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(writer: &mut W, message: &T) -> io::Result<()> {
    let payload =
        postcard::to_allocvec(message).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if payload.len() > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds the {MAX_FRAME_BYTES}-byte limit", payload.len()),
        ));
    }
    writer.write_all(&(payload.len() as u32).to_be_bytes()).await?;
    writer.write_all(&payload).await?;
    writer.flush().await
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(reader: &mut R) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer sent a {len}-byte frame, the limit is {MAX_FRAME_BYTES}"),
        ));
    }
    let mut payload = Vec::with_capacity(len.min(INITIAL_FRAME_BUFFER));
    let read = (&mut *reader).take(len as u64).read_to_end(&mut payload).await?;
    if read < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the peer ended the stream {read} bytes into a {len}-byte frame"),
        ));
    }
    postcard::from_bytes(&payload).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
