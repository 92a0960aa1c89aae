//! fairgate's proxy-wasm filter: every request tied to a verified tenant and held to
//! that tenant's budgets, enforced inside Envoy.
//!
//! The logic modules are host-free and tested natively (and on wasm32 under
//! `wasm-bindgen-test`); `host` is the thin proxy-wasm glue, built only for WASI.
//!
//! - `config`: the plugin JSON, parsed and validated with field paths.
//! - `jwt`, `token_cache`, `identity`: who is asking.
//! - `bucket`, `budget`, `store`: token buckets in shared data, updated with CAS.
//! - `fair_queue`: weighted-fair admission to a pool's concurrency slots, one
//!   shared-data value per pool.
//! - `headroom`: the GPU sidecar's snapshot, who polls it, and routing by headroom.
//! - `llm`, `usage`, `accounting`: LLM token accounting: request bodies read, tokens
//!   reserved, answers' `usage` read from JSON and SSE, reservations settled.
//! - `hold`: whether Envoy holds a request's headers while its body is read (so that
//!   nothing leaves for the upstream before the request is admitted).
//! - `pipeline`: the request-header decision, `response`: local replies,
//!   `metrics`: metric names and their stats tags, `clock`: time.

pub mod accounting;
pub mod bucket;
pub mod budget;
pub mod clock;
pub mod config;
pub mod fair_queue;
pub mod headroom;
pub mod hold;
pub mod identity;
pub mod jwt;
pub mod llm;
pub mod metrics;
pub mod pipeline;
pub mod response;
pub mod store;
pub mod token_cache;
pub mod usage;

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(target_os = "wasi")]
mod host;
