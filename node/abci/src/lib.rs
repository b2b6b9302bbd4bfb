//! The Pyralog chain app behind CometBFT v0.38, as an ABCI 2.0 application.
//!
//! Operators who run CometBFT keep it: with `"consensus": { "engine": "cometbft" }` in the
//! genesis file, `pyralog start` serves the chain app over ABCI ([`AbciServer`]) instead of
//! running its own consensus driver, and CometBFT decides, stores and signs the blocks.
//!
//! - [`adapter`]: [`AbciAdapter`], tendermint-abci's `Application` over the same
//!   [`ReplicatedApp`](pyralog_consensus_types::app::ReplicatedApp) the native engines drive,
//!   with the mapping between CometBFT's requests and the app's calls.
//! - [`server`]: the socket server (CometBFT's length-prefixed protobuf framing) with a cap on
//!   request sizes, which tendermint-abci's own server does not have.
//! - `chain`: [`AbciApp`] for the Pyralog chain app.
//! - [`address`]: CometBFT's 20-byte validator addresses and key, power and time conversions.

pub mod adapter;
pub mod address;
mod chain;
pub mod server;

pub use adapter::{AbciAdapter, AbciApp, AbciError};
pub use server::{AbciServer, DEFAULT_MAX_REQUEST_BYTES, FrameError, ServerHandle, read_request};

/// The ABCI major version this app speaks (CometBFT v0.38 sends "2.0.0").
pub const ABCI_MAJOR_VERSION: &str = "2";
