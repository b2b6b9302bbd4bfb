//! The contract runtime on contracts written in WAT: storage, output and events of a completed
//! call, the same fuel for the same call, and every limit broken by a contract that breaks it,
//! with the error it gets. A failed call returns no effects.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyralog_contracts::{Call, Contract, ContractError, Env, Field, Limits, Outcome, Runtime, Storage};

/// Storage the tests apply completed calls' writes to.
#[derive(Default, Clone)]
struct Map(BTreeMap<Vec<u8>, Vec<u8>>);

impl Storage for Map {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }
}

impl Map {
    fn apply(&mut self, outcome: &Outcome) {
        for (key, value) in &outcome.writes {
            match value {
                Some(value) => self.0.insert(key.clone(), value.clone()),
                None => self.0.remove(key),
            };
        }
    }
}

const IMPORTS: &str = r#"
  (import "pyralog_v1" "input_len" (func $input_len (result i32)))
  (import "pyralog_v1" "input_read" (func $input_read (param i32)))
  (import "pyralog_v1" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "pyralog_v1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "pyralog_v1" "output" (func $output (param i32 i32)))
  (import "pyralog_v1" "emit" (func $emit (param i32 i32)))
  (import "pyralog_v1" "refuse" (func $refuse (param i32 i32)))
  (import "pyralog_v1" "env_read" (func $env (param i32 i32 i32) (result i32)))
  (import "pyralog_v1" "balance" (func $balance (result i64)))
  (import "pyralog_v1" "transfer" (func $transfer (param i32 i64) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "n")
  (data (i32.const 32) "keys must grow")
"#;

/// A contract with the imports above and `body` (its functions).
fn contract(runtime: &Runtime, body: &str) -> Result<Contract, ContractError> {
    runtime.compile(&wat::parse_str(format!("(module {IMPORTS} {body})")).unwrap())
}

const COUNTER: &str = r#"
  (func (export "increment")
    (if (i32.eq (call $get (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 8)) (i32.const -1))
      (then (i64.store (i32.const 16) (i64.const 0))))
    (i64.store (i32.const 16) (i64.add (i64.load (i32.const 16)) (i64.const 1)))
    (call $set (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 8))
    (call $output (i32.const 16) (i32.const 8))
    (call $emit (i32.const 0) (i32.const 1)))
  (func (export "echo")
    (call $input_read (i32.const 1024))
    (call $output (i32.const 1024) (call $input_len)))
  (func (export "write_then_trap")
    (call $set (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 8))
    unreachable)
  (func (export "refuse")
    (call $refuse (i32.const 32) (i32.const 14)))
  (func (export "spin") (loop $again (br $again)))
  (func $recurse (export "recurse") (call $recurse))
  (func (export "grow") (drop (memory.grow (i32.const 100))))
  (func (export "big_output") (call $output (i32.const 0) (i32.const 70000)))
  (func (export "outside") (call $output (i32.const 131000) (i32.const 1000)))
  (func (export "long_key") (call $set (i32.const 0) (i32.const 300) (i32.const 16) (i32.const 8)))
  (func (export "negative_length") (call $emit (i32.const 0) (i32.const -1)))
  (func (export "pay_caller")
    (drop (call $env (i32.const 0) (i32.const 512) (i32.const 32)))
    (call $input_read (i32.const 600))
    (i32.store (i32.const 700) (call $transfer (i32.const 512) (i64.load (i32.const 600))))
    (i64.store (i32.const 704) (call $balance))
    (call $output (i32.const 700) (i32.const 12)))
  (func (export "height")
    (i32.store (i32.const 700) (call $env (i32.const 2) (i32.const 704) (i32.const 8)))
    (call $output (i32.const 700) (i32.const 12)))
  (func (export "many_events")
    (local $i i32)
    (loop $again
      (call $emit (i32.const 0) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 100)))))
"#;

fn call(
    runtime: &Runtime,
    contract: &Contract,
    entry: &str,
    storage: &Map,
) -> Result<Outcome, ContractError> {
    runtime.call(contract, entry, b"", Arc::new(storage.clone()), 1_000_000)
}

/// The fuel of `n` host calls copying nothing.
fn abi_calls_fuel(n: u64) -> u64 {
    n * pyralog_contracts::abi::CALL_FUEL
}

#[test]
fn a_completed_call_returns_its_writes_output_and_events_and_the_same_fuel_each_time() {
    let runtime = Runtime::new(Limits::default());
    let counter = contract(&runtime, COUNTER).unwrap();
    let mut storage = Map::default();
    let first = call(&runtime, &counter, "increment", &storage).unwrap();
    assert_eq!(first.output, 1u64.to_le_bytes());
    assert_eq!(first.writes, BTreeMap::from([(b"n".to_vec(), Some(1u64.to_le_bytes().to_vec()))]));
    assert_eq!(first.events, [b"n".to_vec()]);
    storage.apply(&first);
    let second = call(&runtime, &counter, "increment", &storage).unwrap();
    assert_eq!(second.output, 2u64.to_le_bytes());
    assert!(first.fuel_used > abi_calls_fuel(4), "wasm instructions and four host calls: {first:?}");
    let again = call(&runtime, &counter, "increment", &storage).unwrap();
    assert_eq!(again, second, "same storage, same call: same outcome, fuel included");

    let echoed = runtime.call(&counter, "echo", b"hello", Arc::new(Map::default()), 1_000_000).unwrap();
    assert_eq!(echoed.output, b"hello");
}

