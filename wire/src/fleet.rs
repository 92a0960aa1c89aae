//! The fleet poll (SPEC section 9): `POST /v1/fleet/poll`, what a filter's elected
//! poller sends its sidecar every `poll_ms` in fleet mode, and what it gets back.
//!
//! One request per poll period per Envoy carries everything both ways, so fleet mode
//! adds no host call to the request path and none to the poll: the answer is the
//! `GET /v1/headroom` object with one more field, `fleet`, so the filter parses one
//! body and writes one snapshot, and the pool slots of fleet mode part 2 arrive in the
//! same place as the capacity they divide.
//!
//! ```json
//! {"envoy": "gw-a", "boot": "4f1c9a", "outage": "safe", "poll_ms": 500,
//!  "tenants": {"acme": {
//!    "limits": {"requests_per_second": 20, "request_burst": 40,
//!               "tokens_per_minute": 120000, "token_burst": 30000},
//!    "demand": true,
//!    "requests": {"spent": 131, "expired": 0, "applied": 12},
//!    "tokens": {"spent": 80211, "debt": 312, "expired": 0, "applied": 9}}},
//!  "pools": {"shared": {"capacity": 14, "in_flight": 4, "limit": 4,
//!    "tenants": {"acme": {"weight": 2, "priority": 0, "queued": 6, "in_flight": 4}}}}}
//! ```
//!
//! ```json
//! {"version": 7, "generated_at_ms": 1764400000000, "source": "sim", "clusters": {},
//!  "fleet": {"state": "exact", "replicas": 2, "sidecar": "gw-a-sidecar",
//!    "tenants": {"acme": {
//!      "requests": {"grants": [{"seq": 13, "amount": 10}], "expires_in_ms": 1000},
//!      "tokens": {"grants": [], "expires_in_ms": 1000}}},
//!    "pools": {"shared": {"slots": 6, "expires_in_ms": 600, "weights": {"acme": 0.5}}}}}
//! ```
//!
//! Exactly once, whatever is lost or repeated:
//! - **Grants** are numbered per Envoy, tenant and kind (`seq`, from 1, +1 per grant).
//!   The filter adds a grant to its allowance only when its `seq` is above the
//!   `applied` it keeps beside that allowance (one compare-and-swap of both), then
//!   reports `applied` in its next poll. The sidecar repeats every grant above the
//!   last `applied` it was told in each answer, so a lost answer's grants arrive
//!   with the next one, and a repeated answer's are skipped.
//! - **Consumption** is reported as totals since the filter started (`boot`), not as
//!   deltas: the sidecar differences them, so a poll that is lost, or whose answer is
//!   lost and which is then sent again with the same totals, neither loses nor
//!   double-counts anything. A new `boot` (the Envoy restarted) starts the counting
//!   anew.
//!
//! Pools: every poll reports each pool's demand (`pools`); the answer leases the
//! Envoy its slots of the fleet's capacity until `expires_in_ms`, with the part of
//! each shared tenant's weight that counts at this Envoy. No sequence numbers: each
//! answer states the whole lease, and the sidecar counts what the Envoy may still
//! run under (its `limit`, its `in_flight`) against the others until it reports less.
//!
//! Leases: a kind's allowance at the filter expires `expires_in_ms` after the answer
//! that carried it arrives (each answer sets it anew; `0` means expired now). The
//! filter admits from its allowance while it is live; what is left at expiry is
//! dropped and added to `expired`, which the sidecar hands back to the fleet. Once a
//! lease has expired the filter follows `state`: `exact`, keep to the allowance (a
//! new grant is on its way); `safe`, enforce `1/replicas` of the tenant's limits
//! locally; `open`, enforce nothing; `closed`, refuse budgeted tenants with 503
//! `fleet_unavailable`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Headroom;

/// The path of the fleet poll.
pub const FLEET_POLL_PATH: &str = "/v1/fleet/poll";

/// What the filter does once its leases have expired and the fleet's budget cannot
/// be reached (the plugin config's `fleet.outage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageMode {
    /// Each Envoy enforces `1/N` of every budget (N: the Envoys last seen live).
    #[default]
    Safe,
    /// Budgets are not enforced.
    Open,
    /// Budgeted tenants are refused (503 `fleet_unavailable`).
    Closed,
}

