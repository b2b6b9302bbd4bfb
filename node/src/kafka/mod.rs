//! Kafka's wire protocol on every node (`[kafka] listen`): Kafka clients (kcat, librdkafka,
//! Kafka's own tools) produce to and fetch from Pyralog logs as topics. The codecs are the
//! `kafka-protocol` crate's broker side; this room maps requests onto the cluster engine.
//!
//! APIs: ApiVersions, Metadata, CreateTopics, DescribeConfigs (read-only), InitProducerId, Produce (idempotent producers too),
//! Fetch (long polling), ListOffsets, and consumer groups (FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups; see [`groups`]),
//! and SaslHandshake/SaslAuthenticate (OAUTHBEARER carrying a signed client identity, which a
//! log's access-control contract sees; see [`sasl`]).
//! A record produced here is the same record as one appended over JSON-RPC: same Merkle tree,
//! checkpoints and proofs.

mod admin;
mod broker;
mod codes;
mod groups;
mod handlers;
mod ids;
mod records;
mod sasl;

use std::sync::Arc;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use pyralog_kafka_wire::{
    Decoded, FrameError, Request, api_versions, decode_request, encode_response as respond, frame_length,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use broker::{Broker, broker_addr};
use codes::{
    ILLEGAL_SASL_STATE, NONE, SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, UNSUPPORTED_VERSION,
};

use crate::service::links::ClusterNode;
use pyralog_config::KafkaSection;

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

async fn connection(broker: Arc<Broker>, mut stream: TcpStream, host: String) -> Result<(), FrameError> {
    stream.set_nodelay(true)?;
    let mut session = sasl::Session::default();
    loop {
        let mut length = [0u8; 4];
        if stream.read_exact(&mut length).await.is_err() {
            return Ok(()); // the client went away
        }
        let length = frame_length(length).inspect_err(|err| {
            tracing::info!(%err, "kafka request length refused: connection closed");
        })?;
        let mut frame = vec![0u8; length];
        stream.read_exact(&mut frame).await?;
        let response = broker.handle(Bytes::from(frame), &host, &mut session).await?;
        if let Some(response) = response {
            stream.write_all(&response).await?;
        }
    }
}

impl Broker {
    /// Answers one request frame (`None`: a produce with acks=0, which gets no answer).
    async fn handle(
        &self,
        frame: Bytes,
        host: &str,
        session: &mut sasl::Session,
    ) -> Result<Option<BytesMut>, FrameError> {
        let Request { api, version, header, body: request } = match decode_request(frame)? {
            Decoded::Request(request) => *request,
            Decoded::UnsupportedApiVersions { correlation_id } => {
                let body = api_versions(UNSUPPORTED_VERSION);
                return Ok(Some(respond(ApiKey::ApiVersions, 0, correlation_id, &body)?));
            }
        };
        let correlation = header.correlation_id;
        let answer = match request {
            RequestKind::ApiVersions(_) => respond(api, version, correlation, &api_versions(0))?,
            RequestKind::Metadata(request) => respond(api, version, correlation, &self.metadata(request))?,
            RequestKind::ListOffsets(request) => {
                respond(api, version, correlation, &self.list_offsets(request))?
            }
            RequestKind::SaslHandshake(request) => {
                let code = match session.handshake(request.mechanism.as_str()) {
                    true => NONE,
                    false => UNSUPPORTED_SASL_MECHANISM,
                };
                let mechanisms = vec![StrBytes::from_static_str(sasl::MECHANISM)];
                let body = SaslHandshakeResponse::default().with_error_code(code).with_mechanisms(mechanisms);
                respond(api, version, correlation, &body)?
            }
            RequestKind::SaslAuthenticate(request) => {
                let body = match session.authenticate(&request.auth_bytes) {
                    Ok(key) => {
                        tracing::debug!(%key, "kafka client authenticated");
                        SaslAuthenticateResponse::default()
                    }
                    Err(refusal) => {
                        let (code, message) = match refusal {
                            sasl::SaslRefusal::State => {
                                (ILLEGAL_SASL_STATE, "authenticate once, after a handshake".to_owned())
                            }
                            sasl::SaslRefusal::Failed(why) => (SASL_AUTHENTICATION_FAILED, why),
                        };
                        SaslAuthenticateResponse::default()
                            .with_error_code(code)
                            .with_error_message(Some(StrBytes::from_string(message)))
                    }
                };
                respond(api, version, correlation, &body)?
            }
            RequestKind::Produce(request) => {
                let acks = request.acks;
                let response = self.produce(request, session.principal()).await;
                if acks == 0 {
                    return Ok(None);
                }
                respond(api, version, correlation, &response)?
            }
            RequestKind::Fetch(request) => {
                respond(api, version, correlation, &self.fetch(request, session.principal()).await)?
            }
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
            // `decode_request` reads only the APIs in `supported`, each handled above.
            _ => return Err(FrameError::Unsupported { api, version }),
        };
        Ok(Some(answer))
    }
}
