#![no_main]
//! `cargo +nightly fuzz run config` (from `fuzz/`): see `fairgate_core::fuzz::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::config(data) {
        panic!("{broken}");
    }
});
