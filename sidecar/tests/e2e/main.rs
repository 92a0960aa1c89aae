//! The real `fairgate-sidecar` binary, run on 127.0.0.1 with simulated GPUs: what it
//! serves, what it refuses, how model-server metrics feed its headroom, and its fleet
//! poll with Redis out of reach.

// The harness is test code outside `#[test]` functions: a broken expectation there
// must fail the test, as it does inside one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod fleet;
mod harness;
mod http;
mod model_server;
