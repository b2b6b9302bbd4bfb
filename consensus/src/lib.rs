//! Pluggable consensus for the Pyralog Network.
//!
//! The chain is a [`ReplicatedApp`](app::ReplicatedApp), shaped 1:1 like ABCI 2.0, so any
//! ordering and finality engine can drive it. Engines are sans-I/O
//! [`ConsensusCore`](core::ConsensusCore)s: they take [`Input`](core::Input)s (messages, timeouts,
//! the app's answers) and return [`Effect`](core::Effect)s (messages to send, timers to set,
//! blocks to commit); one driver performs the effects for any engine, and a seeded simulator
//! performs them on a virtual network. A committed block carries a
//! [`FinalityProof`](vote::FinalityProof) that a light client checks with the validator set alone.
//!
//! Engines: Tendermint (Malachite's core), PBFT (our own, after Castro and Liskov) and Proof-of-Work
//! ([`nakamoto`]: Nakamoto consensus, finality k seals deep). The network the driver runs on in production is libp2p
//! (`pyralog-p2p`).

pub mod driver;
pub mod nakamoto;
pub mod pbft;
#[cfg(feature = "test-utils")]
pub mod sim;
pub mod tendermint;
#[cfg(feature = "test-utils")]
pub mod testkit;
mod verified;

// The types (no runtime) live in their own crate, for light clients; re-exported here so the
// engines and the driver use one set of paths.
pub use pyralog_consensus_types::{BlockId, CommitCertificate, Engine, FinalityProof, Vote, VoteKind};
pub use pyralog_consensus_types::{Validator, ValidatorSet, ValidatorSetError};
pub use pyralog_consensus_types::{app, core, evidence, finality, pow, proposer, validators, vote};
