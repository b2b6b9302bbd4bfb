//! Chain contracts: code stored under its hash, contracts created from it, calls that pay for
//! their fuel, and read-only queries.
//!
//! A contract's storage is in the authenticated state (`cstore/<id><key>`), so `state_getProof`
//! proves it to a light client; its balance is in its record (`contract/<id>`). A call runs on
//! the block's view of the state: it sees the writes of the transactions before it, and a call
//! that fails (trap, refusal, a limit) writes nothing; its transaction keeps the fee and nonce.
//!
//! Fuel: a call's fee pays for the fuel it may burn ([`fuel_fee`]); the fuel it did not burn is
//! refunded when it completes. A failed call refunds nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use pyralog_contracts::{Call, Contract, ContractError, Env, Field, Limits, Outcome as CallOutcome, Runtime};
use pyralog_crypto::{Digest, PublicKey};

use crate::actions::Sender;
use crate::overlay::Overlay;
use crate::staking::ledger::{BlockAt, Outcome};
use crate::state::{StateError, StateStore};
use crate::tx::MAX_TX_BYTES;
use crate::values::{
    ContractCode, ContractRecord, LAST_BLOCK_KEY, LastBlock, MAX_CALL_FUEL, code_hash, code_key, contract_id,
    contract_key, contract_storage_key, fuel_fee,
};

/// The limits every validator runs chain contracts under: part of the chain's rules, since
/// changing one changes which calls complete.
pub fn chain_limits() -> Limits {
    Limits { fuel: MAX_CALL_FUEL, code_bytes: MAX_TX_BYTES, ..Limits::default() }
}

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| Runtime::new(chain_limits()));

/// Compiled modules kept by code hash (code never changes under its hash); the cache is
/// emptied when it reaches this many.
const COMPILED_CACHE: usize = 64;

static COMPILED: LazyLock<Mutex<HashMap<Digest, Arc<Contract>>>> = LazyLock::new(Default::default);

/// The compiled code `hash` names, when the state holds it.
fn compiled(view: &Overlay<'_>, hash: &Digest) -> Result<Result<Arc<Contract>, String>, StateError> {
    // The state decides whether the code exists; the cache only saves compiling it again.
    let Some(code) = view.get::<ContractCode>(&code_key(hash))? else {
        return Ok(Err(format!("no code {hash} is stored")));
    };
    if let Some(contract) = COMPILED.lock().unwrap_or_else(|p| p.into_inner()).get(hash) {
        return Ok(Ok(contract.clone()));
    }
    let contract = match RUNTIME.compile(&code.wasm) {
        Ok(contract) => Arc::new(contract),
        Err(err) => return Ok(Err(format!("stored code {hash} does not compile: {err}"))),
    };
    let mut cache = COMPILED.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= COMPILED_CACHE {
        cache.clear();
    }
    cache.insert(*hash, contract.clone());
    Ok(Ok(contract))
}

/// `DeployCode`: stores `wasm` under its hash once it compiles under the chain's limits.
pub(crate) fn deploy(view: &mut Overlay<'_>, sender: &PublicKey, wasm: Vec<u8>, at: BlockAt) -> Outcome {
    let hash = code_hash(&wasm);
    if view.get::<ContractCode>(&code_key(&hash))?.is_some() {
        return Ok(Ok(format!("code {hash} was already stored")));
    }
    if let Err(err) = RUNTIME.compile(&wasm) {
        return Ok(Err(format!("code refused: {err}")));
    }
    view.put(code_key(&hash), &ContractCode { wasm, deployer: *sender, height: at.height });
    Ok(Ok(format!("stored code {hash}")))
}

