//! The API versions this broker serves.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;

/// The API versions this broker serves: the crate's ranges, capped where newer versions name
/// topics by id (which Pyralog logs do not have).
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    Some(match key {
        ApiKey::ApiVersions => (0, 4),
        ApiKey::Metadata => (0, 12),
        ApiKey::Produce => (3, 12),
        ApiKey::Fetch => (4, 12),
        ApiKey::ListOffsets => (1, 8),
        ApiKey::CreateTopics => (2, 7),
        ApiKey::InitProducerId => (0, 4),
        ApiKey::DescribeConfigs => (1, 4),
        ApiKey::FindCoordinator => (0, 4),
        ApiKey::JoinGroup => (0, 9),
        ApiKey::SyncGroup => (0, 5),
        ApiKey::Heartbeat => (0, 4),
        ApiKey::LeaveGroup => (0, 5),
        // v9 counts KIP-848 member epochs, not classic generations.
        ApiKey::OffsetCommit => (2, 8),
        ApiKey::OffsetFetch => (1, 8),
        ApiKey::ListGroups => (0, 5),
        ApiKey::DescribeGroups => (0, 5),
        // SASL/OAUTHBEARER, whose extensions carry a signed client identity.
        ApiKey::SaslHandshake => (0, 1),
        ApiKey::SaslAuthenticate => (0, 2),
        _ => return None,
    })
}

/// The supported API versions.
pub fn api_versions(error_code: i16) -> ApiVersionsResponse {
    let api_keys = ApiKey::iter()
        .filter_map(|key| {
            let (min, max) = supported(key)?;
            Some(ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max))
        })
        .collect();
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}
