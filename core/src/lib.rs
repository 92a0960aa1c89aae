//! fairgate's core: every request tied to a verified tenant, held to that tenant's
//! budgets, admitted in weighted-fair order and routed, with no Envoy in sight.
//!
//! Host-free: time and shared state come in through the `Clock` and `SharedStore`
//! traits, so everything here is tested natively with a hand-driven clock (and on
//! wasm32 under `wasm-bindgen-test`). The hosts are thin crates around it: the
//! proxy-wasm filter (`fairgate-filter`, `filter/`) and the native Envoy dynamic
//! module (`fairgate-module`, `module/`); `host` lists the traits they implement and
//! what each costs on each.
//!
//! - `config`: the plugin JSON, parsed and validated with field paths.
//! - `jwt`, `jwks`, `token_cache`, `identity`: who is asking; `policy_claim`: the
//!   policy an unlisted tenant's token carries, held within the configured bounds.
//! - `bucket`, `budget`, `store`: token buckets in shared data, updated with CAS.
//! - `fair_queue`: weighted-fair admission to a pool's concurrency slots, one
//!   shared-data value per pool; `admission`: one worker's requests in the pools,
//!   from admission or queueing to their end.
//! - `host`: the traits a host implements, and what each costs on each host.
//! - `headroom`: the GPU sidecar's snapshot, who polls it, and routing by headroom.
//! - `llm`, `usage`, `accounting`: LLM token accounting: request bodies read, tokens
//!   reserved, answers' `usage` read from JSON and SSE, reservations settled; `flow`:
//!   one accounted request from its headers to its end, as a host drives it.
//! - `hold`: whether Envoy holds a request's headers while its body is read (so that
//!   nothing leaves for the upstream before the request is admitted).
//! - `pipeline`: the request-header decision, `response`: local replies,
//!   `metrics`: metric names and their stats tags, `clock`: time.
//! - `fuzz`: the fuzz targets' bodies (`fuzz/`), replayed on stable by
//!   `tests/fuzz_corpus.rs`.

pub mod accounting;
pub mod admission;
pub mod bucket;
pub mod budget;
pub mod clock;
pub mod config;
pub mod fair_queue;
pub mod fleet;
pub mod flow;
pub mod fuzz;
pub mod headroom;
pub mod hold;
pub mod host;
pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod llm;
pub mod metrics;
pub mod pipeline;
pub mod policy_claim;
pub mod response;
pub mod store;
pub mod token_cache;
pub mod usage;

#[cfg(test)]
pub(crate) mod testkit;
