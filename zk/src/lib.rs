//! Zero-knowledge proofs over Pyralog's Merkle state.
//!
//! A log created with zk proofs keeps, per partition, append-only trees over ZK-friendly hashes
//! next to its BLAKE3 tree ([`tree`]): Poseidon on BN254 ([`poseidon`]) for Groth16 membership
//! proofs ([`groth16`]), and Rescue-Prime `Rp64_256` ([`rescue`]) for STARKs over append batches.

pub mod groth16;
pub mod poseidon;
pub mod rescue;
pub mod tree;

/// The Poseidon tree.
pub type PoseidonTree = tree::AppendTree<poseidon::PoseidonHasher>;

/// The Rescue-Prime tree.
pub type RescueTree = tree::AppendTree<rescue::RescueHasher>;
