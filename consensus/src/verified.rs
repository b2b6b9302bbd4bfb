//! A bounded memory of what an engine has verified: a message is checked when it arrives (to
//! blame its sender) and again where it is used (in a certificate, a NEW-VIEW, Malachite's own
//! check); the second check is a lookup. Full, it is cleared: a forgotten entry costs one more
//! verification, never a wrong answer.

use std::cell::RefCell;
use std::collections::HashSet;

use pyralog_crypto::{Digest, PublicKey, Signature};

/// Digests of what verified, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct Verified {
    seen: RefCell<HashSet<Digest>>,
    capacity: usize,
}

impl Verified {
    /// An empty memory of at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Verified { seen: RefCell::default(), capacity }
    }

    /// Whether `digest` verified before; otherwise runs `check` and remembers a pass.
    pub(crate) fn once(&self, digest: Digest, check: impl FnOnce() -> bool) -> bool {
        if self.seen.borrow().contains(&digest) {
            return true;
        }
        let valid = check();
        if valid {
            let mut seen = self.seen.borrow_mut();
            if seen.len() >= self.capacity {
                seen.clear();
            }
            seen.insert(digest);
        }
        valid
    }

    /// Whether `signature` by `key` over `bytes` verifies.
    pub(crate) fn signature(&self, key: &PublicKey, bytes: &[u8], signature: &Signature) -> bool {
        let mut hasher = pyralog_crypto::Domain::ConsensusValue.hasher();
        hasher.update(b"verified signature\0");
        hasher.update(key.as_bytes());
        hasher.update(&signature.to_bytes());
        hasher.update(bytes);
        let digest = Digest(*hasher.finalize().as_bytes());
        self.once(digest, || key.verify(bytes, signature).is_ok())
    }
}
