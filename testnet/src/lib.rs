//! What the testnet tools share with their tests: the chaos harness's history model and checker
//! ([`chaos`]).

pub mod chaos;
