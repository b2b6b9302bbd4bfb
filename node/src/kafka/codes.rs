//! Kafka's error codes, as this broker answers with them (numbers from Kafka's protocol guide).

pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(crate) const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub(crate) const LEADER_NOT_AVAILABLE: i16 = 5;
pub(crate) const CORRUPT_MESSAGE: i16 = 2;
pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
/// A lagging replica does not have the offset yet (retriable).
pub(crate) const OFFSET_NOT_AVAILABLE: i16 = 78;
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
/// A SASL mechanism other than OAUTHBEARER.
pub(crate) const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// SaslAuthenticate before SaslHandshake, or twice.
pub(crate) const ILLEGAL_SASL_STATE: i16 = 34;
/// The SASL message is not a signed claim that verifies.
pub(crate) const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// The log's access-control contract denied the (anonymous) Kafka client.
pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// A record failed the broker's validation (a log's constraint contract refused it).
pub(crate) const INVALID_RECORD: i16 = 87;
pub(crate) const NONE: i16 = 0;
pub(crate) const OFFSET_METADATA_TOO_LARGE: i16 = 12;
pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(crate) const NOT_COORDINATOR: i16 = 16;
pub(crate) const ILLEGAL_GENERATION: i16 = 22;
pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub(crate) const INVALID_GROUP_ID: i16 = 24;
pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
pub(crate) const INVALID_SESSION_TIMEOUT: i16 = 26;
pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;
pub(crate) const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub(crate) const UNKNOWN_PRODUCER_ID: i16 = 59;