/// The state of the fleet's budgets as a filter must apply them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetState {
    /// The fleet's buckets are reachable: admit from the grants.
    Exact,
    /// They are not: once the leases expire, `1/replicas` of each budget.
    Safe,
    /// They are not: once the leases expire, no budget.
    Open,
    /// They are not: once the leases expire, refuse budgeted tenants.
    Closed,
}

impl FleetState {
    /// The state a filter in `mode` is in while the fleet's buckets are unreachable.
    pub fn outage(mode: OutageMode) -> Self {
        match mode {
            OutageMode::Safe => FleetState::Safe,
            OutageMode::Open => FleetState::Open,
            OutageMode::Closed => FleetState::Closed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FleetState::Exact => "exact",
            FleetState::Safe => "safe",
            FleetState::Open => "open",
            FleetState::Closed => "closed",
        }
    }
}

/// The two budgets of a tenant (SPEC section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetKind {
    Requests,
    Tokens,
}

impl BudgetKind {
    pub const ALL: [BudgetKind; 2] = [BudgetKind::Requests, BudgetKind::Tokens];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetKind::Requests => "requests",
            BudgetKind::Tokens => "tokens",
        }
    }
}

/// `POST /v1/fleet/poll`: the body the filter sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPoll {
    /// The Envoy: its `node.id` where set, else an id drawn at start. The unit of the
    /// fleet (N counts these).
    pub envoy: String,
    /// Drawn when the filter starts: a new one resets this Envoy's counters and
    /// sequence numbers at the sidecar.
    pub boot: String,
    #[serde(default)]
    pub outage: OutageMode,
    /// The filter's poll period; leases are sized to it.
    pub poll_ms: u64,
    /// Every budgeted tenant the filter has seen (configured or from tokens).
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantReport>,
    /// Every pool of the filter (`pool` configured): its demand for the fleet's slots.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, PoolReport>,
}

/// One pool as one Envoy sees it: what it holds and who waits for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    /// The fleet's total: the sidecar's live capacity capped by `pool.max_concurrency`
    /// (the cap alone without one).
    pub capacity: u32,
    /// Requests of the pool in flight at this Envoy.
    #[serde(default)]
    pub in_flight: u32,
    /// The slots this Envoy runs under now (its last lease, or its outage share).
    #[serde(default)]
    pub limit: u32,
    /// Slots its pool keeps free for tenants' `min_concurrency` (reservations not in
    /// use): leased before any backlog is served.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub reserved: u32,
    /// The configured `min_concurrency` of the pool's tenants: the fleet-wide
    /// reservations the sidecar splits among the Envoys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reservations: BTreeMap<String, u32>,
    /// The pool's tenants with requests queued or in flight here.
    #[serde(default)]
    pub tenants: BTreeMap<String, PoolTenant>,
}

/// One tenant's demand for a pool at one Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolTenant {
    /// Its configured weight (a share of the slots, fleet-wide).
    pub weight: f64,
    /// Its priority band (higher is served first; negative: sheddable).
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub queued: u32,
    #[serde(default)]
    pub in_flight: u32,
}

impl PoolTenant {
    /// Requests of the tenant here that want a slot: queued or holding one.
    pub fn backlog(&self) -> u32 {
        self.queued.saturating_add(self.in_flight)
    }
}

/// One pool's slots leased to one Envoy, and how its tenants weigh here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotLease {
    /// Requests of the pool this Envoy may have in flight.
    pub slots: u32,
    /// From the answer's arrival; 0: the lease has expired (follow `state`).
    pub expires_in_ms: u64,
    /// Per tenant queued here and at other Envoys too: the part of its weight that
    /// counts here (its backlog here over its backlog fleet-wide), so that the local
    /// fair order and the fleet's slots together follow the configured weights. A
    /// tenant not listed counts its whole weight.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, f64>,
    /// This Envoy's part of each tenant's `min_concurrency` (where it has one): the
    /// slots its pool keeps for the tenant. The parts sum to the configured value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reserved: BTreeMap<String, u32>,
    /// Slots of the pool, fleet-wide, that no tenant of a band ≥ 0 wants (neither its
    /// backlog nor a reservation): while there are some, the pool is not saturated,
    /// and a sheddable request that finds no slot at this Envoy waits for the next
    /// leases to bring one here instead of being refused.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub spare: u32,
}

