//! fairgate's proxy-wasm filter: `fairgate-core` in Envoy (and Istio) as a wasm module.
//!
//! Only glue lives here (`host`, built for WASI): the core's `Clock` and
//! `SharedStore` over host calls, the plugin configuration loaded in `on_configure`,
//! each decision of the core turned into header edits, pauses and resumes, local
//! replies and metrics. Everything else, and its tests, is in `core/`.

#[cfg(target_os = "wasi")]
mod host;
