;; Vote (chain contract, host ABI pyralog_v1): a ballot weighted by the voter's balance that
;; closes at a height.
;;
;; - `init`: input the closing height (u64, little-endian).
;; - `vote`: input one byte, the choice. Refused from the closing height on, and for an account
;;   that voted already; otherwise adds the caller's balance (after the call's fee) to the
;;   choice's tally.
;; - `tally`: input one byte, the choice; output its tally (u64, little-endian).
;; Balances are read when each vote is cast, not at a snapshot.
(module
  (import "pyralog_v1" "input_len" (func $input_len (result i32)))
  (import "pyralog_v1" "input_read" (func $input_read (param i32)))
  (import "pyralog_v1" "env_read" (func $env (param i32 i32 i32) (result i32)))
  (import "pyralog_v1" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "pyralog_v1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "pyralog_v1" "output" (func $output (param i32 i32)))
  (import "pyralog_v1" "refuse" (func $refuse (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "close")
  (data (i32.const 16) "voting is closed")
  (data (i32.const 48) "already voted")
  (data (i32.const 64) "the input is one byte, the choice")
  (data (i32.const 100) "init takes the closing height (u64)")
  ;; Keys built in place: "voted/" + the caller's key, "tally/" + the choice.
  (data (i32.const 160) "voted/")
  (data (i32.const 208) "tally/")
  ;; Scratch: 256 input, 264 height, 272 closing height, 280 weight, 288 tally, 296 a flag.

  (func (export "init")
    (if (i32.ne (call $input_len) (i32.const 8))
      (then (call $refuse (i32.const 100) (i32.const 35))))
    (call $input_read (i32.const 256))
    (call $set (i32.const 0) (i32.const 5) (i32.const 256) (i32.const 8)))

  ;; Reads the one-byte choice into the tally key.
  (func $choice
    (if (i32.ne (call $input_len) (i32.const 1))
      (then (call $refuse (i32.const 64) (i32.const 33))))
    (call $input_read (i32.const 256))
    (i32.store8 (i32.const 214) (i32.load8_u (i32.const 256))))

  ;; The choice's tally, into 288.
  (func $load_tally
    (i64.store (i32.const 288) (i64.const 0))
    (drop (call $get (i32.const 208) (i32.const 7) (i32.const 288) (i32.const 8))))

  (func (export "vote")
    (call $choice)
    (drop (call $env (i32.const 2) (i32.const 264) (i32.const 8)))
    (drop (call $get (i32.const 0) (i32.const 5) (i32.const 272) (i32.const 8)))
    (if (i64.ge_u (i64.load (i32.const 264)) (i64.load (i32.const 272)))
      (then (call $refuse (i32.const 16) (i32.const 16))))
    (drop (call $env (i32.const 0) (i32.const 166) (i32.const 32)))
    (if (i32.ne (call $get (i32.const 160) (i32.const 38) (i32.const 296) (i32.const 0)) (i32.const -1))
      (then (call $refuse (i32.const 48) (i32.const 13))))
    (drop (call $env (i32.const 5) (i32.const 280) (i32.const 8)))
    (call $load_tally)
    (i64.store (i32.const 288) (i64.add (i64.load (i32.const 288)) (i64.load (i32.const 280))))
    (call $set (i32.const 208) (i32.const 7) (i32.const 288) (i32.const 8))
    (i32.store8 (i32.const 296) (i32.const 1))
    (call $set (i32.const 160) (i32.const 38) (i32.const 296) (i32.const 1)))

  (func (export "tally")
    (call $choice)
    (call $load_tally)
    (call $output (i32.const 288) (i32.const 8))))
