//! The overlay over real libp2p on loopback: consensus among 4 validators with a kill and a
//! restart, transactions gossiped to every validator, app queries, the frame codec, and bans of
//! peers that send invalid data; WireGuard + Rosenpass tunnels between in-process endpoints.

mod codec;
mod interop;
mod misbehaviour;
mod network;
mod requests;
mod support;
mod tunnel;
