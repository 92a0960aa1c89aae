//! `fairgate-loadgen`: the load of fairgate's demo and benchmarks. Tenants from a
//! scenario file (`scenario`) send OpenAI-compatible requests, signed with their own
//! JWTs (`auth`), closed or open loop (`run`, `request`); every request is logged
//! (`record`, with the tokens from `usage`) and turned into figures per tenant and
//! fair shares (`report`), shown as tables (`table`) and compared across two runs,
//! fairness off and on (`compare`).

pub mod auth;
pub mod compare;
pub mod record;
pub mod report;
pub mod request;
pub mod run;
pub mod scenario;
pub mod table;
pub mod usage;