#[test]
fn every_limit_has_a_contract_that_breaks_it() {
    let runtime = Runtime::new(Limits::default());
    let counter = contract(&runtime, COUNTER).unwrap();
    let storage = Map::default();
    let broken = [
        ("spin", ContractError::OutOfFuel { limit: 1_000_000 }),
        ("recurse", ContractError::CallDepth),
        ("grow", ContractError::MemoryLimit),
        ("big_output", ContractError::TooLarge { what: "output", len: 70_000, limit: 64 << 10 }),
        ("many_events", ContractError::TooLarge { what: "event count", len: 65, limit: 64 }),
        ("outside", ContractError::BadPointer),
        ("negative_length", ContractError::BadPointer),
        ("long_key", ContractError::TooLarge { what: "storage key", len: 300, limit: 256 }),
        ("refuse", ContractError::Refused("keys must grow".into())),
        ("nothing_of_this_name", ContractError::MissingEntry("nothing_of_this_name".into())),
    ];
    for (entry, expected) in broken {
        assert_eq!(call(&runtime, &counter, entry, &storage), Err(expected), "{entry}");
    }
    // A caller may give less fuel than the limit, never more.
    let small = Runtime::new(Limits { fuel: 5_000, ..Limits::default() });
    let counter = contract(&small, COUNTER).unwrap();
    assert_eq!(call(&small, &counter, "spin", &storage), Err(ContractError::OutOfFuel { limit: 5_000 }));
}

#[test]
fn a_call_that_traps_after_writing_returns_no_writes() {
    let runtime = Runtime::new(Limits::default());
    let counter = contract(&runtime, COUNTER).unwrap();
    let outcome = call(&runtime, &counter, "write_then_trap", &Map::default());
    assert!(matches!(outcome, Err(ContractError::Trap(_))), "{outcome:?}");
}

#[test]
fn code_that_is_too_large_non_deterministic_or_ill_formed_is_refused() {
    let runtime = Runtime::new(Limits { code_bytes: 64, ..Limits::default() });
    let wasm = wat::parse_str(format!("(module {IMPORTS} {COUNTER})")).unwrap();
    assert_eq!(
        runtime.compile(&wasm).unwrap_err(),
        ContractError::CodeTooLarge { len: wasm.len(), limit: 64 }
    );
    let runtime = Runtime::new(Limits::default());
    let floats = contract(&runtime, r#"(func (export "f") (drop (f32.add (f32.const 1) (f32.const 2))))"#);
    assert!(matches!(floats, Err(ContractError::InvalidModule(_))), "{floats:?}");
    assert!(matches!(runtime.compile(b"\0asm but not really"), Err(ContractError::InvalidModule(_))));
    let unknown_import = runtime
        .compile(&wat::parse_str(r#"(module (import "env" "time" (func)) (func (export "f")))"#).unwrap())
        .unwrap();
    let outcome = runtime.call(&unknown_import, "f", b"", Arc::new(Map::default()), 1000);
    assert!(matches!(outcome, Err(ContractError::Instantiation(_))), "{outcome:?}");
}

#[test]
fn a_call_reads_the_environment_its_home_supplies_and_pays_out_of_its_balance() {
    let runtime = Runtime::new(Limits::default());
    let counter = contract(&runtime, COUNTER).unwrap();
    let caller = [7u8; 32];
    let env = Env::default().with(Field::Caller, caller).with_u64(Field::Height, 42).with_balance(100);
    let run = |entry, input: u64| {
        let call = Call { entry, input: &input.to_le_bytes(), env: &env, fuel: 1_000_000 };
        runtime.run(&counter, call, Arc::new(Map::default())).unwrap()
    };
    let height = run("height", 0);
    assert_eq!(height.output, [&8i32.to_le_bytes()[..], &42u64.to_le_bytes()].concat());
    let paid = run("pay_caller", 30);
    assert_eq!(paid.transfers, [(caller, 30)]);
    assert_eq!(paid.output, [&0i32.to_le_bytes()[..], &70u64.to_le_bytes()].concat());
    let short = run("pay_caller", 101);
    assert!(short.transfers.is_empty());
    assert_eq!(short.output, [&(-1i32).to_le_bytes()[..], &100u64.to_le_bytes()].concat());
    let negative = run("pay_caller", u64::MAX);
    assert_eq!(negative.output[..4], (-2i32).to_le_bytes());
    // A field the home does not supply reads as absent.
    let bare = runtime.call(&counter, "height", b"", Arc::new(Map::default()), 1_000_000).unwrap();
    assert_eq!(bare.output[..4], (-1i32).to_le_bytes());
}
