//! Ids handed to Kafka clients (producer ids, group member ids): random, so no two brokers need
//! to agree on the next one.

use std::sync::atomic::{AtomicU64, Ordering};

/// 64 random bits for ids clients are handed (producer and member ids), from the time, the
/// process and a counter, hashed under `domain`.
pub(crate) fn random_id(domain: &[u8]) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain);
    hasher.update(b"\0");
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    hasher.update(&nanos.to_be_bytes());
    hasher.update(&std::process::id().to_be_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_be_bytes(bytes)
}
