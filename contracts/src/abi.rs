//! Host ABI version 1: the functions a contract imports from module [`MODULE`]. Pointers and
//! lengths are `i32` offsets into the contract's exported `memory`; a range outside it traps
//! ([`super::ContractError::BadPointer`]). Each call costs [`CALL_FUEL`] plus [`BYTE_FUEL`] per 8
//! bytes it copies.
//!
//! | function | signature | what it does |
//! |---|---|---|
//! | `input_len` | `() -> i32` | the call's input length |
//! | `input_read` | `(ptr)` | copies the input to `ptr` |
//! | `storage_get` | `(key_ptr, key_len, out_ptr, out_cap) -> i32` | the value's length (-1: none); copies up to `out_cap` bytes of it to `out_ptr` |
//! | `storage_set` | `(key_ptr, key_len, value_ptr, value_len)` | writes the contract's own storage (seen by later reads of the call) |
//! | `storage_remove` | `(key_ptr, key_len)` | removes a key |
//! | `output` | `(ptr, len)` | sets the call's output (the last one counts) |
//! | `emit` | `(ptr, len)` | emits an event |
//! | `refuse` | `(ptr, len)` | stops the call, refused with that (UTF-8) reason: nothing it did takes effect |

/// The module contracts import the host functions from.
pub const MODULE: &str = "pyralog_v1";
/// Fuel every host call costs.
pub const CALL_FUEL: u64 = 100;
/// Fuel per 8 bytes a host call copies.
pub const BYTE_FUEL: u64 = 1;

/// The fuel of a host call copying `bytes` bytes.
pub fn host_fuel(bytes: usize) -> u64 {
    CALL_FUEL + BYTE_FUEL * (bytes as u64).div_ceil(8)
}
