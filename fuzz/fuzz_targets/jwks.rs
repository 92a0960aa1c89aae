#![no_main]
//! `cargo +nightly fuzz run jwks` (from `fuzz/`): see `fairgate_core::fuzz::jwks`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::jwks(data) {
        panic!("{broken}");
    }
});
