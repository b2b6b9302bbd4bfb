//! Signed client requests at the node (the format is `pyralog_rpc_params::auth`): the
//! signature, the clock window and the replay cache, then the log's access-control contract.
//!
//! The replay cache is this node's: each (key, nonce) is taken once within the timestamp
//! window. A request replayed to another node within the window is not caught there; an
//! idempotent producer's records are still stored once.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use pyralog_cluster::acl::Operation;
use pyralog_crypto::Digest;
use pyralog_crypto::PublicKey;
use pyralog_rpc_params::auth::{Auth, MAX_SKEW_MS, RequestClaim};

use crate::clock::unix_ms;
use crate::rpc::codes::{self, cluster_error};
use crate::service::links::ClusterNode as Node;

/// Most (key, nonce) pairs kept; past it, the oldest expire first.
const MAX_REMEMBERED: usize = 1 << 20;

/// (key, nonce) -> when it leaves the window (ms).
static SEEN: LazyLock<Mutex<HashMap<(PublicKey, u64), u64>>> = LazyLock::new(Default::default);

fn unauthenticated(message: String) -> ErrorObjectOwned {
    ErrorObject::owned(codes::UNAUTHENTICATED, message, None::<()>)
}

/// What a request does, for its signature.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) log: &'a str,
    pub(crate) partition: Option<u32>,
    pub(crate) body: Digest,
    pub(crate) operation: Operation,
}

/// The client's verified identity (none: anonymous), checked against the log's access-control
/// contract.
pub(crate) fn authorize(
    node: &Node,
    auth: Option<&Auth>,
    request: Request<'_>,
) -> Result<(), ErrorObjectOwned> {
    let caller = match auth {
        None => None,
        Some(auth) => Some(verify(auth, &request)?),
    };
    node.authorize(request.log, caller.as_ref(), request.operation, request.partition).map_err(cluster_error)
}

fn verify(auth: &Auth, request: &Request<'_>) -> Result<PublicKey, ErrorObjectOwned> {
    let claim = RequestClaim {
        method: request.method,
        log: request.log,
        partition: request.partition,
        timestamp_ms: auth.timestamp_ms,
        nonce: auth.nonce,
        body: request.body,
    };
    let key = auth.verify(&claim).map_err(|err| unauthenticated(err.to_string()))?;
    let now = unix_ms();
    if auth.timestamp_ms.abs_diff(now) > MAX_SKEW_MS {
        return Err(unauthenticated(format!(
            "auth.timestampMs {} is more than {MAX_SKEW_MS} ms from this node's clock ({now})",
            auth.timestamp_ms
        )));
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.len() >= MAX_REMEMBERED {
        seen.retain(|_, expires| *expires > now);
    }
    if seen.get(&(key, auth.nonce)).is_some_and(|expires| *expires > now) {
        return Err(unauthenticated(format!(
            "auth.nonce {} of this key was already used (a replay)",
            auth.nonce
        )));
    }
    seen.insert((key, auth.nonce), auth.timestamp_ms + MAX_SKEW_MS);
    Ok(key)
}
