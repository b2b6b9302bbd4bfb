//! The runtime: compiling a contract, and running one of its entry points against a storage view.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmi::{
    Caller, CompilationMode, Config, EnforcedLimits, Engine, Error, Extern, Linker, Module, Store,
    StoreLimits, StoreLimitsBuilder, TrapCode,
};

use crate::abi::{self, Field};

/// What a contract may use of each resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest module, bytes.
    pub code_bytes: usize,
    /// Most fuel one call may burn (a caller may give less).
    pub fuel: u64,
    /// Largest linear memory, bytes.
    pub memory_bytes: usize,
    /// Deepest nesting of calls.
    pub call_depth: usize,
    /// Largest output, bytes.
    pub output_bytes: usize,
    /// Largest storage key, bytes.
    pub key_bytes: usize,
    /// Largest storage value, bytes.
    pub value_bytes: usize,
    /// Most events one call emits.
    pub events: usize,
    /// Largest event, bytes.
    pub event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            code_bytes: 256 << 10,
            fuel: 10_000_000,
            memory_bytes: 1 << 20,
            call_depth: 256,
            output_bytes: 64 << 10,
            key_bytes: 256,
            value_bytes: 64 << 10,
            events: 64,
            event_bytes: 4 << 10,
        }
    }
}

/// Why a contract could not be compiled or a call did not complete. A failed call changes
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The module is larger than [`Limits::code_bytes`].
    #[error("code is {len} bytes, the limit is {limit}")]
    CodeTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a valid module, or one using what contracts may not (floats, SIMD, ...).
    #[error("invalid contract: {0}")]
    InvalidModule(String),
    /// The module could not be instantiated (an unknown import, memory over the limit, ...).
    #[error("cannot instantiate the contract: {0}")]
    Instantiation(String),
    /// No exported entry point of that name taking and returning nothing.
    #[error("the contract has no entry point {0:?}")]
    MissingEntry(String),
    /// The call burnt all its fuel.
    #[error("out of fuel ({limit} given)")]
    OutOfFuel {
        /// The fuel the call had.
        limit: u64,
    },
    /// Calls nested deeper than [`Limits::call_depth`] (or the value stack overflowed).
    #[error("call depth or stack limit exceeded")]
    CallDepth,
    /// The contract grew its memory past [`Limits::memory_bytes`].
    #[error("memory limit exceeded")]
    MemoryLimit,
    /// A size limit of the host ABI: output, key, value, event size or count.
    #[error("{what} is {len} bytes or items, the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A host call named bytes outside the contract's memory (or it exports none).
    #[error("a host call named bytes outside the contract's memory")]
    BadPointer,
    /// The contract refused (`refuse`), with its reason.
    #[error("refused by the contract: {0}")]
    Refused(String),
    /// Any other trap (unreachable, division by zero, out-of-bounds access, ...).
    #[error("trap: {0}")]
    Trap(String),
}

/// The storage a call reads (its own writes are seen by later reads of the same call).
pub trait Storage: Send + Sync {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// What a completed call did; its effects are for the caller to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The output (`output`).
    pub output: Vec<u8>,
    /// Storage writes, by key: a value, or `None` for a removal.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Events emitted, in order.
    pub events: Vec<Vec<u8>>,
    /// Payments out of the contract's balance (`transfer`), in order: to whom, how much.
    pub transfers: Vec<([u8; 32], u64)>,
    /// Fuel burnt, host calls included.
    pub fuel_used: u64,
}

/// What the home tells a call about its context: the `env_read` fields it supplies, and the
/// balance `transfer` spends from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    fields: BTreeMap<Field, Vec<u8>>,
    /// The contract's balance when the call starts (attached value included).
    pub balance: u64,
}

impl Env {
    /// This environment with `field` set to `bytes`.
    pub fn with(mut self, field: Field, bytes: impl Into<Vec<u8>>) -> Self {
        self.fields.insert(field, bytes.into());
        self
    }

