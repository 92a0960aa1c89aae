//! `fairgate-sidecar`: reads live GPU state (NVML, or simulated GPUs) and the model
//! servers' own load, turns them into headroom and a suggested capacity per Envoy
//! cluster, and serves that to fairgate's filter (`GET /v1/headroom`) and to
//! Prometheus (`GET /metrics`).
//!
//! Where things live:
//! - [`config`]: the TOML file, strict parsing and the checks, errors with field paths;
//! - [`gpu`]: the [`gpu::GpuSource`] trait and a GPU reading; [`nvml`] and [`sim`] are
//!   the two sources;
//! - [`promtext`] reads Prometheus text; [`model_server`] scrapes vLLM's signals;
//! - [`headroom`]: the formula, pure; [`snapshot`] applies it to one poll's readings;
//!   [`wire`] is the `/v1/headroom` JSON;
//! - [`poller`] polls in the background; [`server`] answers HTTP from the latest
//!   snapshot; [`metrics`] is `/metrics`; [`app`] starts it all;
//! - [`fuzz`]: the bodies of the fuzz targets of its parsers (`fuzz/`);
//! - [`fleet`]: fleet mode (SPEC section 9), leases of the fleet's budgets kept in
//!   Redis, handed to the filters through `POST /v1/fleet/poll`.

pub mod app;
pub mod config;
pub mod fleet;
pub mod fuzz;
pub mod gpu;
pub mod headroom;
pub mod metrics;
pub mod model_server;
pub mod nvml;
pub mod poller;
pub mod promtext;
pub mod server;
pub mod sim;
pub mod snapshot;
#[cfg(test)]
mod testkit;
pub use fairgate_wire as wire;
