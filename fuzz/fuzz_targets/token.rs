#![no_main]
//! `cargo +nightly fuzz run token` (from `fuzz/`): see `fairgate_core::fuzz::token`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::token(data) {
        panic!("{broken}");
    }
});