/// `Instantiate`: a contract of stored `code`, then its `init` entry when it exports one.
pub(crate) fn instantiate(
    view: &mut Overlay<'_>,
    from: &Sender,
    code: Digest,
    input: &[u8],
    value: u64,
    fuel: u64,
    at: BlockAt,
) -> Outcome {
    let id = contract_id(&from.key, from.nonce);
    if view.get::<ContractRecord>(&contract_key(&id))?.is_some() {
        return Ok(Err(format!("contract {id} exists")));
    }
    if view.get::<ContractCode>(&code_key(&code))?.is_none() {
        return Ok(Err(format!("no code {code} is stored")));
    }
    let record = ContractRecord { code, creator: from.key, created_at: at.height, balance: 0 };
    view.put(contract_key(&id), &record);
    let init = ChainCall { contract: id, entry: "init", input, value, fuel };
    Ok(run(view, from, init, at, Entry::Optional)?.map(|summary| format!("instantiated {id}; {summary}")))
}

/// A contract call carried by a transaction.
pub(crate) struct ChainCall<'a> {
    /// The contract.
    pub(crate) contract: Digest,
    /// The entry point.
    pub(crate) entry: &'a str,
    /// Its input.
    pub(crate) input: &'a [u8],
    /// Tokens attached.
    pub(crate) value: u64,
    /// The fuel paid for.
    pub(crate) fuel: u64,
}

/// `CallContract`.
pub(crate) fn call(view: &mut Overlay<'_>, from: &Sender, call: ChainCall<'_>, at: BlockAt) -> Outcome {
    run(view, from, call, at, Entry::Required)
}

/// Whether a missing entry point fails the call (`init` is optional).
#[derive(PartialEq)]
enum Entry {
    Required,
    Optional,
}

fn run(view: &mut Overlay<'_>, from: &Sender, call: ChainCall<'_>, at: BlockAt, entry: Entry) -> Outcome {
    if call.fuel > MAX_CALL_FUEL {
        return Ok(Err(format!("fuel {} over the {MAX_CALL_FUEL} a call may burn", call.fuel)));
    }
    let key = contract_key(&call.contract);
    let Some(mut record) = view.get::<ContractRecord>(&key)? else {
        return Ok(Err(format!("no contract {}", call.contract)));
    };
    if let Err(why) = view.debit(&from.key, call.value)? {
        return Ok(Err(format!("attached value: {why}")));
    }
    let Some(balance) = record.balance.checked_add(call.value) else {
        return Ok(Err("the contract's balance would overflow".into()));
    };
    record.balance = balance;
    let contract = match compiled(view, &record.code)? {
        Ok(contract) => contract,
        Err(why) => return Ok(Err(why)),
    };
    let env = Env::default()
        .with(Field::Caller, *from.key.as_bytes())
        .with(Field::SelfId, call.contract.0)
        .with_u64(Field::Height, at.height)
        .with_u64(Field::TimeMs, at.time_ms)
        .with_u64(Field::Value, call.value)
        .with_u64(Field::CallerBalance, view.account(&from.key)?.balance)
        .with_balance(record.balance);
    let storage = Arc::new(StateStorage::new(view, &call.contract));
    let result = RUNTIME.run(
        &contract,
        Call { entry: call.entry, input: call.input, env: &env, fuel: call.fuel },
        storage.clone(),
    );
    storage.failure()?;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(ContractError::MissingEntry(_)) if entry == Entry::Optional => CallOutcome::default(),
        Err(err) => return Ok(Err(format!("{} of {}: {err}", call.entry, call.contract))),
    };
    for (key, value) in &outcome.writes {
        let key = contract_storage_key(&call.contract, key);
        match value {
            Some(value) => view.put(key, value),
            None => view.delete(key),
        }
    }
    for (to, amount) in &outcome.transfers {
        let Ok(to) = PublicKey::from_bytes(to) else {
            return Ok(Err(format!("{} paid {} which is not an account key", call.entry, hex::encode(to))));
        };
        // The runtime kept the transfers within the balance it was given.
        record.balance -= amount;
        // A zero payment (or refund) writes nothing, not even an empty account.
        if *amount > 0
            && let Err(why) = view.credit(&to, *amount)?
        {
            return Ok(Err(why));
        }
    }
    view.put(key, &record);
    // The fee paid for `call.fuel`; what the call did not burn goes back.
    let refund = fuel_fee(call.fuel) - fuel_fee(outcome.fuel_used);
    if refund > 0
        && let Err(why) = view.credit(&from.key, refund)?
    {
        return Ok(Err(why));
    }
    Ok(Ok(summary(call.entry, &outcome)))
}

