//! The Pyralog Network's chain: what its validators agree on and what a light client checks.
//!
//! - [`block`]: block headers, block ids, validator-set hashes.
//! - [`tx`]: signed transactions and their actions.
//! - [`genesis`]: the genesis file.
//! - [`values`]: the state's schema (keys, stored values, transaction result codes).
//! - [`proof`]: state proofs under a state root.
//! - [`staking`]: Proof-of-Stake's parameters, state schema and (feature `store`) rules.
//! - [`contracts`] (feature `store`): deploying, instantiating, calling and querying WASM
//!   contracts whose storage lives in the state.
//! - [`state`] and [`app`] (feature `store`): the authenticated state store on RocksDB and the
//!   chain application the validators replicate.

#[cfg(feature = "store")]
mod actions;
#[cfg(feature = "store")]
pub mod app;
pub mod block;
#[cfg(feature = "store")]
pub mod contracts;
pub mod genesis;
#[cfg(feature = "store")]
mod overlay;
pub mod proof;
pub mod staking;
#[cfg(feature = "store")]
pub mod state;
pub mod tx;
pub mod values;
