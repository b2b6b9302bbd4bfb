;; Writer allowlist (log access control, host ABI pyralog_v1): anyone reads; only the key in
;; the data segment at 0 appends, and only in a signed request. Put the writer's 32-byte key
;; there (`pyralog_contracts::examples::writer_allowlist` does).
(module
  (import "pyralog_v1" "env_read" (func $env (param i32 i32 i32) (result i32)))
  (import "pyralog_v1" "refuse" (func $refuse (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "WRITER_KEY_32_BYTES_PLACEHOLDER!")
  (data (i32.const 64) "append")
  (data (i32.const 96) "only the log's writer appends")
  (data (i32.const 128) "sign the request to append")
  ;; Scratch: 256 the operation, 512 the caller.

  ;; Whether the 32 bytes at $a and at $b are equal.
  (func $eq32 (param $a i32) (param $b i32) (result i32)
    (i32.and
      (i32.and
        (i64.eq (i64.load (local.get $a)) (i64.load (local.get $b)))
        (i64.eq (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b))))
      (i32.and
        (i64.eq (i64.load offset=16 (local.get $a)) (i64.load offset=16 (local.get $b)))
        (i64.eq (i64.load offset=24 (local.get $a)) (i64.load offset=24 (local.get $b))))))

  (func (export "allow")
    ;; Anything but an append is allowed.
    (if (i32.ne (call $env (i32.const 23) (i32.const 256) (i32.const 16)) (i32.const 6)) (then (return)))
    (if (i32.ne (i32.load (i32.const 256)) (i32.load (i32.const 64))) (then (return)))
    (if (i32.lt_s (call $env (i32.const 0) (i32.const 512) (i32.const 32)) (i32.const 0))
      (then (call $refuse (i32.const 128) (i32.const 26))))
    (if (i32.eqz (call $eq32 (i32.const 0) (i32.const 512)))
      (then (call $refuse (i32.const 96) (i32.const 29))))))
