//! The Pyralog Network's chain: its transactions, its application, its authenticated state, its
//! genesis, and the light client's checks.

pub mod app;
pub mod block;
pub mod genesis;
pub mod light;
pub mod state;
pub mod tx;
