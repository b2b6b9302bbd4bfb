//! WebSocket subscriptions: new records of a partition, and its certified checkpoints.
//!
//! `log_subscribeRecords {log, partition, from}` sends every record from offset `from` on, once
//! and in order, as this node applies them (notifications `log_record`); a slow client is
//! disconnected rather than buffered without bound. `log_subscribeCheckpoints {log, partition}`
//! sends each newly certified checkpoint (notifications `log_checkpoint`).

use jsonrpsee::RpcModule;
use jsonrpsee::core::server::PendingSubscriptionSink;
use jsonrpsee::types::Params;
use pyralog_cluster::engine::ClusterError;
use pyralog_rpc_params::{Partition, SubscribeRecords};

use pyralog_light::wire::{certificate_json, record_json};

use crate::rpc::codes::cluster_error;
use crate::rpc::method::{parse, send};
use crate::service::links::ClusterNode;

/// Records read per storage read while catching a subscriber up.
const READ_CHUNK: usize = 256;

/// Adds the subscriptions to `module`.
pub(crate) fn register(module: &mut RpcModule<ClusterNode>) {
    module
        .register_subscription(
            "log_subscribeRecords",
            "log_record",
            "log_unsubscribeRecords",
            |params, pending, node, _| async move { records(&node, params, pending).await },
        )
        .expect("unique method names");
    module
        .register_subscription(
            "log_subscribeCheckpoints",
            "log_checkpoint",
            "log_unsubscribeCheckpoints",
            |params, pending, node, _| async move { checkpoints(&node, params, pending).await },
        )
        .expect("unique method names");
}

async fn records(node: &ClusterNode, params: Params<'static>, pending: PendingSubscriptionSink) {
    let p: SubscribeRecords = match parse(&params) {
        Ok(p) => p,
        Err(err) => return pending.reject(err).await,
    };
    let allowed = node.authorize(&p.log, None, pyralog_cluster::acl::Operation::Read, Some(p.partition));
    let replica = match allowed.and_then(|()| node.log(&p.log)).and_then(|log| {
        if p.partition >= log.config.partitions {
            return Err(ClusterError::UnknownPartition {
                log: p.log.clone(),
                partition: p.partition,
                partitions: log.config.partitions,
            });
        }
        let id = log.partition_id(p.partition);
        node.replica(id).ok_or(ClusterError::NotReplica {
            partition: id,
            replicas: log.placement[p.partition as usize].clone(),
        })
    }) {
        Ok(replica) => replica,
        Err(err) => return pending.reject(cluster_error(err)).await,
    };
    let Ok(sink) = pending.accept().await else { return };
    let mut state = replica.subscribe();
    let mut next = p.from;
    loop {
        let size = state.borrow_and_update().size;
        while next < size {
            let Ok(batch) = node.read(&p.log, p.partition, next, READ_CHUNK) else { return };
            let Some(last) = batch.last() else { break };
            next = last.offset + 1;
            for record in &batch {
                if !send(&sink, record_json(record)).await {
                    return;
                }
            }
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            () = sink.closed() => return,
        }
    }
}

async fn checkpoints(node: &ClusterNode, params: Params<'static>, pending: PendingSubscriptionSink) {
    let p: Partition = match parse(&params) {
        Ok(p) => p,
        Err(err) => return pending.reject(err).await,
    };
    if let Err(err) = node.checkpoint(&p.log, p.partition) {
        return pending.reject(cluster_error(err)).await;
    }
    let Ok(sink) = pending.accept().await else { return };
    let mut global = node.global_state();
    let mut sent = 0;
    loop {
        global.borrow_and_update();
        if let Ok(Some(certificate)) = node.checkpoint(&p.log, p.partition)
            && certificate.message.size > sent
        {
            sent = certificate.message.size;
            if !send(&sink, certificate_json(&certificate)).await {
                return;
            }
        }
        tokio::select! {
            changed = global.changed() => if changed.is_err() { return },
            () = sink.closed() => return,
        }
    }
}
