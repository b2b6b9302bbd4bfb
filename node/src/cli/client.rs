//! The JSON-RPC client the light-client and zk commands fetch with.

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClientBuilder;
use serde_json::Value;

/// Calls `method` at `url` with named `params` (a JSON object); the server's error once.
pub(crate) async fn call(url: &str, method: &str, params: Value) -> anyhow::Result<Value> {
    let client = HttpClientBuilder::default().build(url)?;
    let mut object = ObjectParams::new();
    if let Value::Object(fields) = params {
        for (name, value) in fields {
            object.insert(&name, value)?;
        }
    }
    client.request(method, object).await.map_err(|err| match err {
        // The server's error object, once (its Display and its source would repeat it).
        ClientError::Call(e) => anyhow::anyhow!("{method} at {url}: error {}: {}", e.code(), e.message()),
        other => anyhow::anyhow!("{method} at {url}: {other}"),
    })
}
