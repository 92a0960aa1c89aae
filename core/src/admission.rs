//! One worker's part in weighted-fair admission: the requests it holds in the pools
//! (`fair_queue`), from admission or queueing to their end.
//!
//! A worker (a wasm VM, or a native worker thread) takes a number that is unique in
//! the Envoy process (`vm`) and calls each request it sees a `context`. A request
//! that must wait is paused and remembered here. Whoever frees a slot, on any worker,
//! gets from the pool the waiter that now holds it and sends that waiter's worker a
//! wake-up through the host (`PoolHost::send_wake`); this worker's own waiters come
//! back as `Action::Resume`. The worker's tick expires waiters past
//! `queue_timeout_ms` (503) and, in fleet mode, sheddable waiters no slot reached in
//! time (503, shed), renews its lease and reclaims the slots of dead workers.
//!
//! Every slot is released exactly once: a context here is `Queued` or `Admitted`;
//! its end (`finish`) releases an admitted slot, or cancels a queued ticket, or, when
//! the ticket was granted meanwhile (its wake-up still in flight), releases that slot.
//! Host actions that re-enter the worker (resuming a request, a local reply) are not
//! taken here: they come back as `Action`s for the caller to take once it holds no
//! borrow.

use std::collections::BTreeMap;
use std::sync::Arc;

use fairgate_wire::fleet::{outage_share, PoolReport};

use hashbrown::{HashMap, HashSet};

use crate::config::{PoolConfig, TenantPolicy, Tenants};
use crate::fair_queue::{
    reservations, Admit, Limits, PoolState, Reservation, Ticket, Updated, Waiter, SHARED_POOL,
};
use crate::fleet::FleetMode;
use crate::headroom::Snapshot;
use crate::host::{Level, PoolHost};
use crate::metrics::{pool_capacity_gauge, pool_in_flight_gauge, queued_gauge, Decision};
use crate::response::{self, LocalReply};
use crate::store::StoreError;

/// The cost of a request whose body is not read (no tokens to count): one token.
pub const REQUEST_COST: f64 = 1.0;

/// What becomes of a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Forward,
    /// Paused until woken, or answered 503 at `queue_timeout_ms`.
    Wait,
    Shed,
    QueueFull,
    /// Shadow mode: it goes on now, counted with this decision (what enforcing would
    /// have done: `ShadowQueued`, `ShadowShed`, `ShadowQueueFull`).
    Shadow(Decision),
}

impl Admission {
    /// The answer to a refused request (`Shed`, `QueueFull`) and how it is counted.
    pub fn refusal(self) -> Option<(Decision, LocalReply)> {
        match self {
            Admission::Forward | Admission::Wait | Admission::Shadow(_) => None,
            Admission::Shed => Some((
                Decision::Shed,
                response::overloaded(
                    "the GPUs are saturated and this tenant's requests are sheddable",
                ),
            )),
            Admission::QueueFull => Some((Decision::QueueFull, response::queue_full())),
        }
    }
}

/// Host actions to take once no borrow is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `context` holds a slot now: resume it.
    Resume {
        context: u32,
        tenant: String,
        enqueued_at_ms: u64,
        /// When another worker sent the wake-up (ns), for the wake-up latency.
        sent_at_ns: Option<u64>,
    },
    /// `context` waited past the queue timeout (or, sheddable, found no slot the fleet
    /// had spare in time: `shed`): answer it [`Action::timed_out_reply`].
    TimedOut {
        context: u32,
        tenant: String,
        shed: bool,
    },
}

