//! Kafka's wire protocol as a Pyralog broker reads it from untrusted clients: the length prefix
//! of a request frame (bounded before anything is allocated), its header and body at a version
//! this broker serves ([`supported`]), and the record batches a Produce request carries
//! (decompression bounded, [`decode_produced`]). The codecs are the `kafka-protocol` crate's;
//! this crate decides what is read, within which bounds, and how a refusal is typed. The node's
//! `kafka` module maps decoded requests onto the cluster engine; the fuzz harness runs exactly
//! these functions.

mod batch;
mod versions;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

pub use batch::{MAX_INFLATED_BATCH, MAX_PRODUCED_RECORDS, Refused, decode_produced};
pub use versions::{api_versions, supported};

/// The largest request frame a client may send; a larger one closes the connection before
/// anything is allocated for it.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Why a connection is closed (Kafka closes connections on frames it cannot read).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A length prefix past [`MAX_REQUEST_BYTES`].
    #[error("a {0}-byte request exceeds the {MAX_REQUEST_BYTES}-byte limit")]
    TooLarge(usize),
    /// A negative length prefix.
    #[error("a negative request length {0}")]
    NegativeLength(i32),
    /// Fewer bytes than the API key and version.
    #[error("a frame shorter than its header")]
    Truncated,
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// An API this broker does not serve, or a version of it outside [`supported`].
    #[error("{api:?} version {version} is not supported")]
    Unsupported {
        /// The request's API.
        api: ApiKey,
        /// The version it asked for.
        version: i16,
    },
    /// A header or body that does not decode.
    #[error("unreadable request: {0}")]
    Malformed(String),
    /// The socket.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The length a request frame's 4-byte prefix announces, within [`MAX_REQUEST_BYTES`].
pub fn frame_length(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    let length = usize::try_from(length).map_err(|_| FrameError::NegativeLength(length))?;
    if length > MAX_REQUEST_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    Ok(length)
}

/// A request as the broker answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Which API.
    pub api: ApiKey,
    /// The version the client speaks; the answer is encoded at the same version.
    pub version: i16,
    /// Correlation id and client id.
    pub header: RequestHeader,
    /// The request itself.
    pub body: RequestKind,
}

/// What a request frame (without its length prefix) decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A request at a supported version (boxed: most of a connection's frames are these, and
    /// the other variant is tiny).
    Request(Box<Request>),
    /// An ApiVersions request of a version this broker does not speak. Kafka's rule: it is
    /// answered at version 0 with UNSUPPORTED_VERSION and the supported ranges.
    UnsupportedApiVersions {
        /// The client's correlation id, echoed in the answer.
        correlation_id: i32,
    },
}

/// Decodes one request frame (the bytes after the length prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, FrameError> {
    if frame.len() < 4 {
        return Err(FrameError::Truncated);
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApi(key))?;
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| FrameError::Malformed(format!("request header: {e}")))?;
    if !supported(api).is_some_and(|(min, max)| (min..=max).contains(&version)) {
        if api == ApiKey::ApiVersions {
            return Ok(Decoded::UnsupportedApiVersions { correlation_id: header.correlation_id });
        }
        return Err(FrameError::Unsupported { api, version });
    }
    let body = RequestKind::decode(api, &mut frame, version)
        .map_err(|e| FrameError::Malformed(format!("{api:?} v{version}: {e}")))?;
    Ok(Decoded::Request(Box::new(Request { api, version, header, body })))
}

impl Request {
    /// The frame a client sends for this request (without the length prefix): what
    /// [`decode_request`] reads back to an equal request.
    pub fn encode(&self) -> Result<BytesMut, FrameError> {
        let mut buf = BytesMut::new();
        self.header.encode(&mut buf, self.api.request_header_version(self.version)).map_err(encode_error)?;
        self.body.encode(&mut buf, self.version).map_err(encode_error)?;
        Ok(buf)
    }
}

/// A response frame: length, header, body.
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, FrameError> {
    let mut buf = BytesMut::new();
    buf.put_i32(0); // length, filled below
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, api.response_header_version(version)).map_err(encode_error)?;
    body.encode(&mut buf, version).map_err(encode_error)?;
    let length = i32::try_from(buf.len() - 4).map_err(|_| FrameError::TooLarge(buf.len()))?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf)
}

fn encode_error(err: anyhow::Error) -> FrameError {
    FrameError::Malformed(format!("encoding: {err}"))
}
