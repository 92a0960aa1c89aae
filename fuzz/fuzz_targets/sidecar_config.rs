#![no_main]
//! `cargo +nightly fuzz run sidecar_config` (from `fuzz/`): see `fairgate_sidecar::fuzz::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_sidecar::fuzz::config(data) {
        panic!("{broken}");
    }
});
