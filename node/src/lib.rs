//! The Pyralog node as a library: the chain the Pyralog Network agrees on (its authenticated
//! state; the application and its transactions follow in issue 6). The `pyralog` binary wires it
//! with the cluster engine, the RPC server and the overlay.

pub mod chain;