/// The slots of a pool an Envoy runs under while it cannot lease any (SPEC 9):
/// `capacity ÷ N`, at least one. The filter runs under it; the sidecars leave it to
/// an Envoy that may be cut off from its own.
pub fn outage_share(capacity: u32, replicas: u32) -> u32 {
    (capacity / replicas.max(1)).max(1).min(capacity)
}

/// One tenant, as one Envoy sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantReport {
    pub limits: TenantLimits,
    /// Whether the tenant still offers load here (a request was admitted from the
    /// allowance, or refused for want of it, since the last poll). Without demand the
    /// sidecar lets the lease run out instead of topping it up.
    #[serde(default)]
    pub demand: bool,
    #[serde(default)]
    pub requests: Consumption,
    #[serde(default)]
    pub tokens: Consumption,
}

impl TenantReport {
    pub fn consumption(&self, kind: BudgetKind) -> &Consumption {
        match kind {
            BudgetKind::Requests => &self.requests,
            BudgetKind::Tokens => &self.tokens,
        }
    }
}

/// A tenant's limits, as in the plugin config (`tenants.<id>`); an absent limit is no
/// limit, and that kind gets no lease.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_burst: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_burst: Option<f64>,
}

impl TenantLimits {
    /// The bucket of `kind`, refilled per second, where it is limited. A missing
    /// burst is one window of rate (a second of requests, a minute of tokens; at
    /// least 1), as the filter's own buckets take it.
    pub fn bucket(&self, kind: BudgetKind) -> Option<BucketLimit> {
        let (per_window, window_s, burst) = match kind {
            BudgetKind::Requests => (self.requests_per_second?, 1.0, self.request_burst),
            BudgetKind::Tokens => (self.tokens_per_minute?, 60.0, self.token_burst),
        };
        let burst = burst.unwrap_or(per_window.max(1.0));
        let rate = per_window / window_s;
        (rate.is_finite() && rate >= 0.0 && burst.is_finite() && burst >= 1.0)
            .then_some(BucketLimit { rate, burst })
    }
}

/// A token bucket: `rate` per second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketLimit {
    pub rate: f64,
    pub burst: f64,
}

/// One kind of one tenant at one Envoy: totals since `boot`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumption {
    /// Admitted from grants: requests; tokens settled (real usage, up to what the
    /// allowance covered).
    #[serde(default)]
    pub spent: u64,
    /// Tokens used beyond the allowance (answers larger than their reservation once
    /// the allowance ran dry): charged to the fleet's bucket by the next take.
    #[serde(default)]
    pub debt: u64,
    /// Allowance dropped unspent when its lease expired: handed back to the fleet.
    #[serde(default)]
    pub expired: u64,
    /// The highest grant `seq` added to the allowance (0: none yet).
    #[serde(default)]
    pub applied: u64,
    /// Not a total: the largest amount one request needed since the last poll and
    /// found missing from the allowance (0: none). The next grant covers it, so a
    /// request with a large reservation is not starved by small leases.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub needed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// The answer to a fleet poll: the headroom snapshot of `GET /v1/headroom`, fields
/// unchanged, with `fleet` added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetAnswer {
    #[serde(flatten)]
    pub headroom: Headroom,
    pub fleet: FleetGrants,
}

/// The fleet part of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetGrants {
    pub state: FleetState,
    /// Envoys live in the fleet (at least 1: the one asking); what `safe` divides by.
    pub replicas: u32,
    /// The sidecar's name (`[fleet] replica`), for logs.
    pub sidecar: String,
    /// Per tenant of the poll, its leases.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantLeases>,
    /// Per pool of the poll, its slots.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, SlotLease>,
}

/// A tenant's leases; a kind without a limit has none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantLeases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Lease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Lease>,
}

