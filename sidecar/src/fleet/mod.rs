//! Fleet mode (SPEC section 9): one budget per tenant, and one capacity per pool, for
//! every Envoy whose sidecars share one Redis, with no network call on the request
//! path. The sidecar leases shares of each tenant's fleet-wide buckets and of each
//! pool's slots and hands them to its Envoys through their poll (`POST /v1/fleet/poll`, [`fairgate_wire::fleet`]); the filters spend
//! them locally.
//!
//! - [`store`]: the [`store::FleetStore`] trait, the one seam to where the buckets
//!   live; [`redis`] is the real store, [`memory`] the in-memory one for tests;
//! - [`bucket`]: a fleet bucket's arithmetic (the Redis script runs the same);
//! - [`lease`]: one Envoy's lease of one bucket: its books and its sizing;
//! - [`slots`]: a pool's slots shared out among the Envoys (the fleet's capacity);
//! - [`manager`]: polls, heartbeats, returns and the outage states, over a store;
//! - [`config`]: the `[fleet]` section of the TOML;
//! - [`clock`]: time as a trait, so tests drive it; [`metrics`]: `fairgate_fleet_*`.

pub mod bucket;
pub mod clock;
pub mod config;
pub mod lease;
pub mod manager;
pub mod memory;
pub mod metrics;
pub mod redis;
#[cfg(test)]
mod redis_tests;
pub mod slots;
#[cfg(test)]
mod slots_tests;
pub mod store;
#[cfg(test)]
mod testkit;

pub use manager::{FleetManager, FleetSettings};
