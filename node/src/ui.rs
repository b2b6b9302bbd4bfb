//! The status and explorer page on the RPC port: `GET /` (or `/ui`) serves it, `/ui/app.js` and
//! `/ui/style.css` its script and style, all built into the binary (no CDN, nothing fetched
//! elsewhere). The page reads everything through the node's own JSON-RPC and WebSocket
//! subscriptions and verifies records in the browser (node/ui: the TypeScript light client).
//!
//! A WebSocket upgrade on `/` is JSON-RPC's, never the page's.

use std::future::{Ready, ready};
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

const INDEX_HTML: &str = include_str!("../ui/static/index.html");
const STYLE_CSS: &str = include_str!("../ui/static/style.css");
/// Bundled by `make ui` (esbuild) from node/ui/src; `make test` checks it is up to date.
const APP_JS: &str = include_str!("../ui/dist/app.js");

/// The page's files by path, with their content types.
fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/" | "/ui" | "/ui/" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/ui/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/ui/style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return None,
    })
}

/// The page's response: its own scripts and styles only, and connections only to this origin
/// (JSON-RPC over HTTP and WebSocket).
fn page_response(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body));
    let headers = response.headers_mut();
    let set = |headers: &mut http::HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, http::HeaderValue::from_static(value));
    };
    set(headers, "content-type", content_type);
    set(headers, "cache-control", "no-cache");
    set(headers, "x-content-type-options", "nosniff");
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    response
}

/// Serves the page in front of the JSON-RPC service.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UiLayer;

impl<S> Layer<S> for UiLayer {
    type Service = Ui<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Ui { inner }
    }
}

/// See [`UiLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Ui<S> {
    inner: S,
}

impl<S, B> Service<HttpRequest<B>> for Ui<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = futures::future::Either<Ready<Result<HttpResponse, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let page = request.method() == http::Method::GET && !request.headers().contains_key("upgrade");
        match asset(request.uri().path()).filter(|_| page) {
            Some((body, kind)) => futures::future::Either::Left(ready(Ok(page_response(body, kind)))),
            None => futures::future::Either::Right(self.inner.call(request)),
        }
    }
}
