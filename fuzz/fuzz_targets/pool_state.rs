#![no_main]
//! `cargo +nightly fuzz run pool_state` (from `fuzz/`): see `fairgate_core::fuzz::pool_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::pool_state(data) {
        panic!("{broken}");
    }
});
