//! The fleet's leasing for the Envoys this sidecar serves: answers their polls
//! ([`FleetManager::poll`]) and keeps the fleet's books in the background
//! ([`FleetManager::tick`], every heartbeat period), through one [`FleetStore`].
//!
//! A poll takes in each lease's report, sizes a top-up ([`super::lease`]), settles
//! every tenant that needs it in one store call each (concurrently, each bounded by
//! `timeout`), and answers the unacknowledged grants with each lease's expiry. For
//! each pool it reads the live claims, shares the slots out ([`super::slots`]) and
//! claims this Envoy's part (two store calls per pool). A tick
//! heartbeats the live Envoys (N, fleet-wide, comes back), forgets an Envoy that
//! stopped polling once its leases have expired and hands back what it held, and
//! retries what could not be handed back before.
//!
//! Outage: any failed or slow store call marks the store down (one log line, a
//! metric). While it is down polls make no store call and renew no lease: each
//! Envoy spends what it holds until its lease expires, then follows its own outage
//! mode, which the answer's `state` names (`safe`, `open`, `closed`) with the N last
//! seen. The next tick's heartbeat finds the store back (log line, metric), and the
//! next poll takes fresh grants, `exact` again: within two polls of recovery.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fairgate_wire::fleet::{
    outage_share, BucketLimit, BudgetKind, FleetGrants, FleetPoll, FleetState, OutageMode,
    PoolReport, SlotLease, TenantLeases,
};
use futures_util::future::{join, join_all};
use tokio::sync::OwnedMutexGuard;

use super::clock::Clock;
use super::lease::LeaseBook;
use super::metrics::FleetMetrics;
use super::slots;
use super::store::{BucketOp, FleetStore, SlotClaim, SlotHolder, StoreError};
use crate::poller::log;

/// A lease lives this many of its Envoy's poll periods past its last renewal: one
/// lost answer does not end it.
const LEASE_POLLS: u64 = 3;
/// The least poll period taken from a filter.
const MIN_POLL_MS: u64 = 10;

#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// This sidecar's name in logs and metrics (`[fleet] replica`).
    pub sidecar: String,
    /// A store call slower than this is a failure.
    pub timeout: Duration,
    /// An Envoy not heard from for this long is gone (its heartbeat lapses too).
    pub envoy_ttl: Duration,
    /// How long a lapsed pool claim still counts as held (`[fleet] silent_claim_ms`).
    pub silent_claim: Duration,
}

/// What goes back to a bucket outside any poll: an abandoned lease's holdings.
#[derive(Debug, Clone, PartialEq)]
struct Return {
    tenant: String,
    kind: BudgetKind,
    limit: BucketLimit,
    amount: u64,
    debt: u64,
    spent: u64,
}

#[derive(Debug)]
struct Health {
    store_up: bool,
    /// Envoys live fleet-wide, last seen (at least 1).
    replicas: u32,
    /// Shutting down: no new grants, no renewals.
    draining: bool,
    /// Not yet handed back (the store failed); retried every tick.
    returns: Vec<Return>,
    /// The store's epoch as last seen; a new one means it lost its data.
    epoch: Option<String>,
    /// Until then (ms), N does not fall below what it was before the store came back
    /// or lost its data: until every live sidecar has heartbeated again, a missing
    /// Envoy may still be running under its outage share of a pool.
    recovering_until: u64,
}

/// One Envoy's books.
#[derive(Debug)]
struct EnvoyBook {
    boot: String,
    outage: OutageMode,
    poll_ms: u64,
    last_seen_ms: u64,
    /// The state its last answer carried.
    state: Option<FleetState>,
    leases: BTreeMap<(String, BudgetKind), LeaseBook>,
    /// Per pool, its lease of the pool's slots.
    slots: BTreeMap<String, SlotBook>,
    /// Forgotten by a tick: a poll that waited for this book takes a new one.
    forgotten: bool,
}

impl EnvoyBook {
    fn new(poll: &FleetPoll, now_ms: u64) -> Self {
        Self {
            boot: poll.boot.clone(),
            outage: poll.outage,
            poll_ms: poll.poll_ms.max(MIN_POLL_MS),
            last_seen_ms: now_ms,
            state: None,
            leases: BTreeMap::new(),
            slots: BTreeMap::new(),
            forgotten: false,
        }
    }

