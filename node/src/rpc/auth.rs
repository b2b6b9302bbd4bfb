//! Signed client requests at the node (the format is `pyralog_rpc_params::auth`, the checks
//! `crate::client_auth`), then the log's access-control contract.

use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use pyralog_cluster::acl::Operation;
use pyralog_crypto::Digest;
use pyralog_rpc_params::auth::{Auth, RequestClaim};

use crate::rpc::codes::{self, cluster_error};
use crate::service::links::ClusterNode as Node;

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
        Some(auth) => {
            let claim = RequestClaim {
                method: request.method,
                log: request.log,
                partition: request.partition,
                timestamp_ms: auth.timestamp_ms,
                nonce: auth.nonce,
                body: request.body,
            };
            let key = crate::client_auth::verify(auth, &claim)
                .map_err(|why| ErrorObject::owned(codes::UNAUTHENTICATED, why, None::<()>))?;
            Some(key)
        }
    };
    node.authorize(request.log, caller.as_ref(), request.operation, request.partition).map_err(cluster_error)
}
