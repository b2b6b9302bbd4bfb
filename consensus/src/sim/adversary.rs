//! What a Byzantine validator does to its messages depends on the engine: only the engine knows
//! which bytes are a proposal and how to sign a conflicting one. Each engine supplies an
//! [`Adversary`]; the simulator applies it by [`Behaviour`](super::Behaviour).

use pyralog_crypto::Keypair;

use super::SimRng;

/// An engine's Byzantine behaviours, for the simulator.
pub trait Adversary {
    /// A validly signed message that conflicts with `bytes` (the same height and round, another
    /// block), so that peers shown it see a coherent alternative history; `None` when `bytes`
    /// is nothing to equivocate on.
    fn conflicting(&self, key: &Keypair, bytes: &[u8]) -> Option<Vec<u8>>;

    /// Whether `bytes` is a proposal (peers shown two of them at once must prove it).
    fn is_proposal(&self, bytes: &[u8]) -> bool;

    /// `bytes` with its signature broken (and nothing else changed).
    fn break_signature(&self, bytes: &[u8]) -> Vec<u8>;

    /// Whether `bytes` is a vote of the committing step or a commit certificate (a commit
    /// dropper keeps these back).
    fn is_commit(&self, bytes: &[u8]) -> bool {
        let _ = bytes;
        false
    }

    /// What a validator that keeps its commitment to itself sends in place of `bytes`: no commit
    /// votes or certificates, and nothing that carries a certificate (`None`: nothing at all).
    fn withheld(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        (!self.is_commit(bytes)).then(|| bytes.to_vec())
    }

    /// Whether `bytes` is a view-change message (counted in the outcome).
    fn is_view_change(&self, bytes: &[u8]) -> bool {
        let _ = bytes;
        false
    }

    /// Forged messages a validator flooding view changes sends beside `bytes` (none for engines
    /// without view changes).
    fn storm(&self, key: &Keypair, bytes: &[u8], rng: &mut SimRng) -> Vec<Vec<u8>> {
        let _ = (key, bytes, rng);
        Vec::new()
    }
}
