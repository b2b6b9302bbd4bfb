//! What every RPC namespace registers its methods with: timing (request metrics), params
//! parsing, hex params, subscription sends.

use jsonrpsee::RpcModule;
use jsonrpsee::core::server::SubscriptionSink;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use pyralog_chain::tx::SignedTx;
use pyralog_consensus::driver::Admission;
use pyralog_rpc_params::{AtHeight, ParamsError};
use serde_json::Value;

use jsonrpsee::types::ErrorObject;
use serde_json::json;

use crate::rpc::codes::{self, internal, invalid};
use crate::service::chain::ChainService;
use crate::service::metrics::RequestTimer;

/// A method's answer.
pub(crate) type RpcResult = Result<Value, ErrorObjectOwned>;

/// Registers a synchronous method over context `C`, recording its count and latency.
pub(crate) fn register_timed<C: Send + Sync + 'static>(
    module: &mut RpcModule<C>,
    name: &'static str,
    f: fn(&C, Params<'_>) -> RpcResult,
) {
    module
        .register_method(name, move |params, ctx, _| {
            let timer = RequestTimer::start(name);
            let result = f(ctx, params);
            timer.done(result.is_ok());
            result
        })
        .expect("unique method name");
}

/// Runs an async method, recording its count and latency.
pub(crate) async fn timed(method: &'static str, call: impl Future<Output = RpcResult>) -> RpcResult {
    let timer = RequestTimer::start(method);
    let result = call.await;
    timer.done(result.is_ok());
    result
}

/// The params as `T` (decoded and checked by `pyralog-rpc-params`), or an invalid-params error
/// saying what is wrong.
pub(crate) fn parse<T: pyralog_rpc_params::Params>(params: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    T::decode(params.as_str()).map_err(refused)
}

/// Refused params: invalid params (-32602) with what is wrong.
pub(crate) fn refused(err: ParamsError) -> ErrorObjectOwned {
    invalid(err.to_string())
}

/// Sends `value` to a subscriber; false when the subscriber is gone.
pub(crate) async fn send(sink: &SubscriptionSink, value: Value) -> bool {
    match serde_json::value::to_raw_value(&value) {
        Ok(raw) => sink.send(raw).await.is_ok(),
        Err(_) => false,
    }
}

/// The committed state version `height` names (default: the latest), or an unknown-height error.
pub(crate) fn state_version(chain: &ChainService, height: Option<u64>) -> Result<u64, ErrorObjectOwned> {
    let latest = chain.state.latest_version().map_err(internal)?.unwrap_or(0);
    let version = height.unwrap_or(latest);
    let pruned = chain.state.pruned_below().map_err(internal)?;
    if version > latest || version < pruned {
        return Err(ErrorObject::owned(
            codes::UNKNOWN_HEIGHT,
            format!("state at height {version} is not available (latest {latest}, pruned below {pruned})"),
            Some(json!({ "latest": latest, "prunedBelow": pruned })),
        ));
    }
    Ok(version)
}

/// A method's only param, `{height?}`; `params` may be omitted entirely (`[]` or none) for the
/// default.
pub(crate) fn height_param(params: &Params<'_>) -> Result<Option<u64>, ErrorObjectOwned> {
    Ok(parse::<AtHeight>(params)?.height)
}

/// Signed transaction `bytes`, decoded and checked (size, chain, signature), or `TX_REJECTED`.
pub(crate) fn decode_tx(chain: &ChainService, bytes: &[u8]) -> Result<SignedTx, ErrorObjectOwned> {
    SignedTx::decode_and_verify(bytes, &chain.chain_id)
        .map_err(|err| ErrorObject::owned(codes::TX_REJECTED, err.to_string(), None::<()>))
}

/// Checks transaction `bytes` (already decoded by [`decode_tx`]) against the chain's state and
/// queues it in the mempool, or says why not (`TX_REJECTED`, `MEMPOOL_FULL`).
pub(crate) async fn queue_tx(chain: &ChainService, bytes: Vec<u8>) -> Result<(), ErrorObjectOwned> {
    if let Err(reason) = chain.check_tx(&bytes).map_err(internal)? {
        return Err(ErrorObject::owned(codes::TX_REJECTED, reason, None::<()>));
    }
    match chain.submitter.submit(bytes).await.map_err(internal)? {
        Admission::Queued | Admission::AlreadyKnown => Ok(()),
        Admission::MempoolFull { capacity } => Err(ErrorObject::owned(
            codes::MEMPOOL_FULL,
            format!(
                "the mempool is full ({capacity} transactions); the transaction was dropped, retry later"
            ),
            Some(json!({ "capacity": capacity })),
        )),
        Admission::Rejected(reason) => Err(ErrorObject::owned(codes::TX_REJECTED, reason, None::<()>)),
    }
}

/// What a log request does, for its signature (`pyralog_rpc_params::auth`).
pub(crate) struct LogRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) log: &'a str,
    pub(crate) partition: Option<u32>,
    pub(crate) body: pyralog_crypto::Digest,
    pub(crate) operation: pyralog_cluster::acl::Operation,
}

/// The client's verified identity (none: anonymous; a refused signature, clock or nonce is
/// `UNAUTHENTICATED`), checked against the log's access-control contract.
pub(crate) fn authorize(
    node: &crate::service::links::ClusterNode,
    auth: Option<&pyralog_rpc_params::auth::Auth>,
    request: LogRequest<'_>,
) -> Result<(), ErrorObjectOwned> {
    let caller = match auth {
        None => None,
        Some(auth) => {
            let claim = pyralog_rpc_params::auth::RequestClaim {
                method: request.method,
                log: request.log,
                partition: request.partition,
                timestamp_ms: auth.timestamp_ms,
                nonce: auth.nonce,
                body: request.body,
            };
            let key = crate::client_auth::verify(auth, &claim, crate::client_auth::Replay::Once)
                .map_err(|why| ErrorObject::owned(codes::UNAUTHENTICATED, why, None::<()>))?;
            Some(key)
        }
    };
    node.authorize(request.log, caller.as_ref(), request.operation, request.partition)
        .map_err(codes::cluster_error)
}
