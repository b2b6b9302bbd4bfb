//! Host ABI version 1: the functions a contract imports from module [`MODULE`]. Pointers and
//! lengths are `i32` offsets into the contract's exported `memory`; a range outside it traps
//! ([`super::ContractError::BadPointer`]). Each call costs [`CALL_FUEL`] plus [`BYTE_FUEL`] per 8
//! bytes it copies. Every call starts from a fresh instance whose exported memory costs
//! [`MEMORY_PAGE_FUEL`] per 64 KiB page it starts with.
//!
//! | function | signature | what it does |
//! |---|---|---|
//! | `input_len` | `() -> i32` | the call's input length |
//! | `input_read` | `(ptr)` | copies the input to `ptr` |
//! | `env_read` | `(field, out_ptr, out_cap) -> i32` | the length of environment [`Field`] `field` (-1: this home does not supply it); copies up to `out_cap` bytes of it to `out_ptr` |
//! | `storage_get` | `(key_ptr, key_len, out_ptr, out_cap) -> i32` | the value's length (-1: none); copies up to `out_cap` bytes of it to `out_ptr` |
//! | `storage_set` | `(key_ptr, key_len, value_ptr, value_len)` | writes the contract's own storage (seen by later reads of the call) |
//! | `storage_remove` | `(key_ptr, key_len)` | removes a key |
//! | `balance` | `() -> i64` | what the contract holds now (chain contracts; 0 elsewhere) |
//! | `transfer` | `(to_ptr, amount: i64) -> i32` | pays `amount` of the contract's balance to the 32-byte account at `to_ptr`: 0 done, -1 the balance is short, -2 a negative amount |
//! | `output` | `(ptr, len)` | sets the call's output (the last one counts) |
//! | `emit` | `(ptr, len)` | emits an event |
//! | `refuse` | `(ptr, len)` | stops the call, refused with that (UTF-8) reason: nothing it did takes effect |
//!
//! Integers in environment fields are little-endian.

/// The module contracts import the host functions from.
pub const MODULE: &str = "pyralog_v1";
/// Fuel every host call costs.
pub const CALL_FUEL: u64 = 100;
/// Fuel per 8 bytes a host call copies.
pub const BYTE_FUEL: u64 = 1;
/// Fuel per 64 KiB page of memory a call's instance starts with (it is zeroed for each call:
/// about 1.3 µs a page, measured by `make bench-contracts`).
pub const MEMORY_PAGE_FUEL: u64 = 128;

/// The fuel of a host call copying `bytes` bytes.
pub fn host_fuel(bytes: usize) -> u64 {
    CALL_FUEL + BYTE_FUEL * (bytes as u64).div_ceil(8)
}

/// What a contract can learn about its call with `env_read`; each home supplies some of them.
/// The numbers are the ABI: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Field {
    /// The caller's 32-byte ed25519 key: a chain transaction's sender, or a log client's
    /// verified identity (absent for an anonymous client).
    Caller = 0,
    /// The contract's own 32-byte id (chain contracts).
    SelfId = 1,
    /// The height of the block the call runs in (u64).
    Height = 2,
    /// The block's time, ms since the Unix epoch (u64): the only clock a contract has.
    TimeMs = 3,
    /// Tokens the caller attached to the call, already in the contract's balance (u64).
    Value = 4,
    /// The caller's balance after the fee and the attached value (u64).
    CallerBalance = 5,
    /// The log the record goes to (UTF-8 name).
    Log = 16,
    /// Its partition (u32).
    Partition = 17,
    /// The record's key (absent when it has none).
    RecordKey = 18,
    /// The record's value.
    RecordValue = 19,
    /// The record's headers: for each, the name's length (u32), the name (UTF-8), the value's
    /// length (u32) and the value.
    RecordHeaders = 20,
    /// The record's idempotent producer: id (u64) then sequence (u64); absent when it has none.
    RecordProducer = 21,
    /// The record's producer timestamp (u64, ms).
    RecordTimestampMs = 22,
    /// The operation an access-control contract decides on: `append` or `read`.
    Operation = 23,
    /// The key of the record before this one in its partition (absent for the first record,
    /// or when that record has no key): what a monotonic-key rule compares with.
    PreviousKey = 24,
    /// The record's offset in its partition (u64; triggers, which run on committed records).
    RecordOffset = 25,
}
