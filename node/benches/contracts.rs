//! Chain contract calls (`make bench-contracts`): the runtime alone (calls/s and fuel/s of the
//! vote example's `tally` and of a storage counter on one core), then blocks of 500 contract
//! calls through the chain app (signature checks, fees, storage in the authenticated state,
//! the state root, one RocksDB commit per block) beside blocks of 500 transfers, same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyralog_chain::app::ChainApp;
use pyralog_chain::block::ConsensusInfo;
use pyralog_chain::state::StateStore;
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{Genesis, code_hash, codes, contract_id};
use pyralog_consensus::Validator;
use pyralog_consensus::app::{DecidedBlock, ReplicatedApp};
use pyralog_contracts::examples::{VOTE, wasm_of};
use pyralog_contracts::{Call, Env, Limits, Runtime, Storage};
use pyralog_crypto::Keypair;

const CHAIN: &str = "pyralog-bench";
const PER_BLOCK: u64 = 500;
const FUEL: u64 = 100_000;

const COUNTER: &str = r#"(module
  (import "pyralog_v1" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "pyralog_v1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (func (export "increment")
    (drop (call $get (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 8)))
    (i64.store (i32.const 16) (i64.add (i64.load (i32.const 16)) (i64.const 1)))
    (call $set (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 8))))"#;

struct Empty;

impl Storage for Empty {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Calls/s and fuel per call of `entry` over about one second.
fn runtime_rate(wasm: &[u8], entry: &str, input: &[u8]) -> (f64, u64) {
    let runtime = Runtime::new(Limits::default());
    let contract = runtime.compile(wasm).unwrap();
    let env = Env::default();
    let storage: Arc<dyn Storage> = Arc::new(Empty);
    let started = Instant::now();
    let (mut calls, mut fuel) = (0u64, 0);
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            let call = Call { entry, input, env: &env, fuel: FUEL };
            fuel = runtime.run(&contract, call, storage.clone()).unwrap().fuel_used;
            calls += 1;
        }
    }
    (calls as f64 / started.elapsed().as_secs_f64(), fuel)
}

/// One validator's chain app with its own blocks.
struct Chain {
    app: ChainApp,
    height: u64,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn new(sender: &Keypair) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let proposer = Keypair::generate().public();
        let mut app = ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), proposer);
        let genesis = Genesis { accounts: vec![(sender.public(), u64::MAX / 2)], ..Genesis::default() };
        app.init_chain(
            CHAIN,
            &[Validator { key: proposer, power: 1 }],
            &postcard::to_allocvec(&genesis).unwrap(),
        )
        .unwrap();
        Chain { app, height: 0, _dir: dir }
    }

    /// Finalizes and commits a block of `txs`; the time it took and the fuel the logs report.
    fn block(&mut self, txs: Vec<Vec<u8>>) -> (Duration, u64) {
        self.height += 1;
        let info = ConsensusInfo { last_commit: None, evidence: Vec::new() }.encode();
        let rest: Vec<Vec<u8>> = std::iter::once(info).chain(txs).collect();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let header = self.app.build_header(self.height, &rest, now).unwrap();
        let txs: Vec<Vec<u8>> = std::iter::once(header.encode()).chain(rest).collect();
        let block = DecidedBlock {
            height: self.height,
            id: header.block_id(),
            time_ms: now,
            proposer: None,
            txs,
            last_commit_signers: Vec::new(),
            evidence: Vec::new(),
        };
        let started = Instant::now();
        let finalized = self.app.finalize(&block).unwrap();
        self.app.commit().unwrap();
        let took = started.elapsed();
        let mut fuel = 0;
        for result in &finalized.tx_results[2..] {
            assert_eq!(result.code, codes::OK, "{}", result.log);
            if let Some(after) = result.log.split("fuel ").nth(1) {
                fuel += after.split(',').next().unwrap().parse::<u64>().unwrap();
            }
        }
        (took, fuel)
    }
}

fn tx(sender: &Keypair, nonce: u64, action: Action) -> Vec<u8> {
    let fee = action.min_fee();
    SignedTx::sign(Tx { chain_id: CHAIN.into(), sender: sender.public(), nonce, fee, action }, sender)
        .encode()
}

fn main() {
    let counter = wat::parse_str(COUNTER).unwrap();
    let vote = wasm_of(VOTE.as_bytes()).unwrap();
    println!("the runtime alone (wasmi, one core)");
    println!("{:>22} {:>12} {:>10} {:>14}", "call", "calls/s", "fuel/call", "fuel/s");
    for (name, wasm, entry, input) in
        [("counter increment", &counter, "increment", &[][..]), ("vote tally", &vote, "tally", &[1][..])]
    {
        let (calls, fuel) = runtime_rate(wasm, entry, input);
        println!("{name:>22} {calls:>12.0} {fuel:>10} {:>14.0}", calls * fuel as f64);
    }

    let sender = Keypair::generate();
    let mut chain = Chain::new(&sender);
    let id = contract_id(&sender.public(), 1);
    chain.block(vec![
        tx(&sender, 0, Action::DeployCode { wasm: counter.clone() }),
        tx(
            &sender,
            1,
            Action::Instantiate { code: code_hash(&counter), input: Vec::new(), value: 0, fuel: FUEL },
        ),
    ]);
    let receiver = Keypair::generate().public();
    let mut nonce = 2;
    let mut batch = |contract: bool| -> Vec<Vec<u8>> {
        (0..PER_BLOCK)
            .map(|_| {
                nonce += 1;
                let action = match contract {
                    true => Action::CallContract {
                        contract: id,
                        entry: "increment".into(),
                        input: Vec::new(),
                        value: 0,
                        fuel: FUEL,
                    },
                    false => Action::Transfer { to: receiver, amount: 1 },
                };
                tx(&sender, nonce - 1, action)
            })
            .collect()
    };
    println!();
    println!("blocks of {PER_BLOCK} transactions through the chain app (finalize + commit), alternating");
    println!("{:>22} {:>12} {:>14} {:>10}", "transactions", "tx/s", "fuel/s", "ms/block");
    let (mut calls, mut transfers) = ((Duration::ZERO, 0u64), Duration::ZERO);
    let rounds = 6;
    for _ in 0..rounds {
        let (took, fuel) = chain.block(batch(true));
        calls = (calls.0 + took, calls.1 + fuel);
        transfers += chain.block(batch(false)).0;
    }
    let total = (PER_BLOCK * rounds) as f64;
    println!(
        "{:>22} {:>12.0} {:>14.0} {:>10.1}",
        "counter calls",
        total / calls.0.as_secs_f64(),
        calls.1 as f64 / calls.0.as_secs_f64(),
        calls.0.as_secs_f64() * 1e3 / rounds as f64
    );
    println!(
        "{:>22} {:>12.0} {:>14} {:>10.1}",
        "transfers",
        total / transfers.as_secs_f64(),
        "-",
        transfers.as_secs_f64() * 1e3 / rounds as f64
    );
}
