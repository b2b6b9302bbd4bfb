//! Kafka's wire protocol on every node (`[kafka] listen`): Kafka clients (kcat, librdkafka,
//! Kafka's own tools) produce to and fetch from Pyralog logs as topics. The codecs are the
//! `kafka-protocol` crate's broker side; this room maps requests onto the cluster engine.
//!
//! APIs: ApiVersions, Metadata, CreateTopics, DescribeConfigs (read-only), InitProducerId, Produce (idempotent producers too),
//! Fetch (long polling), ListOffsets, and consumer groups (FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups; see [`groups`]).
//! A record produced here is the same record as one appended over JSON-RPC: same Merkle tree,
//! checkpoints and proofs.

mod admin;
mod broker;
mod codes;
mod groups;
mod handlers;
mod ids;
mod inflate;
mod records;

use std::sync::Arc;

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use broker::{Broker, api_versions, broker_addr, supported};
use codes::UNSUPPORTED_VERSION;

use crate::config::KafkaSection;
use crate::service::links::ClusterNode;

/// The largest request frame a client may send; a larger one closes the connection before
/// anything is allocated for it.
pub(crate) const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Starts the listener; connections are served until the process ends.
pub(crate) async fn serve(
    section: &KafkaSection,
    node: Arc<ClusterNode>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(&section.listen)
        .await
        .with_context(|| format!("cannot listen on {} (kafka)", section.listen))?;
    let local = listener.local_addr()?;
    let advertised = section.advertised.clone().unwrap_or_else(|| local.to_string());
    let mut brokers = vec![broker_addr(node.id(), &advertised)?];
    for (id, addr) in &section.peers {
        let id: u64 = id.parse().with_context(|| format!("[kafka.peers]: {id:?} is not a member id"))?;
        brokers.push(broker_addr(id, addr)?);
    }
    let groups = groups::Coordinator::start(node.clone());
    let broker = Arc::new(Broker { node, id: brokers[0].id, brokers, groups });
    tracing::info!(kafka = %local, advertised = %advertised, "Kafka protocol listening");
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    tokio::spawn(async move {
                        if let Err(err) = connection(broker, stream, peer.ip().to_string()).await {
                            tracing::debug!(%peer, %err, "kafka connection closed");
                        }
                    });
                }
                Err(err) => tracing::warn!(%err, "kafka accept failed"),
            }
        }
    }))
}

/// Why a connection is closed (Kafka closes connections on frames it cannot read).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// A length prefix past [`MAX_REQUEST_BYTES`].
    #[error("a {0}-byte request exceeds the {MAX_REQUEST_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a request this broker can read.
    #[error("unreadable request: {0}")]
    Malformed(String),
    /// The socket.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

async fn connection(broker: Arc<Broker>, mut stream: TcpStream, host: String) -> Result<(), FrameError> {
    stream.set_nodelay(true)?;
    loop {
        let mut length = [0u8; 4];
        if stream.read_exact(&mut length).await.is_err() {
            return Ok(()); // the client went away
        }
        let length = i32::from_be_bytes(length);
        let length =
            usize::try_from(length).map_err(|_| FrameError::Malformed(format!("length {length}")))?;
        if length > MAX_REQUEST_BYTES {
            tracing::info!(length, "kafka request over the size limit: connection closed");
            return Err(FrameError::TooLarge(length));
        }
        let mut frame = vec![0u8; length];
        stream.read_exact(&mut frame).await?;
        let response = broker.handle(Bytes::from(frame), &host).await?;
        if let Some(response) = response {
            stream.write_all(&response).await?;
        }
    }
}

