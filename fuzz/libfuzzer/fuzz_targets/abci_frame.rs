#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pyralog_fuzz_harness::abci_frame(data));
