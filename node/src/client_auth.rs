//! Client identities: a signed claim (`pyralog_rpc_params::auth`) checked once — the
//! signature, the clock window and this node's replay cache — for the JSON-RPC's signed requests
//! and Kafka's SASL/OAUTHBEARER sessions alike.
//!
//! The replay cache is this node's: each (key, nonce) is taken once within the timestamp
//! window. A claim replayed to another node within the window is not caught there; an
//! idempotent producer's records are still stored once.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use pyralog_crypto::PublicKey;
use pyralog_rpc_params::auth::{Auth, MAX_SKEW_MS, RequestClaim};

use crate::clock::unix_ms;

/// Most (key, nonce) pairs kept; past it, the expired ones are dropped first.
const MAX_REMEMBERED: usize = 1 << 20;

/// (key, nonce) -> when it leaves the window (ms).
static SEEN: LazyLock<Mutex<HashMap<(PublicKey, u64), u64>>> = LazyLock::new(Default::default);

/// The key that signed `claim` (whose timestamp and nonce are `auth`'s), or why it is refused:
/// a bad signature, a clock more than [`MAX_SKEW_MS`] away, a nonce already used.
pub(crate) fn verify(auth: &Auth, claim: &RequestClaim<'_>) -> Result<PublicKey, String> {
    let key = auth.verify(claim).map_err(|err| err.to_string())?;
    let now = unix_ms();
    if auth.timestamp_ms.abs_diff(now) > MAX_SKEW_MS {
        return Err(format!(
            "auth.timestampMs {} is more than {MAX_SKEW_MS} ms from this node's clock ({now})",
            auth.timestamp_ms
        ));
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.len() >= MAX_REMEMBERED {
        seen.retain(|_, expires| *expires > now);
    }
    if seen.get(&(key, auth.nonce)).is_some_and(|expires| *expires > now) {
        return Err(format!("auth.nonce {} of this key was already used (a replay)", auth.nonce));
    }
    seen.insert((key, auth.nonce), auth.timestamp_ms + MAX_SKEW_MS);
    Ok(key)
}