    /// Everything its leases hold, to hand back; the books are emptied.
    fn abandon(&mut self) -> Vec<Return> {
        std::mem::take(&mut self.leases)
            .into_iter()
            .filter_map(|((tenant, kind), mut lease)| {
                let amount = lease.abandon();
                let (debt, spent) = (lease.owed_debt, lease.owed_spent);
                (amount > 0 || debt > 0 || spent > 0).then_some(Return {
                    tenant,
                    kind,
                    limit: lease.limit,
                    amount,
                    debt,
                    spent,
                })
            })
            .collect()
    }

    /// Every lease has expired at the filter, with one poll period of grace for the
    /// answer's travel.
    fn leases_expired(&self, now_ms: u64) -> bool {
        self.leases
            .values()
            .all(|l| now_ms >= l.expires_ms() + self.poll_ms)
    }
}

/// One Envoy's lease of one pool's slots.
#[derive(Debug, Default)]
struct SlotBook {
    slots: u32,
    scales: BTreeMap<String, f64>,
    reserved: BTreeMap<String, u32>,
    spare: u32,
    expires_ms: u64,
}

impl SlotBook {
    fn lease(&self, now_ms: u64) -> SlotLease {
        SlotLease {
            slots: self.slots,
            expires_in_ms: self.expires_ms.saturating_sub(now_ms),
            weights: self.scales.clone(),
            reserved: self.reserved.clone(),
            spare: self.spare,
        }
    }
}

type SharedBook = Arc<tokio::sync::Mutex<EnvoyBook>>;

/// An Envoy's part of a pool: its grant, its tenants' weight scales and reservations,
/// and the slots spare fleet-wide.
struct SlotShare {
    slots: u32,
    scales: BTreeMap<String, f64>,
    reserved: BTreeMap<String, u32>,
    spare: u32,
}

pub struct FleetManager<S> {
    store: S,
    clock: Arc<dyn Clock>,
    settings: FleetSettings,
    metrics: Arc<FleetMetrics>,
    health: Mutex<Health>,
    envoys: Mutex<HashMap<String, SharedBook>>,
}

