#![no_main]
//! `cargo +nightly fuzz run fleet_answer` (from `fuzz/`): see `fairgate_core::fuzz::fleet_answer`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = fairgate_core::fuzz::fleet_answer(data) {
        panic!("{broken}");
    }
});
