//! State proofs: the hasher of the chain state's Jellyfish Merkle tree (BLAKE3 keyed for
//! [`Domain::ChainState`]) and the check that a key holds a value, or none, under a state root.
//! What a light client needs of the state, without the store.

use jmt::proof::SparseMerkleProof;
use jmt::{KeyHash, RootHash, SimpleHasher};
use pyralog_crypto::Domain;

/// BLAKE3 keyed for the chain state, as the tree's hasher.
#[derive(Clone)]
pub struct StateHasher(blake3::Hasher);

impl SimpleHasher for StateHasher {
    fn new() -> Self {
        StateHasher(Domain::ChainState.hasher())
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

/// A proof that a key has a value, or has none, in the state of one version.
pub type StateProof = SparseMerkleProof<StateHasher>;

/// A state root.
pub type StateRoot = [u8; 32];

/// Why a state proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state proof rejected: {0}")]
pub struct StateProofError(pub String);

/// Checks that in the state with root `root`, `key` holds `value` (`None`: has no value).
pub fn verify_state_proof(
    root: &StateRoot,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), StateProofError> {
    proof
        .verify(RootHash(*root), KeyHash::with::<StateHasher>(key), value)
        .map_err(|e| StateProofError(e.to_string()))
}
