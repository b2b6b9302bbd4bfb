//! What a Byzantine validator does to its messages depends on the engine: only the engine knows
//! which bytes are a proposal and how to sign a conflicting one. Each engine supplies an
//! [`Adversary`]; the simulator applies it by [`Behaviour`](super::Behaviour).

use pyralog_crypto::Keypair;

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
}
