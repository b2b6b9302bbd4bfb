//! CreateTopics, DescribeConfigs and InitProducerId: a topic is a log created through the
//! cluster's global Raft group, with the few settings a log has; a producer id is drawn at random
//! (Pyralog's idempotent producers are named by their clients), so no two brokers need to agree
//! on the next one.

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use pyralog_cluster::engine::ClusterError;
use pyralog_cluster::model::LogConfig;
use pyralog_cluster::raft::Rejection;
use pyralog_crypto::LogName;

use super::broker::Broker;
use super::codes::{
    INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_REQUEST, INVALID_TOPIC, TOPIC_ALREADY_EXISTS,
    UNKNOWN_SERVER_ERROR, UNKNOWN_TOPIC_OR_PARTITION,
};
use super::ids::random_id;
use super::records::PRODUCER_ID_BITS;

/// The largest record a topic created over Kafka takes (as `log_create`'s default).
const MAX_RECORD_BYTES: u32 = 1 << 20;

/// DescribeConfigs' resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
/// A config's source: set for this topic (when its log was created), or a default.
const TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;
/// Config types (DescribeConfigs v3+).
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;

impl Broker {
    /// A topic's settings as Kafka names them (read-only: a log's are fixed when it is created);
    /// brokers report none.
    pub(crate) fn describe_configs(
        &self,
        request: DescribeConfigsRequest,
        version: i16,
    ) -> DescribeConfigsResponse {
        let results = request
            .resources
            .into_iter()
            .map(|resource| {
                let result = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                let configs = match resource.resource_type {
                    TOPIC => match self.node.log(&resource.resource_name) {
                        Ok(log) => vec![
                            ("cleanup.policy", "delete".to_owned(), STRING, DEFAULT_CONFIG),
                            ("retention.ms", "-1".to_owned(), LONG, DEFAULT_CONFIG),
                            ("max.message.bytes", log.config.max_record_bytes.to_string(), INT, TOPIC_CONFIG),
                            // A Raft majority of the replicas acknowledges every write.
                            (
                                "min.insync.replicas",
                                (log.config.replication_factor / 2 + 1).to_string(),
                                INT,
                                TOPIC_CONFIG,
                            ),
                            ("message.timestamp.type", "CreateTime".to_owned(), STRING, DEFAULT_CONFIG),
                        ],
                        Err(_) => return result.with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
                    },
                    BROKER | BROKER_LOGGER => Vec::new(),
                    _ => return result.with_error_code(INVALID_REQUEST),
                };
                let wanted = resource.configuration_keys;
                let configs = configs
                    .into_iter()
                    .filter(|(name, ..)| {
                        wanted.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == *name))
                    })
                    .map(|(name, value, kind, source)| {
                        let config = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_value(Some(StrBytes::from_string(value)))
                            .with_read_only(true)
                            .with_config_source(source);
                        if version >= 3 { config.with_config_type(kind) } else { config }
                    })
                    .collect();
                result.with_configs(configs)
            })
            .collect();
        DescribeConfigsResponse::default().with_results(results)
    }

    /// Creates each topic as a log (`num_partitions` -1: one; `replication_factor` -1: every
    /// member, up to three).
    pub(crate) async fn create_topics(&self, request: CreateTopicsRequest) -> CreateTopicsResponse {
        let members = self.node.status().members.len();
        let mut results = Vec::new();
        for topic in request.topics {
            let partitions = if topic.num_partitions == -1 { 1 } else { topic.num_partitions };
            let factor =
                if topic.replication_factor == -1 { members.min(3) as i16 } else { topic.replication_factor };
            let result = CreatableTopicResult::default()
                .with_name(topic.name.clone())
                .with_num_partitions(partitions)
                .with_replication_factor(factor);
            let config = match (
                LogName::new(topic.name.0.to_string()),
                u32::try_from(partitions).ok().filter(|p| *p > 0),
                u8::try_from(factor).ok().filter(|f| *f > 0),
            ) {
                (Err(err), ..) => {
                    results
                        .push(result.with_error_code(INVALID_TOPIC).with_error_message(Some(message(err))));
                    continue;
                }
                (_, None, _) => {
                    results.push(result.with_error_code(INVALID_PARTITIONS));
                    continue;
                }
                (_, _, None) => {
                    results.push(result.with_error_code(INVALID_REPLICATION_FACTOR));
                    continue;
                }
                (Ok(name), Some(partitions), Some(replication_factor)) => LogConfig {
                    name,
                    partitions,
                    replication_factor,
                    max_record_bytes: MAX_RECORD_BYTES,
                    zk: Default::default(),
                    constraint: None,
                    trigger: None,
                    acl: None,
                },
            };
            if request.validate_only {
                results.push(result);
                continue;
            }
            results.push(match self.node.create_log(config).await {
                Ok(_) => result,
                Err(err) => {
                    let code = match &err {
                        ClusterError::Rejected(Rejection::LogExists(_)) => TOPIC_ALREADY_EXISTS,
                        ClusterError::Rejected(Rejection::NotEnoughMembers { .. }) => {
                            INVALID_REPLICATION_FACTOR
                        }
                        ClusterError::Rejected(Rejection::InvalidLog(_)) => INVALID_REQUEST,
                        _ => UNKNOWN_SERVER_ERROR,
                    };
                    result.with_error_code(code).with_error_message(Some(message(err)))
                }
            });
        }
        CreateTopicsResponse::default().with_topics(results)
    }

    /// A fresh producer id (epoch 0) for an idempotent producer; transactions are refused.
    pub(crate) fn init_producer_id(&self, request: InitProducerIdRequest) -> InitProducerIdResponse {
        if request.transactional_id.is_some() {
            return InitProducerIdResponse::default()
                .with_error_code(INVALID_REQUEST)
                .with_producer_id(ProducerId(-1));
        }
        InitProducerIdResponse::default()
            // `PRODUCER_ID_BITS` wide, so id and epoch make one Pyralog producer.
            .with_producer_id(ProducerId(
                (random_id(b"pyralog kafka producer id") >> (64 - PRODUCER_ID_BITS)) as i64,
            ))
            .with_producer_epoch(0)
    }
}

fn message(err: impl std::fmt::Display) -> StrBytes {
    StrBytes::from_string(err.to_string())
}
