;; Audit trail (log trigger, host ABI pyralog_v1): for every committed record, one derived
;; record in the target log whose value is `audit:` and the source value's first 4090 bytes.
;; The derived record keeps the source's key and names it in its `pyralog-source` header.
(module
  (import "pyralog_v1" "env_read" (func $env (param i32 i32 i32) (result i32)))
  (import "pyralog_v1" "emit" (func $emit (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "audit:")

  (func (export "on_record")
    (local $len i32)
    (local.set $len (call $env (i32.const 19) (i32.const 1030) (i32.const 4090)))
    (if (i32.gt_u (local.get $len) (i32.const 4090)) (then (local.set $len (i32.const 4090))))
    (call $emit (i32.const 1024) (i32.add (local.get $len) (i32.const 6)))))
