#![no_main]
//! `cargo +nightly fuzz run policy_claim` (from `fuzz/`): see
//! `fairgate_core::fuzz::policy_claim`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::policy_claim(data) {
        panic!("{broken}");
    }
});
