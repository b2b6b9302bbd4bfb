//! Integration tests of pyralog-crypto (one test binary for the crate).

mod checkpoint;
mod keys;
mod light;
mod merkle_props;
mod quorum;
mod rfc6962;

use pyralog_crypto::keys::Keypair;
use pyralog_crypto::{Checkpoint, ClusterId, Digest, LogName};

/// A checkpoint for tests.
pub(crate) fn checkpoint(size: u64, root: Digest) -> Checkpoint {
    Checkpoint {
        cluster: ClusterId::new("test-cluster").unwrap(),
        log: LogName::new("events").unwrap(),
        partition: 0,
        epoch: 1,
        size,
        root,
        time_ms: 1_763_856_000_000,
        zk_roots: Default::default(),
    }
}

/// `n` fresh key pairs.
pub(crate) fn keypairs(n: usize) -> Vec<Keypair> {
    (0..n).map(|_| Keypair::generate()).collect()
}
