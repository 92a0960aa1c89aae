#![no_main]
//! `cargo +nightly fuzz run fleet_poll` (from `fuzz/`): see `fairgate_sidecar::fuzz::fleet_poll`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_sidecar::fuzz::fleet_poll(data) {
        panic!("{broken}");
    }
});
