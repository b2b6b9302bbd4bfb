//! The consensus layer's types, apart from any runtime: what engines, the chain app and light
//! clients share.
//!
//! - [`validators`]: weighted validator sets and the quorum rule (more than 2/3 of the power).
//! - [`vote`]: votes, commit certificates, evidence of equivocation, and the engine-tagged
//!   [`FinalityProof`](vote::FinalityProof) a light client checks with a validator set alone.
//! - [`proposer`]: proposer selection weighted by power (CometBFT's proposer priority).
//! - [`core`]: the sans-I/O [`ConsensusCore`](core::ConsensusCore) interface engines implement.
//! - [`evidence`]: what a proposed block may carry besides transactions (the parent's finality
//!   proof, evidence of equivocation) and the rules every validator checks it by.
//! - [`app`]: the ABCI-shaped [`ReplicatedApp`](app::ReplicatedApp) the engines drive.
//! - [`pow`]: Proof-of-Work arithmetic (seals, compact targets, work, ASERT difficulty).
//!
//! This crate builds without tokio, RocksDB or libp2p, so wallets and browsers can embed it
//! (`make lint` checks).

pub mod app;
pub mod core;
pub mod evidence;
pub mod finality;
pub mod pow;
pub mod proposer;
pub mod validators;
pub mod vote;

pub use finality::{Engine, FinalityError, FinalityProof, FinalityRule};
pub use proposer::ProposerPriorities;
pub use validators::{Validator, ValidatorSet, ValidatorSetError};
pub use vote::{BlockId, CommitCertificate, Vote, VoteKind};