impl Broker {
    /// Answers one request frame (`None`: a produce with acks=0, which gets no answer).
    async fn handle(&self, mut frame: Bytes, host: &str) -> Result<Option<BytesMut>, FrameError> {
        if frame.len() < 4 {
            return Err(FrameError::Malformed("a frame shorter than its header".into()));
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api =
            ApiKey::try_from(key).map_err(|_| FrameError::Malformed(format!("unknown API key {key}")))?;
        let header_version = api.request_header_version(version);
        let header = RequestHeader::decode(&mut frame, header_version)
            .map_err(|e| FrameError::Malformed(format!("request header: {e}")))?;
        let in_range = supported(api).is_some_and(|(min, max)| (min..=max).contains(&version));
        if !in_range {
            if api == ApiKey::ApiVersions {
                // Kafka's rule: an ApiVersions request of an unknown version is answered at
                // version 0 with UNSUPPORTED_VERSION and the supported ranges.
                let body = api_versions(UNSUPPORTED_VERSION);
                return Ok(Some(respond(api, 0, header.correlation_id, &body)?));
            }
            return Err(FrameError::Malformed(format!("{api:?} version {version} is not supported")));
        }
        let request = RequestKind::decode(api, &mut frame, version)
            .map_err(|e| FrameError::Malformed(format!("{api:?} v{version}: {e}")))?;
        let correlation = header.correlation_id;
        let answer = match request {
            RequestKind::ApiVersions(_) => respond(api, version, correlation, &api_versions(0))?,
            RequestKind::Metadata(request) => respond(api, version, correlation, &self.metadata(request))?,
            RequestKind::ListOffsets(request) => {
                respond(api, version, correlation, &self.list_offsets(request))?
            }
            RequestKind::Produce(request) => {
                let acks = request.acks;
                let response = self.produce(request).await;
                if acks == 0 {
                    return Ok(None);
                }
                respond(api, version, correlation, &response)?
            }
            RequestKind::Fetch(request) => respond(api, version, correlation, &self.fetch(request).await)?,
            RequestKind::CreateTopics(request) => {
                respond(api, version, correlation, &self.create_topics(request).await)?
            }
            RequestKind::InitProducerId(request) => {
                respond(api, version, correlation, &self.init_producer_id(request))?
            }
            RequestKind::DescribeConfigs(request) => {
                respond(api, version, correlation, &self.describe_configs(request, version))?
            }
            RequestKind::FindCoordinator(request) => {
                respond(api, version, correlation, &self.find_coordinator(request, version))?
            }
            RequestKind::JoinGroup(request) => {
                let client = groups::Client {
                    id: header.client_id.as_deref().unwrap_or_default().to_owned(),
                    host: host.to_owned(),
                };
                respond(api, version, correlation, &self.groups.join_group(request, version, &client).await)?
            }
            RequestKind::SyncGroup(request) => {
                respond(api, version, correlation, &self.groups.sync_group(request, version).await)?
            }
            RequestKind::Heartbeat(request) => {
                respond(api, version, correlation, &self.groups.heartbeat(request).await)?
            }
            RequestKind::LeaveGroup(request) => {
                respond(api, version, correlation, &self.groups.leave_group(request, version).await)?
            }
            RequestKind::OffsetCommit(request) => {
                respond(api, version, correlation, &self.groups.offset_commit(request).await)?
            }
            RequestKind::OffsetFetch(request) => {
                respond(api, version, correlation, &self.groups.offset_fetch(request, version).await)?
            }
            RequestKind::ListGroups(request) => {
                respond(api, version, correlation, &self.groups.list_groups(request, version).await)?
            }
            RequestKind::DescribeGroups(request) => {
                respond(api, version, correlation, &self.groups.describe_groups(request, version).await)?
            }
            other => return Err(FrameError::Malformed(format!("no handler for {other:?}"))),
        };
        Ok(Some(answer))
    }
}

/// The response frame: length, header, body.
fn respond<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, FrameError> {
    let mut buf = BytesMut::new();
    buf.put_i32(0); // length, filled below
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encode_err = |e: anyhow::Error| FrameError::Malformed(format!("encoding the answer: {e}"));
    header.encode(&mut buf, api.response_header_version(version)).map_err(encode_err)?;
    body.encode(&mut buf, version).map_err(encode_err)?;
    let length = i32::try_from(buf.len() - 4).map_err(|_| FrameError::TooLarge(buf.len()))?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf)
}
