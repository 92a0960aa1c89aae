//! fairgate's core: every request tied to a verified tenant, held to that tenant's
//! budgets, admitted in weighted-fair order and routed, with no Envoy in sight.
//!
//! Host-free: time and shared state come in through the `Clock` and `SharedStore`
//! traits, so everything here is tested natively with a hand-driven clock (and on
//! wasm32 under `wasm-bindgen-test`). The hosts are thin crates around it: the
//! proxy-wasm filter (`fairgate-filter`, `filter/`), which implements those traits
//! over host calls (`SharedStore` over proxy-wasm shared data with compare-and-swap:
//! two host calls per update, each a VM exit; `Clock` over `get_current_time`, one host
//! call, avoided on the request path by `Clock::recent_ms`).
//!
//! - `config`: the plugin JSON, parsed and validated with field paths.
//! - `jwt`, `token_cache`, `identity`: who is asking.
//! - `bucket`, `budget`, `store`: token buckets in shared data, updated with CAS.
//! - `fair_queue`: weighted-fair admission to a pool's concurrency slots, one
//!   shared-data value per pool.
//! - `headroom`: the GPU sidecar's snapshot, who polls it, and routing by headroom.
//! - `llm`, `usage`, `accounting`: LLM token accounting: request bodies read, tokens
//!   reserved, answers' `usage` read from JSON and SSE, reservations settled; `flow`:
//!   one accounted request from its headers to its end, as a host drives it.
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
pub mod flow;
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
