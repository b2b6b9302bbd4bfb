//! Tests of the testnet tools and of Pyralog against clients nobody here wrote (one test target).

mod chaos_checker;
mod chaos_run;
mod kafka;
mod kafka_tools;
mod smoke;
mod support;
