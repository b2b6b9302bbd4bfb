//! Rescue-Prime `Rp64_256` (winter-crypto): the hash of the STARK tree, over the 64-bit field
//! p = 2^64 - 2^32 + 1.
//!
//! Inner nodes are winter-crypto's `merge` (8 elements, the first capacity element set to 8),
//! which is what an AIR for the tree computes in one permutation. Leaves and the empty slot go
//! through `hash_elements`, whose first capacity element is the input length: leaves hash 9
//! elements (a tag, the key's 4, the value's 4) and the empty slot 1, so neither can collide
//! with a node, and the tags keep them apart from each other.

use winter_crypto::hashers::Rp64_256;
use winter_crypto::{Digest, ElementHasher, Hasher};
use winter_math::fields::f64::BaseElement;
use winter_math::{FieldElement, StarkField};

/// A digest: 4 field elements.
pub type RescueDigest = <Rp64_256 as Hasher>::Digest;

/// Tag of leaves.
pub const TAG_LEAF: u64 = 2;
/// Tag of the empty slot.
pub const TAG_EMPTY: u64 = 4;
/// Tag of the batch digest's start.
pub const TAG_BATCH: u64 = 5;

/// The Rescue tree's hasher.
#[derive(Debug, Clone, Copy)]
pub struct RescueHasher;

impl crate::tree::TreeHasher for RescueHasher {
    type Digest = RescueDigest;

    fn node(left: &RescueDigest, right: &RescueDigest) -> RescueDigest {
        Rp64_256::merge(&[*left, *right])
    }

    fn empty() -> RescueDigest {
        Rp64_256::hash_elements(&[BaseElement::new(TAG_EMPTY)])
    }
}

impl crate::tree::DigestCodec for RescueHasher {
    fn to_bytes(digest: &RescueDigest) -> [u8; 32] {
        digest.as_bytes()
    }

    fn from_bytes(bytes: &[u8; 32]) -> Option<RescueDigest> {
        let mut elements = [BaseElement::ZERO; 4];
        for (element, chunk) in elements.iter_mut().zip(bytes.chunks_exact(8)) {
            let value = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            // Checked: a value at or above the modulus is not a canonical encoding.
            if value >= BaseElement::MODULUS {
                return None;
            }
            *element = BaseElement::new(value);
        }
        Some(RescueDigest::new(elements))
    }
}

/// A byte string as 4 field elements: BLAKE3 in key-derivation mode under `context`, each
/// element from 8 output bytes reduced modulo p.
pub fn elements_from_bytes(context: &str, bytes: &[u8]) -> [BaseElement; 4] {
    let mut wide = [0u8; 32];
    crate::derive_bytes(context, bytes, &mut wide);
    std::array::from_fn(|i| {
        BaseElement::new(u64::from_le_bytes(wide[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
    })
}

/// A record's leaf: `hash_elements(TAG_LEAF, key, value)` (absent and empty keys differ).
pub fn record_leaf(key: Option<&[u8]>, value: &[u8]) -> RescueDigest {
    let key = elements_from_bytes("pyralog zk rescue key v1", &crate::key_encoding(key));
    let value = elements_from_bytes("pyralog zk rescue value v1", value);
    let mut input = vec![BaseElement::new(TAG_LEAF)];
    input.extend_from_slice(&key);
    input.extend_from_slice(&value);
    Rp64_256::hash_elements(&input)
}

/// The batch digest before any leaf: `hash_elements(TAG_BATCH)`.
pub fn batch_start() -> RescueDigest {
    Rp64_256::hash_elements(&[BaseElement::new(TAG_BATCH)])
}

/// The digest of a batch of leaves, in order: `d = merge(d, leaf)` from [`batch_start`]. This is
/// what an append-batch STARK names the batch by.
pub fn batch_digest(leaves: &[RescueDigest]) -> RescueDigest {
    leaves.iter().fold(batch_start(), |digest, leaf| Rp64_256::merge(&[digest, *leaf]))
}
