#![no_main]
//! `cargo +nightly fuzz run sse` (from `fuzz/`): see `fairgate_core::fuzz::sse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::sse(data) {
        panic!("{broken}");
    }
});
