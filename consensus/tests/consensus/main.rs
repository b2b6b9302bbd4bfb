//! Tests of pyralog-consensus (one test target for the crate).

mod certificates;
mod driver;
mod evidence;
mod nakamoto;
mod nakamoto_engine;
mod pbft;
mod pbft_engine;
mod pow;
mod proposer;
mod simulator;
mod tendermint;
