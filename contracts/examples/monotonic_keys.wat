;; Monotonic keys (log constraint, host ABI pyralog_v1): every record has a key, and each key
;; is greater, bytewise, than the key of the record before it in the partition.
(module
  (import "pyralog_v1" "env_read" (func $env (param i32 i32 i32) (result i32)))
  (import "pyralog_v1" "refuse" (func $refuse (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "records need a key")
  (data (i32.const 32) "keys must increase")
  (data (i32.const 64) "keys longer than 16 KiB")
  ;; The record's key at 4096, the previous key at 20480 (16 KiB each).

  (func (export "check")
    (local $key_len i32) (local $previous_len i32) (local $common i32) (local $i i32)
    (local $a i32) (local $b i32)
    (local.set $key_len (call $env (i32.const 18) (i32.const 4096) (i32.const 16384)))
    (if (i32.lt_s (local.get $key_len) (i32.const 0))
      (then (call $refuse (i32.const 0) (i32.const 18))))
    (local.set $previous_len (call $env (i32.const 24) (i32.const 20480) (i32.const 16384)))
    ;; The partition's first keyed record: nothing to compare with.
    (if (i32.lt_s (local.get $previous_len) (i32.const 0)) (then (return)))
    (if (i32.or (i32.gt_u (local.get $key_len) (i32.const 16384))
                (i32.gt_u (local.get $previous_len) (i32.const 16384)))
      (then (call $refuse (i32.const 64) (i32.const 23))))
    (local.set $common
      (select (local.get $key_len) (local.get $previous_len)
        (i32.lt_u (local.get $key_len) (local.get $previous_len))))
    (block $equal_prefix
      (loop $next
        (br_if $equal_prefix (i32.ge_u (local.get $i) (local.get $common)))
        (local.set $a (i32.load8_u (i32.add (i32.const 4096) (local.get $i))))
        (local.set $b (i32.load8_u (i32.add (i32.const 20480) (local.get $i))))
        (if (i32.gt_u (local.get $a) (local.get $b)) (then (return)))
        (if (i32.lt_u (local.get $a) (local.get $b))
          (then (call $refuse (i32.const 32) (i32.const 18))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; One key is a prefix of the other: the new one must be the longer.
    (if (i32.le_u (local.get $key_len) (local.get $previous_len))
      (then (call $refuse (i32.const 32) (i32.const 18))))))