    /// This environment with `field` set to the integer `value` (little-endian).
    pub fn with_u64(self, field: Field, value: u64) -> Self {
        self.with(field, value.to_le_bytes())
    }

    /// This environment holding `balance`.
    pub fn with_balance(mut self, balance: u64) -> Self {
        self.balance = balance;
        self
    }

    /// The bytes of `field`, when supplied.
    pub fn get(&self, field: Field) -> Option<&[u8]> {
        self.fields.get(&field).map(Vec::as_slice)
    }
}

/// One call: the entry point, its input, its environment and the fuel it may burn.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The exported function to run (no parameters, no results).
    pub entry: &'a str,
    /// What `input_read` copies.
    pub input: &'a [u8],
    /// What `env_read` and `balance` see.
    pub env: &'a Env,
    /// The fuel it may burn (at most [`Limits::fuel`]).
    pub fuel: u64,
}

/// A compiled contract.
#[derive(Debug)]
pub struct Contract {
    module: Module,
}

/// Compiles and runs contracts under one set of [`Limits`].
pub struct Runtime {
    engine: Engine,
    linker: Linker<Host>,
    limits: Limits,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("limits", &self.limits).finish()
    }
}

/// A call's state, which host functions see.
struct Host {
    input: Vec<u8>,
    env: Env,
    /// What the contract holds now (the environment's balance less its transfers).
    balance: u64,
    storage: Arc<dyn Storage>,
    limits: Limits,
    store_limits: StoreLimits,
    outcome: Outcome,
    /// Why a host function stopped the call, when one did.
    stop: Option<ContractError>,
}

type HostCaller<'a> = Caller<'a, Host>;

