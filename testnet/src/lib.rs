//! What the testnet tools share with their tests: the chaos harness ([`chaos`]: history model,
//! checker, and the runs against real nodes in network namespaces).

pub mod chaos;

use jsonrpsee::core::params::ObjectParams;
use serde_json::Value;

/// A JSON object as JSON-RPC named params.
pub fn json_params(value: Value) -> ObjectParams {
    let mut params = ObjectParams::new();
    for (name, value) in value.as_object().into_iter().flatten() {
        params.insert(name, value).expect("JSON values serialize");
    }
    params
}
