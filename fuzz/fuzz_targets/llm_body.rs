#![no_main]
//! `cargo +nightly fuzz run llm_body` (from `fuzz/`): see `fairgate_core::fuzz::llm_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::llm_body(data) {
        panic!("{broken}");
    }
});
