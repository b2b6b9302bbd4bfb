// Keyed, non-empty records (log constraint, host ABI pyralog_v1), in AssemblyScript: every
// record has a key, and its value is not empty. Built with `asc` (see package.json); the
// contracts' tests compile it when npm is present.

@external("pyralog_v1", "env_read")
declare function env_read(field: i32, out: usize, cap: i32): i32;

@external("pyralog_v1", "refuse")
declare function refuse(ptr: usize, len: i32): void;

// Environment fields (ABI v1).
const RECORD_KEY: i32 = 18;
const RECORD_VALUE: i32 = 19;

function deny(reason: string): void {
  const bytes = String.UTF8.encode(reason);
  refuse(changetype<usize>(bytes), bytes.byteLength);
}

export function check(): void {
  // A length query: nothing is copied (capacity 0).
  if (env_read(RECORD_KEY, 0, 0) < 0) {
    deny("records need a key");
    return;
  }
  if (env_read(RECORD_VALUE, 0, 0) == 0) {
    deny("values must not be empty");
  }
}
