#![no_main]
//! `cargo +nightly fuzz run headroom` (from `fuzz/`): see `fairgate_core::fuzz::headroom`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::headroom(data) {
        panic!("{broken}");
    }
});
