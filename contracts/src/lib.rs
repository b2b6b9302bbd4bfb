//! WASM contracts (issue 26): a deterministic runtime on `wasmi` (an interpreter: no JIT),
//! with every resource a contract could exhaust bounded and charged.
//!
//! - **Determinism**: no floats (refused when the module is compiled: wasmi does not
//!   canonicalise NaNs), no SIMD, threads, memory64, multiple memories, reference types or tail
//!   calls; eager compilation (lazy compilation would charge fuel on a function's first call
//!   only); no time or randomness but what the caller passes as input.
//! - **Limits** ([`Limits`]): code size, fuel per call (host work is charged too), linear memory,
//!   recursion depth and value stack, output size, storage key and value sizes, events. Breaking
//!   one is a typed [`ContractError`].
//! - **Atomic**: a call returns its storage writes and events in its [`Outcome`]; a call that
//!   traps, refuses, or breaks a limit returns only the error, so nothing it did takes effect.
//!
//! The host ABI (module `pyralog_v1`, see [`abi`]) is what a contract imports; a contract exports
//! its linear memory as `memory` and entry points taking and returning nothing.

pub mod abi;
pub mod examples;
mod runtime;

pub use abi::Field;
pub use runtime::{Call, Contract, ContractError, Env, Limits, Outcome, Runtime, Storage};
