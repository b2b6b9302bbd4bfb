//! The example contracts (WAT sources in `contracts/examples/`), used by the tests, the
//! benchmarks and `make testnet`.

/// Escrow: release by an arbiter, refund after a height (chain contract).
pub const ESCROW: &str = include_str!("../examples/escrow.wat");
/// Vote: weighted by balance, closes at a height (chain contract).
pub const VOTE: &str = include_str!("../examples/vote.wat");

/// Monotonic keys: every record keyed, each key above the previous one (log constraint).
pub const MONOTONIC_KEYS: &str = include_str!("../examples/monotonic_keys.wat");
/// A schema-like check: values are JSON objects with an `"id"` member (log constraint).
pub const JSON_ID: &str = include_str!("../examples/json_id.wat");

/// Audit trail: one `audit:`-prefixed copy of every committed record (log trigger).
pub const AUDIT_TRIGGER: &str = include_str!("../examples/audit_trigger.wat");

/// Writer allowlist: anyone reads, one key appends (log access control); see
/// [`writer_allowlist`].
pub const WRITER_ALLOWLIST: &str = include_str!("../examples/writer_allowlist.wat");

/// [`WRITER_ALLOWLIST`] with `writer` as the key that may append.
pub fn writer_allowlist(writer: &[u8; 32]) -> String {
    let escaped: String = writer.iter().map(|byte| format!("\\{byte:02x}")).collect();
    WRITER_ALLOWLIST.replace("WRITER_KEY_32_BYTES_PLACEHOLDER!", &escaped)
}

/// The WASM of a text (WAT) or binary module: text is compiled with the `wat` crate.
pub fn wasm_of(source: &[u8]) -> Result<Vec<u8>, String> {
    wat::parse_bytes(source).map(|wasm| wasm.into_owned()).map_err(|err| err.to_string())
}
