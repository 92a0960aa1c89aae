//! Shared pieces of fairgate's end-to-end tests: test keys and token minting, a real
//! Envoy run as a child process, plugin configs, and a recording upstream on
//! 127.0.0.1.

pub mod envoy;
pub mod plugin;
pub mod sidecar;
pub mod tokens;
pub mod upstream;
