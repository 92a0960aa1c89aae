//! The fleet's series, under `fairgate_fleet_` in the sidecar's `/metrics`.
//!
//! Per tenant and kind (`requests`, `tokens`): `granted_total` (debited from the
//! fleet's bucket for this sidecar's Envoys), `returned_total` (handed back unspent),
//! `expired_unspent_total` (left in an allowance when its lease expired, as the
//! filters report it), `debt_total` (tokens used beyond the allowance, charged to the
//! bucket). Per sidecar: `redis_request_duration_seconds` (one round trip),
//! `redis_errors_total{error}` (`unreachable`, `timeout`, `garbage`), `redis_up`,
//! `replicas` (Envoys live fleet-wide), `envoys{state}` (this sidecar's Envoys by the
//! state their last answer carried) and `state_changes_total{state}`. Per pool:
//! `slots{pool, envoy}` (leased to each of this sidecar's Envoys), `pool_in_flight{pool}`
//! (requests in flight fleet-wide, as the last claims reported them) and
//! `rebalances_total{pool}` (an Envoy's lease changed size).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use fairgate_wire::fleet::{BudgetKind, FleetState};

use super::store::StoreError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    tenant: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlotLabels {
    pool: String,
    envoy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

pub struct FleetMetrics {
    granted: Family<BudgetLabels, Counter>,
    returned: Family<BudgetLabels, Counter>,
    expired: Family<BudgetLabels, Counter>,
    debt: Family<BudgetLabels, Counter>,
    redis_duration: Histogram,
    redis_errors: Family<ErrorLabels, Counter>,
    redis_up: Gauge,
    replicas: Gauge,
    envoys: Family<StateLabels, Gauge>,
    state_changes: Family<StateLabels, Counter>,
    slots: Family<SlotLabels, Gauge>,
    pool_in_flight: Family<PoolLabels, Gauge>,
    rebalances: Family<PoolLabels, Counter>,
}

impl FleetMetrics {
    /// Registers every series in `registry` (the `fleet` sub-registry).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            granted: Family::default(),
            returned: Family::default(),
            expired: Family::default(),
            debt: Family::default(),
            // 0.25 ms .. about 1 s.
            redis_duration: Histogram::new(exponential_buckets(0.00025, 2.0, 13)),
            redis_errors: Family::default(),
            redis_up: Gauge::default(),
            replicas: Gauge::default(),
            envoys: Family::default(),
            state_changes: Family::default(),
            slots: Family::default(),
            pool_in_flight: Family::default(),
            rebalances: Family::default(),
        };
        registry.register(
            "granted",
            "Requests or tokens debited from the fleet's bucket for this sidecar's Envoys",
            metrics.granted.clone(),
        );
        registry.register(
            "returned",
            "Requests or tokens handed back to the fleet's bucket unspent",
            metrics.returned.clone(),
        );
        registry.register(
            "expired_unspent",
            "Allowance left unspent when its lease expired at the filter",
            metrics.expired.clone(),
        );
        registry.register(
            "debt",
            "Tokens used beyond the allowance, charged to the fleet's bucket",
            metrics.debt.clone(),
        );
        registry.register_with_unit(
            "redis_request_duration",
            "Round trip of one call to the fleet's store",
            Unit::Seconds,
            metrics.redis_duration.clone(),
        );
        registry.register(
            "redis_errors",
            "Failed calls to the fleet's store, by kind of failure",
            metrics.redis_errors.clone(),
        );
        registry.register(
            "redis_up",
            "1 while the fleet's store answers",
            metrics.redis_up.clone(),
        );
        registry.register(
            "replicas",
            "Envoys live in the fleet, last seen",
            metrics.replicas.clone(),
        );
        registry.register(
            "envoys",
            "This sidecar's Envoys by the fleet state of their last answer",
            metrics.envoys.clone(),
        );
        registry.register(
            "state_changes",
            "Changes of an Envoy's fleet state, by the state entered",
            metrics.state_changes.clone(),
        );
        registry.register(
            "slots",
            "Slots of a pool leased to one of this sidecar's Envoys",
            metrics.slots.clone(),
        );
        registry.register(
            "pool_in_flight",
            "Requests of a pool in flight fleet-wide, as the Envoys last reported them",
            metrics.pool_in_flight.clone(),
        );
        registry.register(
            "rebalances",
            "Changes of the size of an Envoy's lease of a pool's slots",
            metrics.rebalances.clone(),
        );
        metrics
    }

    /// `envoy` holds `slots` of `pool` now (`None`: no longer any); `changed`: a rebalance.
    pub fn slots(&self, pool: &str, envoy: &str, slots: Option<u32>, changed: bool) {
        let labels = SlotLabels {
            pool: pool.to_string(),
            envoy: envoy.to_string(),
        };
        match slots {
            Some(n) => {
                self.slots.get_or_create(&labels).set(i64::from(n));
            }
            None => {
                self.slots.remove(&labels);
            }
        }
        if changed {
            let pool = PoolLabels {
                pool: pool.to_string(),
            };
            self.rebalances.get_or_create(&pool).inc();
        }
    }

    pub fn pool_in_flight(&self, pool: &str, in_flight: u64) {
        let labels = PoolLabels {
            pool: pool.to_string(),
        };
        self.pool_in_flight
            .get_or_create(&labels)
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    }

    fn labels(tenant: &str, kind: BudgetKind) -> BudgetLabels {
        BudgetLabels {
            tenant: tenant.to_string(),
            kind: kind.as_str(),
        }
    }

    pub fn granted(&self, tenant: &str, kind: BudgetKind, amount: u64) {
        if amount > 0 {
            self.granted
                .get_or_create(&Self::labels(tenant, kind))
                .inc_by(amount);
        }
    }

    pub fn returned(&self, tenant: &str, kind: BudgetKind, amount: u64) {
        if amount > 0 {
            self.returned
                .get_or_create(&Self::labels(tenant, kind))
                .inc_by(amount);
        }
    }

    pub fn expired(&self, tenant: &str, kind: BudgetKind, amount: u64) {
        if amount > 0 {
            self.expired
                .get_or_create(&Self::labels(tenant, kind))
                .inc_by(amount);
        }
    }

    pub fn debt(&self, tenant: &str, kind: BudgetKind, amount: u64) {
        if amount > 0 {
            self.debt
                .get_or_create(&Self::labels(tenant, kind))
                .inc_by(amount);
        }
    }

    pub fn store_call(&self, seconds: f64, result: Result<(), &StoreError>) {
        self.redis_duration.observe(seconds);
        if let Err(error) = result {
            let error = match error {
                StoreError::Unreachable(_) => "unreachable",
                StoreError::Timeout(_) => "timeout",
                StoreError::Garbage(_) => "garbage",
            };
            self.redis_errors
                .get_or_create(&ErrorLabels { error })
                .inc();
        }
    }

    pub fn store_up(&self, up: bool) {
        self.redis_up.set(i64::from(up));
    }

    pub fn replicas(&self, n: u32) {
        self.replicas.set(i64::from(n));
    }

    /// An Envoy went from `from` (`None`: first poll) to `to`.
    pub fn state_change(&self, from: Option<FleetState>, to: FleetState) {
        if let Some(from) = from {
            self.envoys
                .get_or_create(&StateLabels {
                    state: from.as_str(),
                })
                .dec();
        }
        let to = StateLabels { state: to.as_str() };
        self.envoys.get_or_create(&to).inc();
        self.state_changes.get_or_create(&to).inc();
    }

    /// An Envoy in `state` was forgotten.
    pub fn envoy_gone(&self, state: Option<FleetState>) {
        if let Some(state) = state {
            self.envoys
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .dec();
        }
    }
}
