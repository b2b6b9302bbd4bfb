;; A schema-like check (log constraint, host ABI pyralog_v1): a record's value must be a JSON
;; object (it opens with `{` and closes with `}`) with an `"id":` member. It reads at most
;; 124 KiB of the value; larger values are refused. (Two pages of memory: a call's cost grows
;; with the memory its instance starts with, which is zeroed for every call.)
(module
  (import "pyralog_v1" "env_read" (func $env (param i32 i32 i32) (result i32)))
  (import "pyralog_v1" "refuse" (func $refuse (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "value must be a JSON object with an \"id\" field")
  (data (i32.const 64) "\"id\":")
  (data (i32.const 80) "value over 124 KiB")
  ;; The value at 4096, up to 126976 bytes.

  (func $refuse_shape (call $refuse (i32.const 0) (i32.const 46)))

  (func (export "check")
    (local $len i32) (local $at i32) (local $last i32)
    (local.set $len (call $env (i32.const 19) (i32.const 4096) (i32.const 126976)))
    (if (i32.gt_u (local.get $len) (i32.const 126976))
      (then (call $refuse (i32.const 80) (i32.const 18))))
    ;; The shortest such object is {"id":0}.
    (if (i32.lt_s (local.get $len) (i32.const 8)) (then (call $refuse_shape)))
    (if (i32.ne (i32.load8_u (i32.const 4096)) (i32.const 123)) (then (call $refuse_shape)))
    (if (i32.ne (i32.load8_u (i32.add (i32.const 4095) (local.get $len))) (i32.const 125))
      (then (call $refuse_shape)))
    (local.set $at (i32.const 4097))
    (local.set $last (i32.add (i32.const 4096) (i32.sub (local.get $len) (i32.const 6))))
    (loop $scan
      (if (i32.and
            (i32.eq (i32.load (local.get $at)) (i32.load (i32.const 64)))
            (i32.eq (i32.load8_u (i32.add (local.get $at) (i32.const 4))) (i32.const 58)))
        (then (return)))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br_if $scan (i32.le_u (local.get $at) (local.get $last))))
    (call $refuse_shape)))
