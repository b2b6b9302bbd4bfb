//! The JSON-RPC server: jsonrpsee over our own accept loop, so every request carries the
//! client's IP address (jsonrpsee's own loop does not expose it) and the per-IP rate limit can
//! key on it.
//!
//! The rate limit is a GCRA token bucket per client IP (`governor`): `rate_limit_per_ip` calls
//! per second with bursts of `rate_limit_burst`. Every call counts, including each call of a
//! batch and each subscribe; notifications the server pushes do not. A call over the limit gets
//! error 1032 with `data.retryAfterMs` and is not run. The address is the TCP peer's: behind a
//! reverse proxy every client shares the proxy's bucket (forwarded headers are not trusted).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::server::middleware::http::ProxyGetRequestLayer;
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{
    HttpRequest, Server, ServerConfig, ServerHandle, serve_with_graceful_shutdown, stop_channel,
};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Request};
use jsonrpsee::{MethodResponse, Methods};
use serde_json::json;
use tower::Service;

use crate::rpc::codes;
use pyralog_config::RpcSection;

/// The client's address, put into every request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
struct ClientIp(IpAddr);

/// Binds `section.addr` and serves `methods` until the returned handle is stopped.
pub(crate) async fn serve(
    section: &RpcSection,
    methods: impl Into<Methods>,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let listener = tokio::net::TcpListener::bind(&section.addr)
        .await
        .with_context(|| format!("cannot listen on {} (rpc)", section.addr))?;
    let local = listener.local_addr()?;
    let config = ServerConfig::builder()
        .max_request_body_size(section.max_request_bytes)
        .max_response_body_size(section.max_response_bytes)
        .max_connections(section.max_connections)
        .max_subscriptions_per_connection(section.max_subscriptions_per_connection)
        .build();
    // Plain HTTP probes for load balancers and orchestrators: `GET /health` (liveness, always
    // 200 with the health JSON) and `GET /readiness` (200 once the node serves the cluster,
    // 500 before).
    let probes =
        ProxyGetRequestLayer::new([("/health", "system_health"), ("/readiness", "system_readiness")])?;
    let limiter = RateLimiter::from_config(section).map(Arc::new);
    let builder = Server::builder()
        .set_http_middleware(tower::ServiceBuilder::new().layer(crate::ui::UiLayer).layer(probes))
        .set_rpc_middleware(
            RpcServiceBuilder::new().layer_fn(move |inner| RateLimited { inner, limiter: limiter.clone() }),
        )
        .set_config(config)
        .to_service_builder();
    let methods: Methods = methods.into();
    let (stop, handle) = stop_channel();
    tokio::spawn(async move {
        loop {
            let (socket, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::debug!(%err, "rpc accept failed");
                        continue;
                    }
                },
                _ = stop.clone().shutdown() => break,
            };
            let service = builder.clone().build(methods.clone(), stop.clone());
            let service = TagClientIp { inner: service, client: ClientIp(peer.ip()) };
            tokio::spawn(serve_with_graceful_shutdown(socket, service, stop.clone().shutdown()));
        }
    });
    Ok((local, handle))
}

/// Puts the connection's client address into every HTTP request (and so into every JSON-RPC
/// call, which inherits the request's extensions, over HTTP and WebSocket alike).
#[derive(Clone)]
struct TagClientIp<S> {
    inner: S,
    client: ClientIp,
}

impl<S, B> Service<HttpRequest<B>> for TagClientIp<S>
where
    S: Service<HttpRequest<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest<B>) -> Self::Future {
        request.extensions_mut().insert(self.client);
        self.inner.call(request)
    }
}

/// Token buckets per client IP.
struct RateLimiter {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    per_second: u32,
}

impl RateLimiter {
    /// `None` when the limit is off (`rate_limit_per_ip = 0`).
    fn from_config(section: &RpcSection) -> Option<Self> {
        let per_second = NonZeroU32::new(section.rate_limit_per_ip)?;
        let burst = NonZeroU32::new(section.rate_limit_burst).unwrap_or(per_second);
        let buckets = DefaultKeyedRateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst));
        Some(RateLimiter { buckets, per_second: per_second.get() })
    }

    /// `Err` with the error to answer when `request` is over its client's limit.
    fn admit(&self, extensions: &jsonrpsee::Extensions) -> Result<(), ErrorObjectOwned> {
        // Every request arrives through the accept loop, which always sets the address.
        let Some(ClientIp(ip)) = extensions.get::<ClientIp>().copied() else { return Ok(()) };
        match self.buckets.check_key(&ip) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                // Forget idle clients now and then so the map does not grow without bound.
                if self.buckets.len() > 10_000 {
                    self.buckets.retain_recent();
                }
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ErrorObject::owned(
                    codes::RATE_LIMITED,
                    format!(
                        "rate limited: more than {} calls per second from {ip}; retry in {} ms",
                        self.per_second,
                        wait.as_millis().max(1)
                    ),
                    Some(json!({ "retryAfterMs": retry_ms(wait) })),
                ))
            }
        }
    }
}

fn retry_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The RPC middleware that applies the limit.
#[derive(Clone)]
struct RateLimited<S> {
    inner: S,
    limiter: Option<Arc<RateLimiter>>,
}

impl<S> RpcServiceT for RateLimited<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse, BatchResponse = MethodResponse> + Send + Sync + Clone,
    S: 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let denied = self.limiter.as_ref().and_then(|l| l.admit(request.extensions()).err());
        let inner = self.inner.clone();
        async move {
            match denied {
                Some(err) => MethodResponse::error(request.id, err),
                None => inner.call(request).await,
            }
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        // The inner service runs a batch's calls without passing them back through this
        // middleware, so each call is admitted here; a denied one is answered with the error.
        if let Some(limiter) = &self.limiter {
            for entry in batch.iter_mut() {
                if let Ok(BatchEntry::Call(call)) = entry
                    && let Err(err) = limiter.admit(call.extensions())
                {
                    *entry = Err(BatchEntryErr::new(call.id.clone().into_owned(), err));
                }
            }
        }
        let inner = self.inner.clone();
        async move { inner.batch(batch).await }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}
