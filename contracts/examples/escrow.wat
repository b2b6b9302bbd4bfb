;; Escrow (chain contract, host ABI pyralog_v1).
;;
;; The depositor instantiates it with tokens attached and `init`'s input: the beneficiary's key
;; (32 bytes), the arbiter's key (32 bytes) and a refund height (u64, little-endian).
;; - `release`: the arbiter pays everything held to the beneficiary (the condition is the
;;   arbiter's approval); anyone else is refused.
;; - `refund`: from the refund height on, anyone may return everything held to the depositor.
;; Both emit an event naming what happened.
(module
  (import "pyralog_v1" "input_len" (func $input_len (result i32)))
  (import "pyralog_v1" "input_read" (func $input_read (param i32)))
  (import "pyralog_v1" "env_read" (func $env (param i32 i32 i32) (result i32)))
  (import "pyralog_v1" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "pyralog_v1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "pyralog_v1" "balance" (func $balance (result i64)))
  (import "pyralog_v1" "transfer" (func $transfer (param i32 i64) (result i32)))
  (import "pyralog_v1" "emit" (func $emit (param i32 i32)))
  (import "pyralog_v1" "refuse" (func $refuse (param i32 i32)))
  (memory (export "memory") 1)
  ;; Storage keys.
  (data (i32.const 0) "depositor")
  (data (i32.const 16) "beneficiary")
  (data (i32.const 32) "arbiter")
  (data (i32.const 48) "refund_at")
  ;; Reasons and events.
  (data (i32.const 64) "init takes two 32-byte keys and a u64 height")
  (data (i32.const 128) "only the arbiter releases")
  (data (i32.const 160) "no refund before the refund height")
  (data (i32.const 208) "released")
  (data (i32.const 224) "refunded")
  ;; Scratch: 512 input, 640 caller, 704 an account read from storage, 768 height, 776 refund_at.

  (func (export "init")
    (if (i32.ne (call $input_len) (i32.const 72))
      (then (call $refuse (i32.const 64) (i32.const 44))))
    (call $input_read (i32.const 512))
    (drop (call $env (i32.const 0) (i32.const 640) (i32.const 32)))
    (call $set (i32.const 0) (i32.const 9) (i32.const 640) (i32.const 32))
    (call $set (i32.const 16) (i32.const 11) (i32.const 512) (i32.const 32))
    (call $set (i32.const 32) (i32.const 7) (i32.const 544) (i32.const 32))
    (call $set (i32.const 48) (i32.const 9) (i32.const 576) (i32.const 8)))

  ;; Pays everything held to the account stored under the key at $key_ptr.
  (func $pay_all (param $key_ptr i32) (param $key_len i32)
    (drop (call $get (local.get $key_ptr) (local.get $key_len) (i32.const 704) (i32.const 32)))
    (drop (call $transfer (i32.const 704) (call $balance))))

  ;; Whether the 32 bytes at $a and at $b are equal.
  (func $eq32 (param $a i32) (param $b i32) (result i32)
    (i32.and
      (i32.and
        (i64.eq (i64.load (local.get $a)) (i64.load (local.get $b)))
        (i64.eq (i64.load offset=8 (local.get $a)) (i64.load offset=8 (local.get $b))))
      (i32.and
        (i64.eq (i64.load offset=16 (local.get $a)) (i64.load offset=16 (local.get $b)))
        (i64.eq (i64.load offset=24 (local.get $a)) (i64.load offset=24 (local.get $b))))))

  (func (export "release")
    (drop (call $env (i32.const 0) (i32.const 640) (i32.const 32)))
    (drop (call $get (i32.const 32) (i32.const 7) (i32.const 704) (i32.const 32)))
    (if (i32.eqz (call $eq32 (i32.const 640) (i32.const 704)))
      (then (call $refuse (i32.const 128) (i32.const 25))))
    (call $pay_all (i32.const 16) (i32.const 11))
    (call $emit (i32.const 208) (i32.const 8)))

  (func (export "refund")
    (drop (call $env (i32.const 2) (i32.const 768) (i32.const 8)))
    (drop (call $get (i32.const 48) (i32.const 9) (i32.const 776) (i32.const 8)))
    (if (i64.lt_u (i64.load (i32.const 768)) (i64.load (i32.const 776)))
      (then (call $refuse (i32.const 160) (i32.const 34))))
    (call $pay_all (i32.const 0) (i32.const 9))
    (call $emit (i32.const 224) (i32.const 8))))
