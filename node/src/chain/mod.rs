//! The Pyralog Network's chain: its transactions, its application and its authenticated state.

pub mod app;
pub mod block;
pub mod state;
pub mod tx;