impl<S: FleetStore> FleetManager<S> {
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        settings: FleetSettings,
        metrics: Arc<FleetMetrics>,
    ) -> Self {
        metrics.store_up(true);
        metrics.replicas(1);
        Self {
            store,
            clock,
            settings,
            metrics,
            health: Mutex::new(Health {
                store_up: true,
                replicas: 1,
                draining: false,
                returns: Vec::new(),
                epoch: None,
                recovering_until: 0,
            }),
            envoys: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &FleetSettings {
        &self.settings
    }

    /// Whether the store answered its last call.
    pub fn store_up(&self) -> bool {
        self.health().store_up
    }

    /// Envoys live fleet-wide, last seen.
    pub fn replicas(&self) -> u32 {
        self.health().replicas
    }

    /// Answers one Envoy's poll.
    pub async fn poll(&self, poll: &FleetPoll) -> FleetGrants {
        let now = self.clock.now_ms();
        let mut book = self.book_of(poll, now).await;
        if book.boot != poll.boot {
            // The Envoy restarted: what its old allowance held can no longer be spent.
            let returns = book.abandon();
            self.health().returns.extend(returns);
            book.boot = poll.boot.clone();
        }
        book.outage = poll.outage;
        book.poll_ms = poll.poll_ms.max(MIN_POLL_MS);
        book.last_seen_ms = now;
        let (store_up, replicas, draining) = {
            let health = self.health();
            (health.store_up, health.replicas, health.draining)
        };

        let asker = asker_id(&poll.envoy);
        let mut asks: Vec<(&str, Vec<BucketOp>)> = Vec::new();
        for (tenant, report) in &poll.tenants {
            let mut ops = Vec::new();
            for kind in BudgetKind::ALL {
                let Some(limit) = report.limits.bucket(kind) else {
                    continue;
                };
                let totals = report.consumption(kind);
                let poll_ms = book.poll_ms;
                let lease = book
                    .leases
                    .entry((tenant.clone(), kind))
                    .or_insert_with(|| LeaseBook::new(limit, totals, now));
                lease.limit = limit;
                let reported = lease.report(totals, now);
                self.metrics.expired(tenant, kind, reported.expired);
                let want = if draining {
                    0
                } else {
                    lease.want(report.demand, &reported, poll_ms, replicas)
                };
                if want > 0 || lease.owed_debt > 0 || lease.to_return > 0 || lease.owed_spent > 0 {
                    ops.push(lease.op(kind, want, asker, 2 * poll_ms));
                }
            }
            if !ops.is_empty() {
                asks.push((tenant.as_str(), ops));
            }
        }

        // The budgets' settles and the pools' claims, all at once.
        let settles = asks
            .iter()
            .filter(|_| store_up)
            .map(|(tenant, ops)| self.call(self.store.settle(tenant, ops)));
        let poll_ms = book.poll_ms;
        let claims = poll
            .pools
            .iter()
            .filter(|_| store_up && !draining)
            .map(|(pool, report)| self.claim_slots(pool, &poll.envoy, report, replicas, poll_ms));
        let (settled, claims) = join(join_all(settles), join_all(claims)).await;
        for ((tenant, ops), result) in asks.iter().zip(settled) {
            let Ok(takes) = result else { continue };
            for (op, take) in ops.iter().zip(takes) {
                if let Some(lease) = book.leases.get_mut(&(tenant.to_string(), op.kind)) {
                    lease.settled(op, take.granted);
                    self.metrics.granted(tenant, op.kind, take.granted);
                    self.metrics.returned(tenant, op.kind, op.give_back);
                    self.metrics.debt(tenant, op.kind, op.debt);
                }
            }
        }

        let until = now + LEASE_POLLS * book.poll_ms;
        let mut pools = BTreeMap::new();
        let mut claims = claims.into_iter();
        for pool in poll.pools.keys() {
            if let Some(Ok(share)) = claims.next() {
                let entry = book.slots.entry(pool.clone()).or_default();
                let changed = entry.slots != share.slots;
                self.metrics
                    .slots(pool, &poll.envoy, Some(share.slots), changed);
                *entry = SlotBook {
                    slots: share.slots,
                    scales: share.scales,
                    reserved: share.reserved,
                    spare: share.spare,
                    expires_ms: until,
                };
            }
            let lease = book.slots.get(pool).map(|b| b.lease(now));
            pools.insert(pool.clone(), lease.unwrap_or_default());
        }

        let store_up = self.health().store_up;
        let mut tenants = BTreeMap::new();
        for (tenant, report) in &poll.tenants {
            let mut leases = TenantLeases::default();
            for kind in BudgetKind::ALL {
                if let Some(lease) = book.leases.get_mut(&(tenant.clone(), kind)) {
                    if store_up && report.demand && !draining {
                        lease.renew(until);
                    }
                    leases.set(kind, lease.lease(now));
                }
            }
            tenants.insert(tenant.clone(), leases);
        }
        let state = if store_up {
            FleetState::Exact
        } else {
            FleetState::outage(book.outage)
        };
        if book.state != Some(state) {
            if book.state.is_some() || state != FleetState::Exact {
                log(&format!(
                    "fleet: Envoy {:?} is now {} ({} replicas live)",
                    poll.envoy,
                    state.as_str(),
                    replicas
                ));
            }
            self.metrics.state_change(book.state, state);
            book.state = Some(state);
        }
        FleetGrants {
            state,
            replicas,
            sidecar: self.settings.sidecar.clone(),
            tenants,
            pools,
        }
    }

    /// Claims `envoy`'s share of `pool`'s slots: reads every live claim, shares the
    /// pool out ([`slots::allocate`]) with this report in, and claims the target.
    /// Returns the grant, and the scales and reservations of the Envoy's tenants.
    async fn claim_slots(
        &self,
        pool: &str,
        envoy: &str,
        report: &PoolReport,
        replicas: u32,
        poll_ms: u64,
    ) -> Result<SlotShare, StoreError> {
        let silent = self.settings.silent_claim;
        let mut holders = self.call(self.store.pool_holders(pool, silent)).await?;
        let floor = report.limit.max(report.in_flight);
        let mine = SlotHolder {
            report: report.clone(),
            held: floor,
            silent: false,
        };
        holders.insert(envoy.to_string(), mine);
        // Envoys may see different live capacities: the least of them binds.
        let capacity = holders
            .values()
            .filter(|h| !h.silent)
            .map(|h| h.report.capacity)
            .min()
            .unwrap_or(report.capacity);
        // A silent Envoy (its claim lapsed: its sidecar may be gone while it serves)
        // runs under capacity ÷ the N it last saw, which counted it and every claim.
        let claims = u32::try_from(holders.len()).unwrap_or(u32::MAX);
        let share = outage_share(capacity, replicas.max(claims));
        let silent_held: u32 = holders
            .values()
            .filter(|h| h.silent)
            .map(|h| h.held.max(share))
            .fold(0, u32::saturating_add);
        let reports: BTreeMap<String, PoolReport> = holders
            .iter()
            .filter(|(_, h)| !h.silent)
            .map(|(e, h)| (e.clone(), h.report.clone()))
            .collect();
        let mut allocation = slots::allocate(capacity.saturating_sub(silent_held), &reports);
        let unclaimed = replicas.saturating_sub(claims);
        let presumed = unclaimed.saturating_mul(capacity.div_ceil(replicas.max(1)));
        let claim = SlotClaim {
            report: report.clone(),
            capacity,
            target: allocation.targets.get(envoy).copied().unwrap_or(0),
            floor,
            presumed,
            ttl: Duration::from_millis((LEASE_POLLS + 1) * poll_ms),
            silent,
            share,
        };
        let granted = self
            .call(self.store.claim_slots(pool, envoy, &claim))
            .await?;
        let in_flight = holders
            .values()
            .filter(|h| !h.silent)
            .map(|h| u64::from(h.report.in_flight))
            .sum();
        self.metrics.pool_in_flight(pool, in_flight);
        Ok(SlotShare {
            slots: granted,
            scales: allocation.scales.remove(envoy).unwrap_or_default(),
            reserved: allocation.reserved.remove(envoy).unwrap_or_default(),
            // Envoys that have not claimed yet may want what they are presumed to hold.
            spare: allocation.spare.saturating_sub(presumed),
        })
    }

    /// The background step, every heartbeat period: heartbeat the live Envoys (and so
    /// learn N, and whether the store is back), forget the gone ones whose leases
    /// have expired, and hand back what they held.
    pub async fn tick(&self) {
        let now = self.clock.now_ms();
        let ttl_ms = self.settings.envoy_ttl.as_millis() as u64;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (envoy, entry) in self.books() {
            let mut book = entry.lock().await;
            if now.saturating_sub(book.last_seen_ms) < ttl_ms {
                live.push(envoy);
            } else if book.leases_expired(now) {
                self.forget(&envoy, &mut book);
                gone.push(envoy);
            }
        }
        if let Ok(n) = self
            .call(self.store.heartbeat(&live, self.settings.envoy_ttl))
            .await
        {
            let mut health = self.health();
            let mut n = n.max(live.len() as u32).max(1);
            if now < health.recovering_until {
                n = n.max(health.replicas);
            }
            health.replicas = n;
            self.metrics.replicas(n);
        }
        self.check_epoch().await;
        if !gone.is_empty() {
            // A failure leaves them to lapse with their heartbeats.
            let _ = self.call(self.store.leave(&gone)).await;
        }
        self.hand_back().await;
    }

    /// Asks the store for its epoch; where it changed (Redis restarted without its
    /// data), forgets what was owed to the old store: what Envoys hold from its grants
    /// is spent or expires without being taken back from the new one's books.
    async fn check_epoch(&self) {
        // Random (std's hasher keys are drawn per `RandomState`): two stores' epochs differ.
        let random =
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
        let candidate = format!("{}-{random:016x}", self.settings.sidecar);
        let Ok(epoch) = self.call(self.store.epoch(&candidate)).await else {
            return;
        };
        let known = self.health().epoch.replace(epoch.clone());
        if known.is_none() || known.as_deref() == Some(epoch.as_str()) {
            return;
        }
        log("fleet: the store lost its data (a new epoch): what was granted before is forgotten by it");
        let recovering_until = self.clock.now_ms() + self.settings.envoy_ttl.as_millis() as u64;
        {
            let mut health = self.health();
            health.returns.clear();
            health.recovering_until = recovering_until;
        }
        for (_, entry) in self.books() {
            let mut book = entry.lock().await;
            for lease in book.leases.values_mut() {
                lease.store_lost();
            }
        }
    }

    /// Shutting down: no more grants or renewals. Returns how long until every lease
    /// this sidecar handed out has expired at its filter (then [`Self::shutdown`]
    /// can hand everything back).
    pub async fn drain(&self) -> Duration {
        self.health().draining = true;
        let now = self.clock.now_ms();
        let mut until = now;
        for (_, entry) in self.books() {
            let book = entry.lock().await;
            for lease in book.leases.values() {
                until = until.max(lease.expires_ms() + book.poll_ms);
            }
        }
        Duration::from_millis(until - now)
    }

    /// Hands back what every Envoy holds in leases that have expired, and takes them
    /// out of the fleet's N. Leases still live stay with their filters (call after
    /// [`Self::drain`]'s wait to return them all).
    pub async fn shutdown(&self) {
        let now = self.clock.now_ms();
        let mut envoys = Vec::new();
        for (envoy, entry) in self.books() {
            let mut book = entry.lock().await;
            if book.leases_expired(now) {
                self.forget(&envoy, &mut book);
            }
            envoys.push(envoy);
        }
        self.hand_back().await;
        let _ = self.call(self.store.leave(&envoys)).await;
    }

    /// The book of the polling Envoy, locked; made at its first poll.
    async fn book_of(&self, poll: &FleetPoll, now_ms: u64) -> OwnedMutexGuard<EnvoyBook> {
        loop {
            let entry = self
                .envoys()
                .entry(poll.envoy.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(EnvoyBook::new(poll, now_ms))))
                .clone();
            let book = entry.lock_owned().await;
            if !book.forgotten {
                return book;
            }
        }
    }

    fn books(&self) -> Vec<(String, SharedBook)> {
        self.envoys()
            .iter()
            .map(|(envoy, book)| (envoy.clone(), book.clone()))
            .collect()
    }

    /// Drops an Envoy's book (held locked by the caller), queueing what it held.
    fn forget(&self, envoy: &str, book: &mut EnvoyBook) {
        for pool in std::mem::take(&mut book.slots).into_keys() {
            self.metrics.slots(&pool, envoy, None, false);
        }
        let returns = book.abandon();
        self.health().returns.extend(returns);
        self.metrics.envoy_gone(book.state);
        book.forgotten = true;
        self.envoys().remove(envoy);
    }

    /// Hands back the queued returns, one store call per tenant; what fails stays
    /// queued.
    async fn hand_back(&self) {
        let returns = std::mem::take(&mut self.health().returns);
        if returns.is_empty() {
            return;
        }
        let mut by_tenant: BTreeMap<String, Vec<Return>> = BTreeMap::new();
        for r in returns {
            by_tenant.entry(r.tenant.clone()).or_default().push(r);
        }
        for (tenant, returns) in by_tenant {
            let ops: Vec<BucketOp> = returns
                .iter()
                .map(|r| BucketOp {
                    kind: r.kind,
                    limit: r.limit,
                    want: 0,
                    debt: r.debt,
                    give_back: r.amount,
                    spent: r.spent,
                    asker: 0,
                    fresh_ms: 0,
                })
                .collect();
            if self.call(self.store.settle(&tenant, &ops)).await.is_ok() {
                for r in &returns {
                    self.metrics.returned(&tenant, r.kind, r.amount);
                    self.metrics.debt(&tenant, r.kind, r.debt);
                }
            } else {
                self.health().returns.extend(returns);
            }
        }
    }

    /// One store call, bounded by `timeout`, timed and counted; its outcome moves the
    /// store's health.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.settings.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(self.settings.timeout)),
        };
        self.metrics
            .store_call(started.elapsed().as_secs_f64(), result.as_ref().map(|_| ()));
        let mut health = self.health();
        match (&result, health.store_up) {
            (Err(e), true) => {
                health.store_up = false;
                self.metrics.store_up(false);
                log(&format!(
                    "fleet: the store failed ({e}): Envoys spend the leases they hold, then follow their outage mode with N = {}",
                    health.replicas
                ));
            }
            (Ok(_), false) => {
                health.store_up = true;
                health.recovering_until =
                    self.clock.now_ms() + self.settings.envoy_ttl.as_millis() as u64;
                self.metrics.store_up(true);
                log("fleet: the store answers again: leases resume (exact)");
            }
            _ => {}
        }
        result
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn envoys(&self) -> MutexGuard<'_, HashMap<String, SharedBook>> {
        self.envoys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An Envoy's name as the store's buckets know it: FNV-1a, stable across sidecars and
/// releases, never 0 (which means nobody).
fn asker_id(envoy: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in envoy.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.max(1)
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
