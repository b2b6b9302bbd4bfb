//! The hash functions a Merkle tree can be instantiated with.

use sha2::{Digest as _, Sha256};

use crate::hash::{Digest, Domain};

/// RFC 6962 leaf prefix.
const LEAF_PREFIX: u8 = 0x00;
/// RFC 6962 interior-node prefix.
const NODE_PREFIX: u8 = 0x01;

/// A hash function in the RFC 6962 tree shape.
pub trait MerkleHasher {
    /// The root of the tree with no leaves (the hash of the empty string).
    fn empty_root() -> Digest;
    /// `H(0x00 || data)`.
    fn hash_leaf(data: &[u8]) -> Digest;
    /// `H(0x01 || left || right)`.
    fn hash_children(left: &Digest, right: &Digest) -> Digest;
}

/// Pyralog's tree hash: BLAKE3 keyed with the [`Domain::Merkle`] key, RFC 6962 prefixes inside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blake3Merkle;

impl MerkleHasher for Blake3Merkle {
    fn empty_root() -> Digest {
        Domain::Merkle.hash(&[])
    }

    fn hash_leaf(data: &[u8]) -> Digest {
        let mut hasher = Domain::Merkle.hasher();
        hasher.update(&[LEAF_PREFIX]);
        hasher.update(data);
        Digest(*hasher.finalize().as_bytes())
    }

    fn hash_children(left: &Digest, right: &Digest) -> Digest {
        Domain::Merkle.hash(&node_preimage(left, right))
    }
}

/// SHA-256 exactly as RFC 6962 (Certificate Transparency) specifies it: the reference instance
/// the test vectors check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sha256Rfc6962;

impl MerkleHasher for Sha256Rfc6962 {
    fn empty_root() -> Digest {
        Digest(Sha256::digest([]).into())
    }

    fn hash_leaf(data: &[u8]) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update([LEAF_PREFIX]);
        hasher.update(data);
        Digest(hasher.finalize().into())
    }

    fn hash_children(left: &Digest, right: &Digest) -> Digest {
        Digest(Sha256::digest(node_preimage(left, right)).into())
    }
}

/// `0x01 || left || right` on the stack: one contiguous input is faster than three updates.
fn node_preimage(left: &Digest, right: &Digest) -> [u8; 65] {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left.as_bytes());
    buf[33..].copy_from_slice(right.as_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_and_node_prefixes_separate() {
        // A leaf whose data looks like two child hashes must not collide with that node.
        let (l, r) = (Blake3Merkle::hash_leaf(b"a"), Blake3Merkle::hash_leaf(b"b"));
        let mut fake = Vec::new();
        fake.extend_from_slice(l.as_bytes());
        fake.extend_from_slice(r.as_bytes());
        assert_ne!(Blake3Merkle::hash_leaf(&fake), Blake3Merkle::hash_children(&l, &r));
        assert_ne!(Sha256Rfc6962::hash_leaf(&fake), Sha256Rfc6962::hash_children(&l, &r));
    }
}
