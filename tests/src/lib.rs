//! Shared pieces of fairgate's end-to-end tests: test keys and token minting, a real
//! Envoy run as a child process, plugin configs, a recording upstream on 127.0.0.1,
//! and a tap that counts what reaches an upstream at the wire.

pub mod envoy;
pub mod flood;
pub mod plugin;
pub mod redis;
pub mod sidecar;
pub mod tap;
pub mod tokens;
pub mod upstream;