impl Runtime {
    /// A runtime with `limits`.
    pub fn new(limits: Limits) -> Self {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .floats(false)
            .wasm_memory64(false)
            .wasm_multi_memory(false)
            .wasm_reference_types(false)
            .wasm_tail_call(false)
            .compilation_mode(CompilationMode::Eager)
            .enforced_limits(EnforcedLimits::strict())
            .set_max_recursion_depth(limits.call_depth);
        let engine = Engine::new(&config);
        let mut linker = Linker::new(&engine);
        link_host(&mut linker);
        Runtime { engine, linker, limits }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks and compiles `wasm`.
    pub fn compile(&self, wasm: &[u8]) -> Result<Contract, ContractError> {
        if wasm.len() > self.limits.code_bytes {
            return Err(ContractError::CodeTooLarge { len: wasm.len(), limit: self.limits.code_bytes });
        }
        let module =
            Module::new(&self.engine, wasm).map_err(|err| ContractError::InvalidModule(err.to_string()))?;
        Ok(Contract { module })
    }

    /// Runs `entry` of `contract` with `input` against `storage`, with at most `fuel` (and
    /// [`Limits::fuel`]), in an empty environment.
    pub fn call(
        &self,
        contract: &Contract,
        entry: &str,
        input: &[u8],
        storage: Arc<dyn Storage>,
        fuel: u64,
    ) -> Result<Outcome, ContractError> {
        self.run(contract, Call { entry, input, env: &Env::default(), fuel }, storage)
    }

    /// Runs `call` of `contract` against `storage`.
    pub fn run(
        &self,
        contract: &Contract,
        call: Call<'_>,
        storage: Arc<dyn Storage>,
    ) -> Result<Outcome, ContractError> {
        let Call { entry, input, env, fuel } = call;
        let fuel = fuel.min(self.limits.fuel);
        // A missing entry point is known before anything runs (a start function included), so
        // it burns no fuel.
        let exported = contract.module.get_export(entry).and_then(|export| export.func().cloned());
        if !exported.is_some_and(|ty| ty.params().is_empty() && ty.results().is_empty()) {
            return Err(ContractError::MissingEntry(entry.to_owned()));
        }
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(1)
            .trap_on_grow_failure(true)
            .build();
        let host = Host {
            input: input.to_vec(),
            env: env.clone(),
            balance: env.balance,
            storage,
            limits: self.limits,
            store_limits,
            outcome: Outcome::default(),
            stop: None,
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|host| &mut host.store_limits);
        store.set_fuel(fuel).map_err(|err| ContractError::Trap(err.to_string()))?;
        // A start function runs on the call's fuel, like the entry point.
        let result = self
            .linker
            .instantiate_and_start(&mut store, &contract.module)
            .map_err(|err| match err.as_trap_code() {
                Some(_) => classify(&err, fuel),
                None => ContractError::Instantiation(err.to_string()),
            })
            .and_then(|instance| {
                let function = instance
                    .get_typed_func::<(), ()>(&store, entry)
                    .map_err(|_| ContractError::MissingEntry(entry.to_owned()))?;
                // A fresh instance's memory is zeroed for every call: its pages cost fuel.
                let pages = instance.get_memory(&store, "memory").map_or(0, |memory| memory.size(&store));
                let left = store.get_fuel().unwrap_or(0);
                let cost = pages.saturating_mul(abi::MEMORY_PAGE_FUEL);
                if cost > left {
                    let _ = store.set_fuel(0);
                    return Err(ContractError::OutOfFuel { limit: fuel });
                }
                store.set_fuel(left - cost).map_err(|err| ContractError::Trap(err.to_string()))?;
                function.call(&mut store, ()).map_err(|err| classify(&err, fuel))
            });
        let remaining = store.get_fuel().unwrap_or(0);
        let host = store.into_data();
        if let Some(stop) = host.stop {
            return Err(stop);
        }
        result?;
        Ok(Outcome { fuel_used: fuel - remaining, ..host.outcome })
    }
}

/// The error a trap is.
fn classify(err: &Error, fuel: u64) -> ContractError {
    match err.as_trap_code() {
        Some(TrapCode::OutOfFuel) => ContractError::OutOfFuel { limit: fuel },
        Some(TrapCode::StackOverflow) => ContractError::CallDepth,
        Some(TrapCode::GrowthOperationLimited) => ContractError::MemoryLimit,
        Some(code) => ContractError::Trap(code.to_string()),
        None => ContractError::Trap(err.to_string()),
    }
}

/// Stops the call with `why` (the host keeps it; wasmi only sees a trap).
fn stop(caller: &mut HostCaller<'_>, why: ContractError) -> Error {
    let message = why.to_string();
    caller.data_mut().stop = Some(why);
    Error::new(message)
}

/// Charges a host call copying `bytes` bytes.
fn charge(caller: &mut HostCaller<'_>, bytes: usize) -> Result<(), Error> {
    let cost = abi::host_fuel(bytes);
    let fuel = caller.get_fuel()?;
    if fuel < cost {
        caller.set_fuel(0)?;
        return Err(TrapCode::OutOfFuel.into());
    }
    caller.set_fuel(fuel - cost)
}

/// The memory range `ptr..ptr + len`, if it is one.
fn range(ptr: i32, len: i32) -> Option<std::ops::Range<usize>> {
    let (ptr, len) = (usize::try_from(ptr).ok()?, usize::try_from(len).ok()?);
    Some(ptr..ptr.checked_add(len)?)
}

/// The bytes at `ptr..ptr + len` of the contract's memory.
fn read(caller: &mut HostCaller<'_>, ptr: i32, len: i32) -> Result<Vec<u8>, Error> {
    let memory = caller.get_export("memory").and_then(Extern::into_memory);
    let bytes = match (memory, range(ptr, len)) {
        (Some(memory), Some(range)) => memory.data(&*caller).get(range).map(<[u8]>::to_vec),
        _ => None,
    };
    bytes.ok_or_else(|| stop(caller, ContractError::BadPointer))
}

/// Writes `bytes` at `ptr` of the contract's memory.
fn write(caller: &mut HostCaller<'_>, ptr: i32, bytes: &[u8]) -> Result<(), Error> {
    let memory = caller.get_export("memory").and_then(Extern::into_memory);
    let Some(range) = range(ptr, i32::try_from(bytes.len()).unwrap_or(-1)) else {
        return Err(stop(caller, ContractError::BadPointer));
    };
    match memory.and_then(|memory| memory.data_mut(&mut *caller).get_mut(range)) {
        Some(target) => {
            target.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(stop(caller, ContractError::BadPointer)),
    }
}

/// The `len` bytes at `ptr`, refused as `what` when over `limit` (before anything is copied).
fn read_bounded(
    caller: &mut HostCaller<'_>,
    what: &'static str,
    (ptr, len): (i32, i32),
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let Ok(size) = usize::try_from(len) else {
        return Err(stop(caller, ContractError::BadPointer));
    };
    bounded(caller, what, size, limit)?;
    read(caller, ptr, len)
}

/// Refuses a size over `limit`.
fn bounded(caller: &mut HostCaller<'_>, what: &'static str, len: usize, limit: usize) -> Result<(), Error> {
    match len <= limit {
        true => Ok(()),
        false => Err(stop(caller, ContractError::TooLarge { what, len, limit })),
    }
}

/// The environment field numbered `number`, if ABI v1 has one.
fn env_field(number: i32) -> Option<Field> {
    use Field::*;
    [
        Caller,
        SelfId,
        Height,
        TimeMs,
        Value,
        CallerBalance,
        Log,
        Partition,
        RecordKey,
        RecordValue,
        RecordHeaders,
        RecordProducer,
        RecordTimestampMs,
        Operation,
        PreviousKey,
        RecordOffset,
    ]
    .into_iter()
    .find(|field| *field as i32 == number)
}

fn link_host(linker: &mut Linker<Host>) {
    let module = abi::MODULE;
    let link = "host functions have distinct names";
    linker
        .func_wrap(module, "input_len", |mut caller: HostCaller<'_>| -> Result<i32, Error> {
            charge(&mut caller, 0)?;
            Ok(i32::try_from(caller.data().input.len()).unwrap_or(i32::MAX))
        })
        .expect(link);
    linker
        .func_wrap(module, "input_read", |mut caller: HostCaller<'_>, ptr: i32| -> Result<(), Error> {
            let input = caller.data().input.clone();
            charge(&mut caller, input.len())?;
            write(&mut caller, ptr, &input)
        })
        .expect(link);
    linker
        .func_wrap(
            module,
            "env_read",
            |mut caller: HostCaller<'_>, field: i32, out_ptr: i32, out_cap: i32| -> Result<i32, Error> {
                let value =
                    env_field(field).and_then(|field| caller.data().env.get(field)).map(<[u8]>::to_vec);
                let Some(value) = value else {
                    charge(&mut caller, 0)?;
                    return Ok(-1);
                };
                charge(&mut caller, value.len())?;
                let copied = value.len().min(usize::try_from(out_cap).unwrap_or(0));
                write(&mut caller, out_ptr, &value[..copied])?;
                Ok(i32::try_from(value.len()).unwrap_or(i32::MAX))
            },
        )
        .expect(link);
    linker
        .func_wrap(module, "balance", |mut caller: HostCaller<'_>| -> Result<i64, Error> {
            charge(&mut caller, 0)?;
            Ok(i64::try_from(caller.data().balance).unwrap_or(i64::MAX))
        })
        .expect(link);
    linker
        .func_wrap(
            module,
            "transfer",
            |mut caller: HostCaller<'_>, to_ptr: i32, amount: i64| -> Result<i32, Error> {
                let to: [u8; 32] = read(&mut caller, to_ptr, 32)?.try_into().expect("32 bytes read");
                charge(&mut caller, 32)?;
                let Ok(amount) = u64::try_from(amount) else { return Ok(-2) };
                let host = caller.data_mut();
                let Some(left) = host.balance.checked_sub(amount) else { return Ok(-1) };
                host.balance = left;
                host.outcome.transfers.push((to, amount));
                Ok(0)
            },
        )
        .expect(link);
    linker
        .func_wrap(
            module,
            "storage_get",
            |mut caller: HostCaller<'_>,
             key_ptr: i32,
             key_len: i32,
             out_ptr: i32,
             out_cap: i32|
             -> Result<i32, Error> {
                let limit = caller.data().limits.key_bytes;
                let key = read_bounded(&mut caller, "storage key", (key_ptr, key_len), limit)?;
                let host = caller.data();
                let value = match host.outcome.writes.get(&key) {
                    Some(written) => written.clone(),
                    None => host.storage.get(&key),
                };
                let Some(value) = value else {
                    charge(&mut caller, key.len())?;
                    return Ok(-1);
                };
                charge(&mut caller, key.len() + value.len())?;
                let copied = value.len().min(usize::try_from(out_cap).unwrap_or(0));
                write(&mut caller, out_ptr, &value[..copied])?;
                Ok(i32::try_from(value.len()).unwrap_or(i32::MAX))
            },
        )
        .expect(link);
    linker
        .func_wrap(
            module,
            "storage_set",
            |mut caller: HostCaller<'_>,
             key_ptr: i32,
             key_len: i32,
             value_ptr: i32,
             value_len: i32|
             -> Result<(), Error> {
                let limits = caller.data().limits;
                let key = read_bounded(&mut caller, "storage key", (key_ptr, key_len), limits.key_bytes)?;
                let value =
                    read_bounded(&mut caller, "storage value", (value_ptr, value_len), limits.value_bytes)?;
                charge(&mut caller, key.len() + value.len())?;
                caller.data_mut().outcome.writes.insert(key, Some(value));
                Ok(())
            },
        )
        .expect(link);
    linker
        .func_wrap(
            module,
            "storage_remove",
            |mut caller: HostCaller<'_>, key_ptr: i32, key_len: i32| -> Result<(), Error> {
                let limit = caller.data().limits.key_bytes;
                let key = read_bounded(&mut caller, "storage key", (key_ptr, key_len), limit)?;
                charge(&mut caller, key.len())?;
                caller.data_mut().outcome.writes.insert(key, None);
                Ok(())
            },
        )
        .expect(link);
    linker
        .func_wrap(module, "output", |mut caller: HostCaller<'_>, ptr: i32, len: i32| -> Result<(), Error> {
            let limit = caller.data().limits.output_bytes;
            let output = read_bounded(&mut caller, "output", (ptr, len), limit)?;
            charge(&mut caller, output.len())?;
            caller.data_mut().outcome.output = output;
            Ok(())
        })
        .expect(link);
    linker
        .func_wrap(module, "emit", |mut caller: HostCaller<'_>, ptr: i32, len: i32| -> Result<(), Error> {
            let limits = caller.data().limits;
            let count = caller.data().outcome.events.len() + 1;
            bounded(&mut caller, "event count", count, limits.events)?;
            let event = read_bounded(&mut caller, "event", (ptr, len), limits.event_bytes)?;
            charge(&mut caller, event.len())?;
            caller.data_mut().outcome.events.push(event);
            Ok(())
        })
        .expect(link);
    linker
        .func_wrap(module, "refuse", |mut caller: HostCaller<'_>, ptr: i32, len: i32| -> Result<(), Error> {
            let limit = caller.data().limits.output_bytes;
            let reason = read_bounded(&mut caller, "refusal reason", (ptr, len), limit)?;
            Err(stop(&mut caller, ContractError::Refused(String::from_utf8_lossy(&reason).into_owned())))
        })
        .expect(link);
}