impl TenantLeases {
    pub fn get(&self, kind: BudgetKind) -> Option<&Lease> {
        match kind {
            BudgetKind::Requests => self.requests.as_ref(),
            BudgetKind::Tokens => self.tokens.as_ref(),
        }
    }

    pub fn set(&mut self, kind: BudgetKind, lease: Lease) {
        match kind {
            BudgetKind::Requests => self.requests = Some(lease),
            BudgetKind::Tokens => self.tokens = Some(lease),
        }
    }
}

/// One kind's lease: the grants not yet acknowledged, and when the allowance expires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// In `seq` order; apply each whose `seq` is above `applied`.
    pub grants: Vec<Grant>,
    /// From the answer's arrival; 0: the allowance has expired.
    pub expires_in_ms: u64,
}

/// Requests or tokens debited from the fleet's bucket for this Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub seq: u64,
    pub amount: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const POLL: &str = r#"{"envoy": "gw-a", "boot": "4f1c9a", "outage": "safe", "poll_ms": 500,
     "tenants": {"acme": {
       "limits": {"requests_per_second": 20, "request_burst": 40,
                  "tokens_per_minute": 120000, "token_burst": 30000},
       "demand": true,
       "requests": {"spent": 131, "expired": 0, "applied": 12},
       "tokens": {"spent": 80211, "debt": 312, "expired": 0, "applied": 9}}}}"#;

    const ANSWER: &str = r#"{"version": 7, "generated_at_ms": 1764400000000, "source": "sim", "clusters": {},
     "fleet": {"state": "exact", "replicas": 2, "sidecar": "gw-a-sidecar",
       "tenants": {"acme": {
         "requests": {"grants": [{"seq": 13, "amount": 10}], "expires_in_ms": 1000},
         "tokens": {"grants": [], "expires_in_ms": 1000}}}}}"#;

    #[test]
    fn the_documented_poll_parses() {
        let poll: FleetPoll = serde_json::from_str(POLL).unwrap();
        assert_eq!(poll.outage, OutageMode::Safe);
        let acme = &poll.tenants["acme"];
        assert_eq!(acme.tokens.debt, 312);
        assert_eq!(acme.consumption(BudgetKind::Requests).applied, 12);
        assert_eq!(
            acme.limits.bucket(BudgetKind::Tokens),
            Some(BucketLimit {
                rate: 2000.0,
                burst: 30000.0
            })
        );
        let minimal: FleetPoll =
            serde_json::from_str(r#"{"envoy": "e", "boot": "b", "poll_ms": 500}"#).unwrap();
        assert_eq!(minimal.outage, OutageMode::Safe);
        assert!(minimal.tenants.is_empty());
    }

    #[test]
    fn the_answer_is_the_headroom_snapshot_with_fleet_added() {
        let answer: FleetAnswer = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(answer.fleet.state, FleetState::Exact);
        let lease = answer.fleet.tenants["acme"]
            .get(BudgetKind::Requests)
            .unwrap();
        assert_eq!(
            lease.grants,
            vec![Grant {
                seq: 13,
                amount: 10
            }]
        );
        // A reader of GET /v1/headroom reads the same body.
        let headroom: Headroom = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(headroom, answer.headroom);
        let text = serde_json::to_string(&answer).unwrap();
        assert!(text.starts_with(r#"{"version":7,"generated_at_ms":1764400000000,"source":"sim","clusters":{},"fleet":{"state":"exact""#), "{text}");
    }

    #[test]
    fn a_kind_without_a_rate_has_no_bucket_and_a_missing_burst_is_one_second() {
        let limits = TenantLimits {
            requests_per_second: Some(5.0),
            ..TenantLimits::default()
        };
        assert_eq!(
            limits.bucket(BudgetKind::Requests),
            Some(BucketLimit {
                rate: 5.0,
                burst: 5.0
            })
        );
        assert_eq!(limits.bucket(BudgetKind::Tokens), None);
        let bad = TenantLimits {
            requests_per_second: Some(f64::NAN),
            ..TenantLimits::default()
        };
        assert_eq!(bad.bucket(BudgetKind::Requests), None);
    }
}
