#![no_main]
//! `cargo +nightly fuzz run promtext` (from `fuzz/`): see `fairgate_sidecar::fuzz::promtext`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_sidecar::fuzz::promtext(data) {
        panic!("{broken}");
    }
});
