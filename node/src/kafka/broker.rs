//! The broker as every connection sees it: the cluster node, the brokers Metadata lists, the API
//! versions served and Kafka's error codes.

use std::sync::Arc;

use anyhow::Context;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;

use crate::service::links::ClusterNode;

/// Kafka's error codes this broker answers with.
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(crate) const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub(crate) const LEADER_NOT_AVAILABLE: i16 = 5;
pub(crate) const CORRUPT_MESSAGE: i16 = 2;
pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
pub(crate) const MESSAGE_TOO_LARGE: i16 = 10;
pub(crate) const REQUEST_TIMED_OUT: i16 = 7;
pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
pub(crate) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub(crate) const UNKNOWN_SERVER_ERROR: i16 = -1;
pub(crate) const INVALID_TOPIC: i16 = 17;
pub(crate) const TOPIC_ALREADY_EXISTS: i16 = 36;
pub(crate) const INVALID_PARTITIONS: i16 = 37;
pub(crate) const INVALID_REPLICATION_FACTOR: i16 = 38;
pub(crate) const INVALID_REQUEST: i16 = 42;

/// A broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerAddr {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
}

/// `host:port` of broker `id`.
pub(crate) fn broker_addr(id: u64, addr: &str) -> anyhow::Result<BrokerAddr> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<i32>().ok()?)))
        .with_context(|| format!("kafka address {addr:?} is not host:port"))?;
    let id = i32::try_from(id).context("a member id does not fit a Kafka broker id")?;
    Ok(BrokerAddr { id, host, port })
}

/// What every connection shares.
pub(crate) struct Broker {
    pub(crate) node: Arc<ClusterNode>,
    /// This node's broker id (its cluster member id).
    pub(crate) id: i32,
    /// Every broker Metadata lists: this node first, then its peers.
    pub(crate) brokers: Vec<BrokerAddr>,
}

/// The API versions this broker serves: the crate's ranges, capped where newer versions name
/// topics by id (which Pyralog logs do not have).
pub(crate) fn supported(key: ApiKey) -> Option<(i16, i16)> {
    Some(match key {
        ApiKey::ApiVersions => (0, 4),
        ApiKey::Metadata => (0, 12),
        ApiKey::Produce => (3, 12),
        ApiKey::Fetch => (4, 12),
        ApiKey::ListOffsets => (1, 8),
        ApiKey::CreateTopics => (2, 7),
        ApiKey::InitProducerId => (0, 4),
        _ => return None,
    })
}

/// The supported API versions.
pub(crate) fn api_versions(error_code: i16) -> ApiVersionsResponse {
    let api_keys = ApiKey::iter()
        .filter_map(|key| {
            let (min, max) = supported(key)?;
            Some(ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max))
        })
        .collect();
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}