impl Action {
    /// The answer to a request that waited in vain, and how it is counted.
    pub fn timed_out_reply(shed: bool) -> (Decision, LocalReply) {
        match Admission::Shed.refusal() {
            Some(refusal) if shed => refusal,
            _ => (
                Decision::QueueTimeout,
                response::overloaded("no GPU slot came free within the queue timeout"),
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Admitted,
    /// Answered 503 at the queue timeout; kept until its end, so that its end
    /// knows it never reached the upstream.
    Expired,
}

struct Context {
    pool: Arc<str>,
    tenant: Arc<str>,
    state: State,
    enqueued_at_ms: u64,
    /// The cost estimate charged when the slot was granted.
    cost: f64,
}

/// This worker's part in every pool.
pub struct Pools {
    config: PoolConfig,
    reserved: HashMap<String, Vec<Reservation>>,
    vm: u32,
    lease_ms: Option<u64>,
    contexts: HashMap<u32, Context>,
    /// Pools this worker has used: the ones its tick looks after.
    touched: Vec<String>,
    /// The configured tenants of each pool (for the queued gauges).
    members: HashMap<String, Vec<String>>,
    /// The shared clusters: the pools of tenants pinned nowhere.
    shared: Vec<String>,
    /// Live capacity per pool, from a fresh sidecar snapshot.
    live: HashMap<String, u32>,
    /// Whether each pool had a free slot when this worker last saw it.
    free: HashMap<String, bool>,
    /// Pool and tenant names, shared by the contexts that name them.
    names: HashSet<Arc<str>>,
    /// Fleet mode: the slots this Envoy leases from the fleet.
    fleet: Option<FleetSlots>,
}

/// Fleet mode (SPEC 9): each pool's capacity is the fleet's total, shared out by the
/// sidecars as slot leases. What one worker knows of them, from the last snapshot.
#[derive(Debug)]
struct FleetSlots {
    /// How long the sidecar may be silent before its silence is an outage.
    stale_ms: u64,
    /// How long a sheddable request waits for a slot the fleet has spare.
    sheddable_wait_ms: u64,
    /// When this worker first looked (until a first answer, or `stale_ms` after it,
    /// the pools wait for their first lease).
    started_ms: Option<u64>,
    answered: bool,
    /// Envoys live in the fleet, last seen: what an outage divides capacity by.
    replicas: u32,
    /// Per pool, the slots it runs under now.
    capacity: HashMap<String, u32>,
    /// Per pool and tenant, the part of its weight that counts here.
    weights: HashMap<String, HashMap<String, f64>>,
    /// Per pool, its last lease: slots, and until when (ms).
    leased: HashMap<String, (u32, u64)>,
    /// Per pool, this Envoy's part of the tenants' `min_concurrency` (while a lease
    /// lives; the configured values otherwise).
    reservations: HashMap<String, Vec<Reservation>>,
    /// The pools whose last live lease said the fleet has spare slots (and, before the
    /// first answer, every pool): there a sheddable request that finds no slot waits
    /// for one.
    spare: HashSet<String>,
}

/// How many of its polls a sheddable request waits, at most, for a slot the fleet has
/// spare: its backlog is reported at the next poll, the Envoy that holds the spare
/// slot gives it up at its own next poll, and this Envoy claims it at the one after.
pub const SHEDDABLE_WAIT_POLLS: u64 = 5;

/// A gauge reading: metric name and value.
pub type Gauge = (String, u64);

/// The pools' gauges as one tick left them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PoolGauges {
    /// Per pool: requests in flight and capacity.
    pub pools: Vec<(String, u64, u64)>,
    /// Per tenant: requests queued (summed over its pools).
    pub queued: Vec<(String, u64)>,
}

impl PoolGauges {
    /// The gauges by their stats names (the wasm host's form).
    pub fn named(&self) -> Vec<Gauge> {
        let mut gauges = Vec::with_capacity(self.pools.len() * 2 + self.queued.len());
        for (pool, in_flight, capacity) in &self.pools {
            gauges.push((pool_in_flight_gauge(pool), *in_flight));
            gauges.push((pool_capacity_gauge(pool), *capacity));
        }
        gauges.extend(self.queued.iter().map(|(t, n)| (queued_gauge(t), *n)));
        gauges
    }
}

impl Pools {
    /// This worker's part, as worker `vm`, in the pools of `tenants`.
    pub fn new(vm: u32, config: PoolConfig, tenants: &Tenants, shared: &[String]) -> Pools {
        let shared_pools: Vec<String> = if shared.is_empty() {
            vec![SHARED_POOL.to_string()]
        } else {
            shared.to_vec()
        };
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        let mut reserved = HashMap::new();
        for (name, policy) in &tenants.by_name {
            let pools = match &policy.cluster {
                Some(c) => {
                    reserved.insert(c.clone(), reservations(tenants, c, false));
                    vec![c.clone()]
                }
                None => shared_pools.clone(),
            };
            for pool in pools {
                members.entry(pool).or_default().push(name.to_string());
            }
        }
        for pool in &shared_pools {
            reserved.insert(pool.clone(), reservations(tenants, pool, true));
        }
        Pools {
            config,
            reserved,
            vm,
            lease_ms: None,
            contexts: HashMap::new(),
            touched: Vec::new(),
            members,
            shared: shared.to_vec(),
            live: HashMap::new(),
            free: HashMap::new(),
            names: HashSet::new(),
            fleet: None,
        }
    }

    /// Fleet mode: each pool's capacity is what the sidecar leases this Envoy of the
    /// fleet's total; `capacity ÷ N` once the lease has lapsed (N: the Envoys last seen
    /// live). For `stale_ms` after the lapse, the smaller of the lease and that share:
    /// the other Envoys' leases lapse too meanwhile, and the larger ones' requests
    /// drain, before this one takes more than it held. Before a first lease (for
    /// `stale_ms` at most), none.
    ///
    /// A sheddable request that finds no slot here while the fleet has slots spare (no
    /// tenant of a band ≥ 0 wants them) waits up to `SHEDDABLE_WAIT_POLLS` polls for
    /// the leases to bring one here; it is refused at once while the fleet has none.
    pub fn with_fleet(mut self, mode: FleetMode) -> Self {
        self.fleet = Some(FleetSlots {
            stale_ms: mode.stale_ms,
            sheddable_wait_ms: mode
                .poll_ms
                .saturating_mul(SHEDDABLE_WAIT_POLLS)
                .min(self.config.queue_timeout_ms),
            started_ms: None,
            answered: false,
            replicas: 1,
            capacity: HashMap::new(),
            weights: HashMap::new(),
            leased: HashMap::new(),
            reservations: HashMap::new(),
            spare: HashSet::new(),
        });
        self
    }

    /// Sets how long this worker's slots outlive its silence before other workers
    /// reclaim them (default `fair_queue::DEFAULT_LEASE_MS`). A host whose workers
    /// cannot die alone (native threads end with the process) sets `u64::MAX`.
    pub fn with_lease_ms(mut self, lease_ms: u64) -> Self {
        self.lease_ms = Some(lease_ms);
        self
    }

    /// This worker's number.
    pub fn vm(&self) -> u32 {
        self.vm
    }

    fn update<T>(
        &mut self,
        host: &impl PoolHost,
        pool: &str,
        op: impl FnMut(&mut PoolState, &Limits) -> T,
    ) -> Result<T, StoreError> {
        let fleet_reserved = self.fleet.as_ref().and_then(|f| f.reservations.get(pool));
        let reserved = fleet_reserved
            .or(self.reserved.get(pool))
            .map_or(&[][..], Vec::as_slice);
        let mut limits = Limits::new(&self.config, self.live.get(pool).copied(), reserved);
        if let Some(lease_ms) = self.lease_ms {
            limits.lease_ms = lease_ms;
        }
        if let Some(fleet) = &self.fleet {
            if let Some(slots) = fleet.capacity.get(pool) {
                limits.capacity = *slots;
            }
            let spare = fleet.spare.contains(pool);
            limits.sheddable_wait_ms = Some(if spare { fleet.sheddable_wait_ms } else { 0 });
        }
        let mut op = op;
        let Updated {
            value: (value, free),
            reset,
        } = host.update_pool(pool, |p| {
            let value = op(p, &limits);
            (value, p.in_use() < limits.capacity)
        })?;
        match self.free.get_mut(pool) {
            Some(known) => *known = free,
            None => {
                self.free.insert(pool.to_string(), free);
            }
        }
        if let Some(e) = reset {
            host.log(
                Level::Error,
                &format!("fairgate: pool {pool} was unreadable and was reset: {e}"),
            );
        }
        Ok(value)
    }

    /// `name`, shared with every context that names it.
    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.names.get(name) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        self.names.insert(name.clone());
        name
    }

    fn touch(&mut self, pool: &str) {
        if !self.touched.iter().any(|p| p == pool) {
            self.touched.push(pool.to_string());
        }
    }

    /// Whether `pool` had a free slot when this worker last saw it (unknown: yes).
    pub fn had_free_slot(&self, pool: &str) -> bool {
        self.free.get(pool).copied().unwrap_or(true)
    }

    /// Whether this worker has requests waiting for a slot.
    pub fn has_waiters(&self) -> bool {
        self.contexts.values().any(|c| c.state == State::Queued)
    }

    /// The live capacities from a fresh sidecar snapshot (none: configured caps), and
    /// in fleet mode the slots it leases, at `now_ms`.
    pub fn set_live(&mut self, snapshot: Option<&Snapshot>, now_ms: u64) {
        self.live.clear();
        if let Some(s) = snapshot {
            for pool in self.reserved.keys() {
                let capacity = if pool == SHARED_POOL {
                    s.capacity_of(self.shared.iter().map(String::as_str))
                } else {
                    s.capacity_of([pool.as_str()])
                };
                if let Some(c) = capacity {
                    self.live.insert(pool.clone(), c);
                }
            }
        }
        if self.fleet.is_some() {
            self.set_slots(snapshot, now_ms);
        }
    }

    /// The fleet's total for `pool`: the live capacity capped by the configured one.
    fn fleet_total(&self, pool: &str) -> u32 {
        Limits::new(&self.config, self.live.get(pool).copied(), &[]).capacity
    }

    fn set_slots(&mut self, snapshot: Option<&Snapshot>, now_ms: u64) {
        let totals: Vec<(String, u32)> = self
            .reserved
            .keys()
            .map(|p| (p.clone(), self.fleet_total(p)))
            .collect();
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        let started = *fleet.started_ms.get_or_insert(now_ms);
        let view = snapshot.and_then(|s| Some((s.received_at_ms, s.fleet.as_ref()?)));
        if let Some((_, view)) = view {
            fleet.answered = true;
            fleet.replicas = view.replicas.max(1);
        }
        fleet.capacity.clear();
        fleet.weights.clear();
        fleet.reservations.clear();
        fleet.spare.clear();
        // Before the first answer (for `stale_ms` at most): wait for a first lease.
        let waiting = !fleet.answered && now_ms.saturating_sub(started) <= fleet.stale_ms;
        for (pool, total) in totals {
            let lease = view.and_then(|(at, v)| {
                let l = v.pools.get(&pool)?;
                let until = at.saturating_add(l.expires_in_ms);
                (now_ms < until).then_some((l, until))
            });
            let share = outage_share(total, fleet.replicas);
            let slots = match (lease, fleet.leased.get(&pool)) {
                (Some((l, until)), _) => {
                    if !l.weights.is_empty() {
                        let weights = l.weights.clone().into_iter().collect();
                        fleet.weights.insert(pool.clone(), weights);
                    }
                    fleet.leased.insert(pool.clone(), (l.slots, until));
                    if !l.reserved.is_empty() {
                        let parts = l.reserved.iter().map(|(tenant, slots)| Reservation {
                            tenant: tenant.clone(),
                            slots: *slots,
                        });
                        fleet.reservations.insert(pool.clone(), parts.collect());
                    }
                    if l.spare > 0 {
                        fleet.spare.insert(pool.clone());
                    }
                    l.slots
                }
                (None, Some(&(slots, until))) if now_ms < until.saturating_add(fleet.stale_ms) => {
                    slots.min(share)
                }
                (None, _) if waiting => {
                    fleet.spare.insert(pool.clone());
                    0
                }
                (None, _) => share,
            };
            fleet.capacity.insert(pool, slots);
        }
    }

    /// Fleet mode: what the poll tells the sidecar of each pool (its demand for slots).
    pub fn fleet_reports(&mut self, host: &impl PoolHost) -> BTreeMap<String, PoolReport> {
        let mut reports = BTreeMap::new();
        let mut pools: Vec<String> = self.reserved.keys().cloned().collect();
        pools.sort();
        for pool in pools {
            let capacity = self.fleet_total(&pool);
            let reservations = self.reserved.get(&pool).map_or_else(BTreeMap::new, |r| {
                r.iter().map(|r| (r.tenant.clone(), r.slots)).collect()
            });
            let read = self.update(host, &pool, |p, limits| PoolReport {
                capacity,
                in_flight: p.in_use(),
                limit: limits.capacity,
                reserved: p.reserved_free(limits),
                reservations: reservations.clone(),
                tenants: p.demand().map(|(t, d)| (t.to_string(), d)).collect(),
            });
            match read {
                Ok(report) => {
                    reports.insert(pool, report);
                }
                Err(e) => host.log(
                    Level::Warn,
                    &format!("fairgate: reading pool {pool} for the fleet poll: {e}"),
                ),
            }
        }
        reports
    }

    /// The part of `tenant`'s weight that counts in `pool` here (fleet mode).
    fn weight_scale(&self, pool: &str, tenant: &str) -> f64 {
        self.fleet
            .as_ref()
            .and_then(|f| f.weights.get(pool)?.get(tenant).copied())
            .unwrap_or(1.0)
    }

    /// Admits, queues or refuses the request of `context` in `pool`, expected to
    /// cost `cost` (reconciled at `finish`). A failing store lets the request
    /// through (it is the host's fault, not the tenant's).
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        host: &impl PoolHost,
        context: u32,
        tenant: &str,
        policy: &TenantPolicy,
        pool: &str,
        cost: f64,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Admission {
        let pool = self.name(pool);
        self.touch(&pool);
        let ticket = Ticket {
            vm: self.vm,
            context,
            enqueued_at_ms: now_ms,
            cost,
        };
        let scale = self.weight_scale(&pool, tenant);
        let outcome = self.update(host, &pool, |p, limits| {
            p.try_admit_scaled(tenant, policy, scale, ticket, limits)
        });
        let admission = match outcome {
            Ok(a) => a,
            Err(e) => {
                host.log(
                    Level::Warn,
                    &format!("fairgate: pool {pool} not enforced: {e}"),
                );
                return Admission::Forward;
            }
        };
        self.dispatch(host, admission.woken, actions);
        let vm = self.vm;
        let (state, shadow) = match admission.admit {
            Admit::Admitted => (State::Admitted, None),
            // Shadow mode: nothing waits. Its ticket goes; if a slot reached it
            // meanwhile, it holds that slot like any admitted request.
            Admit::Queued if policy.shadow => {
                match self.update(host, &pool, |p, _| p.cancel(vm, context)) {
                    Ok(Some(_)) => return Admission::Shadow(Decision::ShadowQueued),
                    Ok(None) => (State::Admitted, None),
                    // Kept as waiting, so that its end cancels the ticket.
                    Err(_) => (State::Queued, Some(Decision::ShadowQueued)),
                }
            }
            Admit::Queued => (State::Queued, None),
            Admit::Shed if policy.shadow => return Admission::Shadow(Decision::ShadowShed),
            Admit::Shed => return Admission::Shed,
            Admit::QueueFull if policy.shadow => {
                return Admission::Shadow(Decision::ShadowQueueFull)
            }
            Admit::QueueFull => return Admission::QueueFull,
        };
        let tenant = self.name(tenant);
        self.contexts.insert(
            context,
            Context {
                pool,
                tenant,
                state,
                enqueued_at_ms: now_ms,
                cost,
            },
        );
        match (state, shadow) {
            (_, Some(shadow)) => Admission::Shadow(shadow),
            (State::Admitted, None) => Admission::Forward,
            (State::Queued | State::Expired, None) => Admission::Wait,
        }
    }

    /// The request of `context` has a better cost estimate now (its body was read):
    /// its tenant is charged the difference at once, so that the scheduler does not
    /// wait for the request's end to see it.
    pub fn reestimate(&mut self, host: &impl PoolHost, context: u32, cost: f64) {
        let Some(ctx) = self.contexts.get(&context) else {
            return;
        };
        let delta = cost - ctx.cost;
        if ctx.state != State::Admitted || delta.abs() < 1.0 {
            return;
        }
        let (pool, tenant) = (ctx.pool.clone(), ctx.tenant.clone());
        match self.update(host, &pool, |p, _| p.charge(&tenant, delta)) {
            Ok(_) => {
                if let Some(ctx) = self.contexts.get_mut(&context) {
                    ctx.cost = cost;
                }
            }
            Err(e) => host.log(
                Level::Warn,
                &format!("fairgate: re-estimating a request in {pool}: {e}"),
            ),
        }
    }

    /// Whether `context` holds a slot (`Some(true)`), waits for one (`Some(false)`),
    /// or is not in any pool (`None`).
    pub fn holds_slot(&self, context: u32) -> Option<bool> {
        self.contexts
            .get(&context)
            .map(|c| c.state == State::Admitted)
    }

    /// The request of `context` ended, however: releases or cancels what it held.
    /// `actual_cost`: what it really cost, where known (the estimate otherwise).
    pub fn finish(
        &mut self,
        host: &impl PoolHost,
        context: u32,
        now_ms: u64,
        actual_cost: Option<f64>,
        actions: &mut Vec<Action>,
    ) {
        let Some(ctx) = self.contexts.remove(&context) else {
            return;
        };
        let vm = self.vm;
        let extra = actual_cost.map_or(0.0, |c| c - ctx.cost);
        let woken = match ctx.state {
            State::Expired => return,
            State::Admitted => self.update(host, &ctx.pool, |p, limits| {
                p.release(&ctx.tenant, vm, extra, limits, now_ms).woken
            }),
            // Cancelled before its slot came; if it came (the wake-up is on its way),
            // the slot goes back, and the estimate charged for it is refunded.
            State::Queued => {
                self.update(host, &ctx.pool, |p, limits| match p.cancel(vm, context) {
                    Some(_) => Vec::new(),
                    None => p.release(&ctx.tenant, vm, -ctx.cost, limits, now_ms).woken,
                })
            }
        };
        match woken {
            Ok(woken) => self.dispatch(host, woken, actions),
            Err(e) => host.log(
                Level::Warn,
                &format!("fairgate: releasing a slot of {}: {e}", ctx.pool),
            ),
        }
    }

    /// Sends each woken waiter to its worker; this worker's own come back as actions.
    fn dispatch(&mut self, host: &impl PoolHost, woken: Vec<Waiter>, actions: &mut Vec<Action>) {
        for w in woken {
            if w.ticket.vm == self.vm {
                self.woken(w.ticket.context, None, actions);
            } else if !host.send_wake(w.ticket.vm, w.ticket.context) {
                // The slot stays held until that worker's lease runs out and it is
                // reclaimed.
                host.log(
                    Level::Warn,
                    &format!(
                        "fairgate: no way to wake request {} of worker {}",
                        w.ticket.context, w.ticket.vm
                    ),
                );
            }
        }
    }

    /// A slot came for `context` (a wake-up from another worker, sent at
    /// `sent_at_ns`, or one of this worker's own): resume it if it still waits here.
    pub fn woken(&mut self, context: u32, sent_at_ns: Option<u64>, actions: &mut Vec<Action>) {
        if let Some(ctx) = self.contexts.get_mut(&context) {
            if ctx.state == State::Queued {
                ctx.state = State::Admitted;
                actions.push(Action::Resume {
                    context,
                    tenant: ctx.tenant.to_string(),
                    enqueued_at_ms: ctx.enqueued_at_ms,
                    sent_at_ns,
                });
            }
        }
    }

    /// The safety net: lease renewal, queue timeouts, reclaiming dead workers' slots.
    /// Returns the pools' gauges as they stand after it.
    pub fn tick(
        &mut self,
        host: &impl PoolHost,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> PoolGauges {
        let vm = self.vm;
        let mut gauges = PoolGauges::default();
        let mut queued_by_tenant: HashMap<String, u64> = HashMap::new();
        for pool in self.touched.clone() {
            let members = self.members.get(&pool).cloned().unwrap_or_default();
            let ticked = self.update(host, &pool, |p, limits| {
                let tick = p.tick(vm, limits, now_ms);
                let counts = (u64::from(p.in_use()), u64::from(limits.capacity));
                let queued: Vec<(String, u64)> = members
                    .iter()
                    .map(|t| (t.clone(), p.queued(t) as u64))
                    .collect();
                (tick, counts, queued)
            });
            let (tick, (in_flight, capacity), queued) = match ticked {
                Ok(t) => t,
                Err(e) => {
                    host.log(Level::Warn, &format!("fairgate: ticking pool {pool}: {e}"));
                    continue;
                }
            };
            gauges.pools.push((pool.clone(), in_flight, capacity));
            for (tenant, n) in queued {
                *queued_by_tenant.entry(tenant).or_default() += n;
            }
            let expired = tick.expired.into_iter().map(|w| (w, false));
            for (w, shed) in expired.chain(tick.shed.into_iter().map(|w| (w, true))) {
                if let Some(ctx) = self.contexts.get_mut(&w.ticket.context) {
                    ctx.state = State::Expired;
                    actions.push(Action::TimedOut {
                        context: w.ticket.context,
                        tenant: w.tenant,
                        shed,
                    });
                }
            }
            if !tick.reclaimed.vms.is_empty() {
                host.log(
                    Level::Warn,
                    &format!(
                        "fairgate: pool {pool}: reclaimed {} slots of workers {:?} that stopped renewing",
                        tick.reclaimed.slots, tick.reclaimed.vms
                    ),
                );
            }
            self.dispatch(host, tick.reclaimed.woken, actions);
        }
        gauges.queued = queued_by_tenant.into_iter().collect();
        gauges
    }

    /// Every configured pool's gauges as they stand, changing nothing (for a host
    /// that reports them apart from any worker's tick).
    pub fn gauges(&mut self, host: &impl PoolHost) -> PoolGauges {
        let mut gauges = PoolGauges::default();
        let mut queued_by_tenant: HashMap<String, u64> = HashMap::new();
        let mut pools: Vec<String> = self.reserved.keys().cloned().collect();
        pools.sort();
        for pool in pools {
            let members = self.members.get(&pool).cloned().unwrap_or_default();
            let read = self.update(host, &pool, |p, limits| {
                let counts = (u64::from(p.in_use()), u64::from(limits.capacity));
                let queued: Vec<(String, u64)> = members
                    .iter()
                    .map(|t| (t.clone(), p.queued(t) as u64))
                    .collect();
                (counts, queued)
            });
            let Ok(((in_flight, capacity), queued)) = read else {
                continue;
            };
            gauges.pools.push((pool, in_flight, capacity));
            for (tenant, n) in queued {
                *queued_by_tenant.entry(tenant).or_default() += n;
            }
        }
        gauges.queued = queued_by_tenant.into_iter().collect();
        gauges.queued.sort();
        gauges
    }

    /// A woken context that is gone: its slot goes back and its estimate is refunded
    /// (as a queued context the pool no longer has a ticket for, which `finish` handles).
    pub fn vanished(
        &mut self,
        host: &impl PoolHost,
        context: u32,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        if let Some(ctx) = self.contexts.get_mut(&context) {
            ctx.state = State::Queued;
        }
        self.finish(host, context, now_ms, None, actions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fair_queue::FairQueue;
    use crate::store::MemoryStore;
    use crate::testkit;
    use std::cell::RefCell;

    /// Two workers' pools over one in-memory store; wake-ups sent to another worker
    /// are recorded.
    struct TestHost {
        store: MemoryStore,
        queue: FairQueue,
        sent: RefCell<Vec<(u32, u32)>>,
        logged: RefCell<Vec<String>>,
    }

    impl PoolHost for TestHost {
        fn update_pool<T>(
            &self,
            pool: &str,
            op: impl FnMut(&mut PoolState) -> T,
        ) -> Result<Updated<T>, StoreError> {
            self.queue.update(&self.store, pool, op)
        }

        fn send_wake(&self, vm: u32, context: u32) -> bool {
            self.sent.borrow_mut().push((vm, context));
            true
        }

        fn log(&self, _level: Level, message: &str) {
            self.logged.borrow_mut().push(message.to_string());
        }
    }

    fn host() -> TestHost {
        TestHost {
            store: MemoryStore::default(),
            queue: FairQueue::new("test:"),
            sent: RefCell::new(Vec::new()),
            logged: RefCell::new(Vec::new()),
        }
    }

    /// `testkit`'s tenants `acme` and `free`, sharing one pool.
    fn fleet_mode(stale_ms: u64) -> FleetMode {
        FleetMode {
            outage: fairgate_wire::fleet::OutageMode::Safe,
            poll_ms: 100,
            stale_ms,
        }
    }

    fn config(capacity: u32, timeout_ms: u64) -> Config {
        let mut json = testkit::config_json();
        json["pool"] = serde_json::json!({
            "max_concurrency": capacity,
            "queue_timeout_ms": timeout_ms
        });
        testkit::config(&json)
    }

    fn pools(vm: u32, config: &Config) -> Pools {
        let pool = config.pool.clone().unwrap_or_else(|| panic!("no pool"));
        Pools::new(vm, pool, &config.tenants, &[])
    }

    fn policy(config: &Config, tenant: &str) -> TenantPolicy {
        (*config.tenants.by_name[tenant]).clone()
    }

    #[test]
    fn a_slot_freed_on_one_worker_wakes_the_waiter_of_another_once() {
        let (host, config) = (host(), config(1, 5_000));
        let (mut w1, mut w2) = (pools(1, &config), pools(2, &config));
        let mut actions = Vec::new();
        let acme = policy(&config, "acme");
        let first = w1.admit(&host, 10, "acme", &acme, SHARED_POOL, 1.0, 0, &mut actions);
        assert_eq!(first, Admission::Forward);
        let second = w2.admit(&host, 20, "acme", &acme, SHARED_POOL, 1.0, 1, &mut actions);
        assert_eq!(second, Admission::Wait);
        assert_eq!(w2.holds_slot(20), Some(false));
        assert!(w2.has_waiters());
        w1.finish(&host, 10, 5, Some(1.0), &mut actions);
        assert_eq!(*host.sent.borrow(), vec![(2, 20)]);
        assert!(actions.is_empty());
        w2.woken(20, Some(7), &mut actions);
        w2.woken(20, Some(8), &mut actions);
        assert_eq!(
            actions,
            vec![Action::Resume {
                context: 20,
                tenant: "acme".into(),
                enqueued_at_ms: 1,
                sent_at_ns: Some(7)
            }]
        );
        assert_eq!(w2.holds_slot(20), Some(true));
        assert!(!w2.has_waiters());
    }

    #[test]
    fn a_waiter_on_the_same_worker_comes_back_as_an_action() {
        let (host, config) = (host(), config(1, 5_000));
        let mut w = pools(1, &config);
        let mut actions = Vec::new();
        let free = policy(&config, "free");
        w.admit(&host, 1, "free", &free, SHARED_POOL, 1.0, 0, &mut actions);
        w.admit(&host, 2, "free", &free, SHARED_POOL, 1.0, 0, &mut actions);
        w.finish(&host, 1, 3, None, &mut actions);
        assert!(host.sent.borrow().is_empty());
        assert!(matches!(
            actions.as_slice(),
            [Action::Resume { context: 2, .. }]
        ));
    }

    #[test]
    fn a_waiter_past_its_timeout_is_timed_out_by_its_own_tick_and_its_end_frees_nothing() {
        let (host, config) = (host(), config(1, 100));
        let mut w = pools(1, &config);
        let mut actions = Vec::new();
        let acme = policy(&config, "acme");
        w.admit(&host, 1, "acme", &acme, SHARED_POOL, 1.0, 0, &mut actions);
        w.admit(&host, 2, "acme", &acme, SHARED_POOL, 1.0, 0, &mut actions);
        let gauges = w.tick(&host, 50, &mut actions);
        assert!(actions.is_empty());
        assert_eq!(gauges.pools, vec![(SHARED_POOL.to_string(), 1, 1)]);
        w.tick(&host, 150, &mut actions);
        assert!(matches!(
            actions.as_slice(),
            [Action::TimedOut { context: 2, .. }]
        ));
        actions.clear();
        w.finish(&host, 2, 160, None, &mut actions);
        w.finish(&host, 1, 170, None, &mut actions);
        let gauges = w.tick(&host, 180, &mut actions);
        assert_eq!(gauges.pools, vec![(SHARED_POOL.to_string(), 0, 1)]);
        assert!(actions.is_empty());
    }

    #[test]
    fn a_worker_without_a_lease_limit_keeps_its_slots_however_long_it_is_silent() {
        let (host, config) = (host(), config(1, 100));
        let mut quiet = pools(1, &config).with_lease_ms(u64::MAX);
        let mut busy = pools(2, &config).with_lease_ms(u64::MAX);
        let mut actions = Vec::new();
        let acme = policy(&config, "acme");
        quiet.admit(&host, 1, "acme", &acme, SHARED_POOL, 1.0, 0, &mut actions);
        let later = 10 * crate::fair_queue::DEFAULT_LEASE_MS;
        let waits = busy.admit(
            &host,
            2,
            "acme",
            &acme,
            SHARED_POOL,
            1.0,
            later,
            &mut actions,
        );
        busy.tick(&host, later + 1, &mut actions);
        assert_eq!(waits, Admission::Wait);
        assert!(host.sent.borrow().is_empty() && actions.is_empty());
        assert!(host.logged.borrow().is_empty());
    }

    /// Requests 1..=n of acme at `now_ms`, each costing 1.
    fn admit_acme(w: &mut Pools, host: &TestHost, config: &Config, n: u32, now_ms: u64) {
        let mut actions = Vec::new();
        let acme = policy(config, "acme");
        for context in 1..=n {
            let pool = SHARED_POOL;
            w.admit(
                host,
                context,
                "acme",
                &acme,
                pool,
                1.0,
                now_ms,
                &mut actions,
            );
        }
    }

    #[test]
    fn gauges_read_every_pool_without_changing_it() {
        let (host, config) = (host(), config(2, 5_000));
        let mut worker = pools(1, &config);
        let mut reporter = pools(0, &config);
        admit_acme(&mut worker, &host, &config, 3, 0);
        let gauges = reporter.gauges(&host);
        assert_eq!(gauges.pools, vec![(SHARED_POOL.to_string(), 2, 2)]);
        assert_eq!(
            gauges.queued,
            vec![("acme".to_string(), 1), ("free".to_string(), 0)]
        );
        assert_eq!(reporter.gauges(&host), gauges);
    }

    #[test]
    fn in_shadow_mode_nothing_waits_and_nothing_is_left_in_the_pool() {
        let mut json = testkit::config_json();
        json["mode"] = serde_json::json!("shadow");
        json["pool"] = serde_json::json!({"max_concurrency": 1, "max_queue_per_tenant": 1});
        let config = testkit::config(&json);
        let host = host();
        let mut w = pools(1, &config);
        let mut actions = Vec::new();
        let acme = policy(&config, "acme");
        assert!(acme.shadow);
        let first = w.admit(&host, 1, "acme", &acme, SHARED_POOL, 1.0, 0, &mut actions);
        let second = w.admit(&host, 2, "acme", &acme, SHARED_POOL, 1.0, 0, &mut actions);
        assert_eq!(first, Admission::Forward);
        assert_eq!(second, Admission::Shadow(Decision::ShadowQueued));
        assert_eq!(w.holds_slot(2), None);
        let free = policy(&config, "free");
        let shed = w.admit(&host, 3, "free", &free, SHARED_POOL, 1.0, 0, &mut actions);
        assert!(matches!(
            shed,
            Admission::Shadow(Decision::ShadowShed | Decision::ShadowQueued)
        ));
        w.finish(&host, 1, 5, None, &mut actions);
        w.finish(&host, 2, 5, None, &mut actions);
        w.finish(&host, 3, 5, None, &mut actions);
        assert!(actions.is_empty());
        let gauges = w.tick(&host, 10, &mut actions);
        assert_eq!(gauges.pools, vec![(SHARED_POOL.to_string(), 0, 1)]);
    }

    /// A snapshot of a fleet answer that arrived at `at_ms`, leasing `slots` of the
    /// shared pool for `expires_in_ms`, `acme` counting half its weight here.
    fn fleet_snapshot(at_ms: u64, slots: u32, expires_in_ms: u64, state: &str) -> Snapshot {
        let body = serde_json::json!({
            "version": 1, "generated_at_ms": 0, "source": "sim", "clusters": {},
            "fleet": {"state": state, "replicas": 3, "sidecar": "s", "tenants": {},
                "pools": {"shared": {"slots": slots, "expires_in_ms": expires_in_ms,
                    "weights": {"acme": 0.5}}}}
        });
        Snapshot::parse(body.to_string().as_bytes(), at_ms).unwrap()
    }

    fn capacity(w: &mut Pools, host: &TestHost) -> u64 {
        w.gauges(host).pools[0].2
    }

    #[test]
    fn in_fleet_mode_a_pool_runs_under_its_lease_else_capacity_over_n() {
        let (host, config) = (host(), config(10, 5_000));
        let mut w = pools(1, &config).with_fleet(fleet_mode(1_000));
        // Before a first answer: no slot, for `stale_ms` at most.
        w.set_live(None, 100);
        assert_eq!(capacity(&mut w, &host), 0);
        w.set_live(None, 1_200);
        assert_eq!(capacity(&mut w, &host), 10, "no N known yet: 10 ÷ 1");
        let leased = fleet_snapshot(2_000, 4, 300, "exact");
        w.set_live(Some(&leased), 2_100);
        assert_eq!(capacity(&mut w, &host), 4);
        assert_eq!(w.weight_scale(SHARED_POOL, "acme"), 0.5);
        assert_eq!(w.weight_scale(SHARED_POOL, "free"), 1.0);
        // The lease lapsed: the smaller of it and 10 ÷ 3 for `stale_ms`, then 10 ÷ 3.
        let big = fleet_snapshot(3_000, 6, 300, "safe");
        w.set_live(Some(&big), 3_100);
        assert_eq!(capacity(&mut w, &host), 6);
        w.set_live(Some(&big), 3_300);
        assert_eq!(capacity(&mut w, &host), 3);
        assert_eq!(w.weight_scale(SHARED_POOL, "acme"), 1.0);
        let small = fleet_snapshot(5_000, 1, 300, "safe");
        w.set_live(Some(&small), 5_100);
        w.set_live(Some(&small), 6_000);
        assert_eq!(
            capacity(&mut w, &host),
            1,
            "1 leased, 3 its share: 1 until 6,300"
        );
        w.set_live(Some(&small), 6_301);
        assert_eq!(capacity(&mut w, &host), 3);
        // The sidecar silent: still 10 ÷ the last N.
        w.set_live(None, 9_000);
        assert_eq!(capacity(&mut w, &host), 3);
    }

    #[test]
    fn in_fleet_mode_a_sheddable_request_waits_while_the_fleet_has_a_slot_spare() {
        let mut json = testkit::config_json();
        json["pool"] = serde_json::json!({"max_concurrency": 10, "queue_timeout_ms": 5_000});
        json["tenants"]["free"]["priority"] = serde_json::json!(-1);
        let (host, config) = (host(), testkit::config(&json));
        let mut w = pools(1, &config).with_fleet(fleet_mode(1_000));
        let lease = |slots: u32, spare: u32| {
            let body = serde_json::json!({
                "version": 1, "generated_at_ms": 0, "source": "sim", "clusters": {},
                "fleet": {"state": "exact", "replicas": 2, "sidecar": "s", "tenants": {},
                    "pools": {"shared": {"slots": slots, "expires_in_ms": 1_000,
                        "spare": spare}}}
            });
            Snapshot::parse(body.to_string().as_bytes(), 0).unwrap()
        };
        let free = policy(&config, "free");
        let mut actions = Vec::new();
        let mut admit = |w: &mut Pools, context: u32, now_ms: u64| {
            w.admit(
                &host,
                context,
                "free",
                &free,
                SHARED_POOL,
                1.0,
                now_ms,
                &mut actions,
            )
        };
        // This Envoy's part of an idle fleet is 1 slot; 8 more are spare elsewhere.
        w.set_live(Some(&lease(1, 8)), 10);
        assert_eq!(admit(&mut w, 1, 20), Admission::Forward);
        assert_eq!(admit(&mut w, 2, 20), Admission::Wait, "not refused");
        assert_eq!(admit(&mut w, 3, 20), Admission::Wait);
        // Its backlog brought it a second slot.
        w.set_live(Some(&lease(2, 7)), 200);
        let mut actions = Vec::new();
        w.tick(&host, 210, &mut actions);
        assert!(matches!(actions[..], [Action::Resume { context: 2, .. }]));
        // The third found none within 5 polls (500 ms): shed, as the saturated fleet
        // would have at once.
        let mut actions = Vec::new();
        w.tick(&host, 520, &mut actions);
        assert_eq!(
            actions,
            [Action::TimedOut {
                context: 3,
                tenant: "free".into(),
                shed: true
            }]
        );
        w.set_live(Some(&lease(2, 0)), 600);
        let mut actions = Vec::new();
        let refused = w.admit(&host, 4, "free", &free, SHARED_POOL, 1.0, 610, &mut actions);
        assert_eq!(refused, Admission::Shed, "no slot spare: refused at once");
        assert_eq!(
            Action::timed_out_reply(true).0,
            Decision::Shed,
            "counted as shed"
        );
    }

    #[test]
    fn the_fleet_report_says_who_waits_and_what_the_pool_runs_under() {
        let (host, config) = (host(), config(10, 5_000));
        let mut w = pools(1, &config).with_fleet(fleet_mode(1_000));
        w.set_live(Some(&fleet_snapshot(0, 2, 1_000, "exact")), 10);
        admit_acme(&mut w, &host, &config, 3, 20);
        let reports = w.fleet_reports(&host);
        let report = &reports[SHARED_POOL];
        assert_eq!(
            (report.capacity, report.in_flight, report.limit),
            (10, 2, 2)
        );
        let demand = report.tenants["acme"];
        assert_eq!(
            (demand.weight, demand.queued, demand.in_flight),
            (4.0, 1, 2)
        );
    }

    #[test]
    fn in_fleet_mode_a_pool_keeps_its_part_of_a_reservation_not_the_whole() {
        let mut json = testkit::config_json();
        json["pool"] = serde_json::json!({"max_concurrency": 10});
        json["tenants"]["acme"]["min_concurrency"] = serde_json::json!(3);
        let (host, config) = (host(), testkit::config(&json));
        let mut w = pools(1, &config).with_fleet(fleet_mode(1_000));
        let body = serde_json::json!({
            "version": 1, "generated_at_ms": 0, "source": "sim", "clusters": {},
            "fleet": {"state": "exact", "replicas": 3, "sidecar": "s", "tenants": {},
                "pools": {"shared": {"slots": 4, "expires_in_ms": 1_000,
                    "reserved": {"acme": 1}}}}
        });
        let snapshot = Snapshot::parse(body.to_string().as_bytes(), 0).unwrap();
        w.set_live(Some(&snapshot), 10);
        let reports = w.fleet_reports(&host);
        assert_eq!(
            reports[SHARED_POOL].reservations["acme"], 3,
            "the configured value"
        );
        assert_eq!(
            reports[SHARED_POOL].reserved, 1,
            "this Envoy's part, unused"
        );
        let free = policy(&config, "free");
        let mut actions = Vec::new();
        let admitted: Vec<Admission> = (1..=4)
            .map(|c| w.admit(&host, c, "free", &free, SHARED_POOL, 1.0, 20, &mut actions))
            .collect();
        // 4 slots, 1 kept for acme: 3 for free (with acme's whole 3 kept, 1).
        assert_eq!(
            admitted,
            [
                Admission::Forward,
                Admission::Forward,
                Admission::Forward,
                Admission::Wait
            ]
        );
    }
}
