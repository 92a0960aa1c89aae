//! [`FleetStore`] in memory, on a [`Clock`] of the test's choosing: the same bucket
//! arithmetic as the Redis script ([`super::bucket`]), one lock for atomicity, and a
//! switch that makes every call fail, to drive the outage states. For tests, and for
//! one sidecar that is its own fleet.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fairgate_wire::fleet::{BudgetKind, PoolReport};

use super::bucket::{self, BucketState};
use super::clock::Clock;
use super::slots;
use super::store::{BucketOp, BucketTake, FleetStore, SlotClaim, SlotHolder, StoreError};

/// One Envoy's claim on a pool: until when it stands, what it holds, its report.
type Claim = (u64, u32, PoolReport);

#[derive(Default)]
struct Inner {
    buckets: HashMap<(String, BudgetKind), BucketState>,
    /// Per pool, per Envoy.
    slots: HashMap<String, BTreeMap<String, Claim>>,
    /// Envoy → when its heartbeat lapses.
    envoys: HashMap<String, u64>,
    epoch: Option<String>,
    failing: Option<StoreError>,
    /// How long each call takes (a slow store).
    delay: Duration,
}

/// Clones share the buckets: two managers on one `MemoryStore` are two sidecars on one
/// Redis.
#[derive(Clone)]
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            inner: Arc::default(),
        }
    }

    /// From now on every call fails with `error` (`None`: answers again).
    pub fn set_failing(&self, error: Option<StoreError>) {
        self.lock().failing = error;
    }

    /// Forgets every bucket, Envoy and the epoch: a Redis restarted without persistence.
    pub fn lose_data(&self) {
        let mut inner = self.lock();
        inner.buckets.clear();
        inner.slots.clear();
        inner.envoys.clear();
        inner.epoch = None;
    }

    /// From now on every call takes `delay` before it answers.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// What Envoys hold of a bucket, as the store counts it (`None`: never touched).
    pub fn held(&self, tenant: &str, kind: BudgetKind) -> Option<f64> {
        self.lock()
            .buckets
            .get(&(tenant.to_string(), kind))
            .map(|b| b.held)
    }

    /// The level of a bucket as last written (`None`: never touched).
    pub fn level(&self, tenant: &str, kind: BudgetKind) -> Option<f64> {
        self.lock()
            .buckets
            .get(&(tenant.to_string(), kind))
            .map(|b| b.level)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves whole bucket states behind: carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits the configured delay, then the lock, or the configured failure.
    async fn check(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let inner = self.lock();
        match &inner.failing {
            Some(error) => Err(error.clone()),
            None => Ok(inner),
        }
    }
}

impl FleetStore for MemoryStore {
    async fn settle(&self, tenant: &str, ops: &[BucketOp]) -> Result<Vec<BucketTake>, StoreError> {
        let now = self.clock.now_ms();
        let mut inner = self.check().await?;
        let mut takes = Vec::with_capacity(ops.len());
        for op in ops {
            let key = (tenant.to_string(), op.kind);
            let (state, take) = bucket::settle(inner.buckets.get(&key).cloned(), op, now);
            inner.buckets.insert(key, state);
            takes.push(take);
        }
        Ok(takes)
    }

    async fn heartbeat(&self, envoys: &[String], ttl: Duration) -> Result<u32, StoreError> {
        let now = self.clock.now_ms();
        let mut inner = self.check().await?;
        for envoy in envoys {
            inner
                .envoys
                .insert(envoy.clone(), now + ttl.as_millis() as u64);
        }
        inner.envoys.retain(|_, lapses| *lapses > now);
        Ok(inner.envoys.len() as u32)
    }

    async fn epoch(&self, candidate: &str) -> Result<String, StoreError> {
        let mut inner = self.check().await?;
        Ok(inner
            .epoch
            .get_or_insert_with(|| candidate.to_string())
            .clone())
    }

    async fn pool_holders(
        &self,
        pool: &str,
        silent: Duration,
    ) -> Result<BTreeMap<String, SlotHolder>, StoreError> {
        let now = self.clock.now_ms();
        let silent_ms = silent.as_millis() as u64;
        let mut inner = self.check().await?;
        let Some(claims) = inner.slots.get_mut(pool) else {
            return Ok(BTreeMap::new());
        };
        claims.retain(|_, (until, _, _)| until.saturating_add(silent_ms) > now);
        Ok(claims
            .iter()
            .map(|(envoy, (until, held, report))| {
                let holder = SlotHolder {
                    report: report.clone(),
                    held: *held,
                    silent: *until <= now,
                };
                (envoy.clone(), holder)
            })
            .collect())
    }

    async fn claim_slots(
        &self,
        pool: &str,
        envoy: &str,
        claim: &SlotClaim,
    ) -> Result<u32, StoreError> {
        let now = self.clock.now_ms();
        let mut inner = self.check().await?;
        let silent_ms = claim.silent.as_millis() as u64;
        let claims = inner.slots.entry(pool.to_string()).or_default();
        claims.retain(|_, (until, _, _)| until.saturating_add(silent_ms) > now);
        let others: u32 = claims
            .iter()
            .filter(|(e, _)| e.as_str() != envoy)
            .map(|(_, (until, held, _))| {
                if *until <= now {
                    (*held).max(claim.share)
                } else {
                    *held
                }
            })
            .fold(0, u32::saturating_add);
        let granted = slots::grant(claim, others);
        let until = now + claim.ttl.as_millis() as u64;
        let held = granted.max(claim.floor);
        claims.insert(envoy.to_string(), (until, held, claim.report.clone()));
        Ok(granted)
    }

    async fn leave(&self, envoys: &[String]) -> Result<(), StoreError> {
        let mut inner = self.check().await?;
        for envoy in envoys {
            inner.envoys.remove(envoy);
        }
        Ok(())
    }
}