/// The transaction log of a completed call: fuel, output and events (hex).
fn summary(entry: &str, outcome: &CallOutcome) -> String {
    let events: Vec<String> = outcome.events.iter().map(|e| format!("0x{}", hex::encode(e))).collect();
    format!(
        "{entry}: fuel {}, output 0x{}, events [{}]",
        outcome.fuel_used,
        hex::encode(&outcome.output),
        events.join(", ")
    )
}

/// What a read-only call would do at committed `version`: `entry` of `contract` with `input`,
/// as `caller` when given, in the block after `version`, with [`MAX_CALL_FUEL`]. Nothing is
/// written.
pub fn query(
    state: &StateStore,
    version: u64,
    contract: &Digest,
    entry: &str,
    input: &[u8],
    caller: Option<&PublicKey>,
) -> Result<Result<CallOutcome, String>, StateError> {
    let view = Overlay::new(state, Some(version));
    let Some(record) = view.get::<ContractRecord>(&contract_key(contract))? else {
        return Ok(Err(format!("no contract {contract}")));
    };
    let code = match compiled(&view, &record.code)? {
        Ok(code) => code,
        Err(why) => return Ok(Err(why)),
    };
    let time_ms = view.get::<LastBlock>(LAST_BLOCK_KEY)?.map_or(0, |last| last.time_ms);
    let mut env = Env::default()
        .with(Field::SelfId, contract.0)
        .with_u64(Field::Height, version + 1)
        .with_u64(Field::TimeMs, time_ms)
        .with_u64(Field::Value, 0)
        .with_balance(record.balance);
    if let Some(caller) = caller {
        env = env
            .with(Field::Caller, *caller.as_bytes())
            .with_u64(Field::CallerBalance, view.account(caller)?.balance);
    }
    let storage = Arc::new(StateStorage::new(&view, contract));
    let result = RUNTIME.run(&code, Call { entry, input, env: &env, fuel: MAX_CALL_FUEL }, storage.clone());
    storage.failure()?;
    Ok(result.map_err(|err| format!("{entry} of {contract}: {err}")))
}

/// A contract's storage as a call sees it: the block's pending writes under the contract's
/// prefix, then the committed state.
struct StateStorage {
    state: StateStore,
    version: Option<u64>,
    prefix: Vec<u8>,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The first state read that failed: the call's result is not to be trusted then, and the
    /// block fails as on any state error.
    failed: Mutex<Option<StateError>>,
}

impl StateStorage {
    fn new(view: &Overlay<'_>, contract: &Digest) -> Self {
        let prefix = contract_storage_key(contract, b"");
        let pending = view
            .writes
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        StateStorage {
            state: view.state.clone(),
            version: view.version,
            prefix,
            pending,
            failed: Mutex::new(None),
        }
    }

    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let key = [self.prefix.as_slice(), key].concat();
        let stored = match self.pending.get(&key) {
            Some(pending) => pending.clone(),
            None => match self.version {
                Some(version) => self.state.get(&key, version)?,
                None => None,
            },
        };
        stored
            .map(|bytes| postcard::from_bytes::<Vec<u8>>(&bytes))
            .transpose()
            .map_err(|e| StateError::Corrupt { what: "contract storage value", reason: e.to_string() })
    }

    /// The state error a read met, if any.
    fn failure(&self) -> Result<(), StateError> {
        match self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

impl pyralog_contracts::Storage for StateStorage {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.read(key) {
            Ok(value) => value,
            Err(err) => {
                self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(err);
                None
            }
        }
    }
}
