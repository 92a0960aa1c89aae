//! The one seam between the leasing logic and the place the fleet's buckets live:
//! [`FleetStore`]. [`super::redis::RedisStore`] is the real one; the in-memory
//! [`super::memory::MemoryStore`] runs the same bucket arithmetic on a hand-driven
//! clock, so [`super::manager`] is tested without Redis.
//!
//! Costs: each operation is one round trip to Redis (one script call) whatever the
//! number of buckets it touches; a poll makes one `settle` per tenant that needs one,
//! concurrently, and the heartbeat one call per heartbeat period.

use std::future::Future;
use std::time::Duration;

use std::collections::BTreeMap;

use fairgate_wire::fleet::{BucketLimit, BudgetKind, PoolReport};

/// What to do to one bucket of a tenant, in this order: refill it on the store's
/// clock, add back `give_back` (grants returned unspent, capped at the burst), charge
/// `debt` (the level may fall below zero; the refill pays it off), then take up to
/// `want` whole units of what is there: all of it while the bucket has enough for
/// every Envoy asking, else the share of the level that `want` is of what all of them
/// asked for within `fresh_ms` (where that is under one unit, one unit to the Envoy
/// that has waited longest), so that Envoys asking at different moments of a poll
/// period share a contended budget in proportion to their demand instead of the
/// earliest taking it all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketOp {
    pub kind: BudgetKind,
    pub limit: BucketLimit,
    pub want: u64,
    pub debt: u64,
    pub give_back: u64,
    /// Spent from grants since the last settle: no longer held by any Envoy.
    pub spent: u64,
    /// Who asks (a hash of the Envoy's name; 0: nobody, a hand-back).
    pub asker: u64,
    /// How long another Envoy's unmet ask counts (about two of its poll periods).
    pub fresh_ms: u64,
}

/// What a bucket gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketTake {
    /// Debited from the bucket: the grant.
    pub granted: u64,
    /// The level left (may be negative while debt is paid off).
    pub level: f64,
}

/// One Envoy's place in a pool's share-out, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotHolder {
    /// Its last report of the pool.
    pub report: PoolReport,
    /// The slots it may have in flight: its grant, or more while it still runs under
    /// a larger one or has more in flight.
    pub held: u32,
    /// Its claim lapsed (its Envoy stopped polling) less than the silent period ago:
    /// the Envoy may run under its outage share, cut off from its sidecar.
    pub silent: bool,
}

/// One Envoy's claim on a pool's slots.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotClaim {
    /// Its report of the pool, kept for the others' share-outs.
    pub report: PoolReport,
    /// The fleet's total.
    pub capacity: u32,
    /// What the share-out says it should hold.
    pub target: u32,
    /// What it holds whatever it is granted: the slots it runs under until this
    /// claim's answer reaches it, or its requests in flight where more.
    pub floor: u32,
    /// Slots taken as held by live Envoys with no report of the pool yet (after an
    /// outage, each may run under its outage share).
    pub presumed: u32,
    /// How long the claim stands without another.
    pub ttl: Duration,
    /// How long a lapsed claim still counts, as held at the larger of its slots and
    /// `share`.
    pub silent: Duration,
    /// The outage share an Envoy cut off from its sidecar runs under.
    pub share: u32,
}

/// Why the store could not answer. Every variant is an outage for the fleet.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("unexpected answer: {0}")]
    Garbage(String),
}

/// Where the fleet's buckets and its list of live Envoys are kept.
pub trait FleetStore: Send + Sync + 'static {
    /// Applies `ops` to `tenant`'s buckets in one atomic step (all of them or none);
    /// one result per op, in order.
    fn settle(
        &self,
        tenant: &str,
        ops: &[BucketOp],
    ) -> impl Future<Output = Result<Vec<BucketTake>, StoreError>> + Send;

    /// Marks `envoys` live for `ttl` from now (the store's clock), forgets those whose
    /// heartbeat has lapsed, and answers how many are live fleet-wide.
    fn heartbeat(
        &self,
        envoys: &[String],
        ttl: Duration,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// The store's epoch: `candidate` if it has none yet (it is new, or lost its data),
    /// else the one it has. A change tells a sidecar that what it handed out before was
    /// forgotten by the store.
    fn epoch(&self, candidate: &str) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The Envoys with a claim on `pool`'s slots (on the store's clock), each with its
    /// last report and what it holds: live claims, and those lapsed less than `silent`
    /// ago (marked); older ones are forgotten.
    fn pool_holders(
        &self,
        pool: &str,
        silent: Duration,
    ) -> impl Future<Output = Result<BTreeMap<String, SlotHolder>, StoreError>> + Send;

    /// `envoy`'s claim on `pool`'s slots, in one atomic step: it is granted its target
    /// up to the capacity less what every other claim holds (a silent one: at least
    /// `claim.share`) and `presumed`, holds
    /// the larger of that and its floor from now on, and its report is kept. Returns
    /// the grant.
    fn claim_slots(
        &self,
        pool: &str,
        envoy: &str,
        claim: &SlotClaim,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Forgets `envoys` at once (they stopped), so that N drops without waiting for
    /// their heartbeats to lapse.
    fn leave(&self, envoys: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
}
