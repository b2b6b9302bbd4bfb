//! The Pyralog Network's chain.

pub mod state;
