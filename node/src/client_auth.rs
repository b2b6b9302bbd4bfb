//! Client identities: a signed claim (`pyralog_rpc_params::auth`) checked once — the
//! signature, the clock window and this node's replay cache — for the JSON-RPC's signed requests
//! and Kafka's SASL/OAUTHBEARER sessions alike.
//!
//! A request's claim is taken once ([`Replay::Once`]): the replay cache is this node's, each
//! (key, nonce) once within the timestamp window. A claim replayed to another node within the
//! window is not caught there; an idempotent producer's records are still stored once. A Kafka
//! session's claim is a credential for its window ([`Replay::Window`]): librdkafka opens several
//! connections with one configuration and reconnects with it, so each may present it again
//! until it is 5 minutes old, as a bearer token would be.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{LazyLock, Mutex};

use pyralog_crypto::PublicKey;
use pyralog_rpc_params::auth::{Auth, MAX_SKEW_MS, RequestClaim};

use crate::clock::unix_ms;

/// Most (key, nonce) pairs kept at once; past it, new claims wait for old ones to expire.
const MAX_REMEMBERED: usize = 1 << 20;

/// The (key, nonce) pairs taken within the window, and when each leaves it (soonest first).
#[derive(Default)]
struct Seen {
    live: HashSet<(PublicKey, u64)>,
    expiries: BinaryHeap<Reverse<(u64, PublicKey, u64)>>,
}

static SEEN: LazyLock<Mutex<Seen>> = LazyLock::new(Default::default);

/// How often a claim may be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Once per node within the window (a signed request).
    Once,
    /// Any number of times within the window (a Kafka session's credential).
    Window,
}

/// The key that signed `claim` (whose timestamp and nonce are `auth`'s), or why it is refused:
/// a bad signature, a clock more than [`MAX_SKEW_MS`] away, a nonce already used (`Once`).
pub(crate) fn verify(auth: &Auth, claim: &RequestClaim<'_>, replay: Replay) -> Result<PublicKey, String> {
    let key = auth.verify(claim).map_err(|err| err.to_string())?;
    let now = unix_ms();
    if auth.timestamp_ms.abs_diff(now) > MAX_SKEW_MS {
        return Err(format!(
            "auth.timestampMs {} is more than {MAX_SKEW_MS} ms from this node's clock ({now})",
            auth.timestamp_ms
        ));
    }
    if replay == Replay::Window {
        return Ok(key);
    }
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    while let Some(Reverse((expires, old_key, old_nonce))) = seen.expiries.peek().copied()
        && expires <= now
    {
        seen.expiries.pop();
        seen.live.remove(&(old_key, old_nonce));
    }
    if seen.live.contains(&(key, auth.nonce)) {
        return Err(format!("auth.nonce {} of this key was already used (a replay)", auth.nonce));
    }
    if seen.live.len() >= MAX_REMEMBERED {
        return Err("too many signed requests within the window on this node; retry later".into());
    }
    // A claim is accepted while its timestamp is within the window of this clock: it is
    // remembered until one past the last millisecond that holds.
    seen.live.insert((key, auth.nonce));
    seen.expiries.push(Reverse((auth.timestamp_ms + MAX_SKEW_MS + 1, key, auth.nonce)));
    Ok(key)
}
