//! Zero-knowledge proofs over Pyralog's Merkle state.
//!
//! A log created with zk proofs keeps, per partition, append-only trees over ZK-friendly hashes
//! next to its BLAKE3 tree ([`tree`]): Poseidon on BN254 ([`poseidon`]) for Groth16 membership
//! proofs ([`groth16`]), and Rescue-Prime `Rp64_256` ([`rescue`]) for STARKs over append batches
//! ([`stark`]). [`proof`] is the one interface over both.

pub mod groth16;
pub mod poseidon;
pub mod proof;
pub mod rescue;
pub mod stark;
pub mod tree;

/// The Poseidon tree.
pub type PoseidonTree = tree::AppendTree<poseidon::PoseidonHasher>;

/// The Rescue-Prime tree.
pub type RescueTree = tree::AppendTree<rescue::RescueHasher>;

/// Fills `out` with BLAKE3's output in key-derivation mode under `context` (the trees' way of
/// turning bytes into field elements).
pub(crate) fn derive_bytes(context: &str, input: &[u8], out: &mut [u8]) {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    hasher.update(input);
    hasher.finalize_xof().fill(out);
}

/// A record key as hashed: absent (`[0]`) and present (`[1] || key`, so empty) differ.
pub(crate) fn key_encoding(key: Option<&[u8]>) -> Vec<u8> {
    match key {
        Some(key) => [&[1u8][..], key].concat(),
        None => vec![0],
    }
}
