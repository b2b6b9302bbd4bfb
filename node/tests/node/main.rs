//! Integration tests of the `pyralog` binary (one test target for the crate).

mod chain_app;
mod chain_contracts;
mod chain_net;
mod chain_rpc;
mod chain_testnet;
mod cli;
mod contract_rpc;
mod disk_faults;
mod kafka;
mod kafka_groups;
mod kafka_wire;
mod layout;
mod light_chain;
mod light_proxy;
mod light_steps;
mod limits;
mod membership;
mod rpc;
mod rpc_params;
mod spec_vectors;
mod staking;
mod staking_rpc;
mod staking_sim;
mod state;
mod support;
mod zk;
