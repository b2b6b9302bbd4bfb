//! Pyralog's verifiable-log cryptography.
//!
//! Everything a light client needs to check what a node says, with no async runtime, storage
//! engine or network stack, so it can be embedded anywhere (and later compiled to WASM):
//!
//! - [`hash`]: the 32-byte [`Digest`] and domain-separated BLAKE3 ([`Domain`]).
//! - [`merkle`]: append-only Merkle trees in the RFC 6962 / RFC 9162 shape, generic over the hash
//!   function, with O(log n) inclusion and consistency proofs and their verifiers.
//! - [`keys`]: ed25519 identities, their text encoding and key files.
//! - [`checkpoint`]: signed statements "partition P of log L had size N and root R".
//! - [`quorum`]: quorum certificates verified against weighted member sets.
//! - [`light`]: the light client's end-to-end check of a served record.

pub mod checkpoint;
mod fixed_bytes;
pub mod hash;
pub mod keys;
pub mod light;
pub mod merkle;
pub mod quorum;

pub use checkpoint::{Checkpoint, ClusterId, LogName, ZkTree};
pub use hash::{Digest, Domain};
pub use keys::{Keypair, PublicKey, Signature};
pub use quorum::{MemberSet, QuorumCertificate, Threshold};
