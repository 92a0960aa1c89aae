//! Glue for weighted-fair admission (`fair_queue`): one VM's side of the pools.
//!
//! Each VM takes an index from a shared-data counter and registers its own shared
//! queue, `<prefix>wake.<index>` (a queue notifies only the last VM that registered a
//! name, so each needs its own). A request that must wait is paused and remembered
//! here by context id. Whoever frees a slot, on any worker, gets from `fair_queue` the
//! waiter that now holds it and sends that waiter's context id to the waiter's VM;
//! that VM resumes it in `on_queue_ready`, within milliseconds. A tick expires
//! waiters past `queue_timeout_ms` (503), renews this VM's lease and reclaims the
//! slots of dead VMs.
//!
//! Every slot is released exactly once: a context here is `Queued` or `Admitted`;
//! its end (`finish`) releases an admitted slot, or cancels a queued ticket, or, when
//! the ticket was granted meanwhile (its wake-up still in flight), releases that slot.
//! Host actions that re-enter the VM (resuming a request, a local reply) run only
//! after every borrow is dropped: they come back as `Action`s for the caller.

use hashbrown::HashMap;
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use super::{log, HostStore};
use fairgate_core::config::{PoolConfig, TenantPolicy, Tenants};
use fairgate_core::fair_queue::{
    reservations, Admit, FairQueue, Limits, PoolState, Reservation, Ticket, Updated, Waiter,
    SHARED_POOL,
};
use fairgate_core::headroom::Snapshot;
use fairgate_core::metrics::{pool_capacity_gauge, pool_in_flight_gauge, queued_gauge};
use fairgate_core::store::{cas_update, StoreError, Update};

/// The cost of a request whose body is not read (no tokens to count): one token.
pub const REQUEST_COST: f64 = 1.0;

/// What becomes of a new request.
pub enum Admission {
    Forward,
    /// Paused until woken, or answered 503 at `queue_timeout_ms`.
    Wait,
    Shed,
    QueueFull,
}

/// Host actions to take once no borrow is held.
pub enum Action {
    Resume {
        context: u32,
        tenant: String,
        enqueued_at_ms: u64,
        /// When another worker sent the wake-up (ns), for the wake-up latency.
        sent_at_ns: Option<u64>,
    },
    TimedOut {
        context: u32,
        tenant: String,
    },
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
    pool: String,
    tenant: String,
    state: State,
    enqueued_at_ms: u64,
    /// The cost estimate charged when the slot was granted.
    cost: f64,
}

/// This VM's part in every pool.
pub struct Pools {
    queue: FairQueue,
    config: PoolConfig,
    reserved: HashMap<String, Vec<Reservation>>,
    prefix: String,
    vm_id: String,
    vm: u32,
    contexts: HashMap<u32, Context>,
    /// Pools this VM has used: the ones its tick looks after.
    touched: Vec<String>,
    /// The configured tenants of each pool (for the queued gauges).
    members: HashMap<String, Vec<String>>,
    /// The shared clusters: the pools of tenants pinned nowhere.
    shared: Vec<String>,
    /// Live capacity per pool, from a fresh sidecar snapshot.
    live: HashMap<String, u32>,
    /// Whether each pool had a free slot when this VM last saw it.
    free: HashMap<String, bool>,
}

/// A gauge reading: metric name and value.
pub type Gauge = (String, u64);

impl Pools {
    /// Joins the pools as VM `vm` (see `vm_index`): registers its wake-up queue.
    pub fn join(
        prefix: &str,
        vm: u32,
        config: PoolConfig,
        tenants: &Tenants,
        shared: &[String],
    ) -> Result<(Pools, u32), String> {
        let queue_id = hostcalls::register_shared_queue(&wake_queue(prefix, vm))
            .map_err(|s| format!("registering the wake-up queue: {s:?}"))?;
        let vm_id = hostcalls::get_property(vec!["plugin_vm_id"])
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
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
        Ok((
            Pools {
                queue: FairQueue::new(prefix),
                config,
                reserved,
                prefix: prefix.to_string(),
                vm_id,
                vm,
                contexts: HashMap::new(),
                touched: Vec::new(),
                members,
                shared: shared.to_vec(),
                live: HashMap::new(),
                free: HashMap::new(),
            },
            queue_id,
        ))
    }

    fn update<T>(
        &mut self,
        pool: &str,
        op: impl FnMut(&mut PoolState, &Limits) -> T,
    ) -> Result<T, StoreError> {
        let reserved = self.reserved.get(pool).map_or(&[][..], Vec::as_slice);
        let limits = Limits::new(&self.config, self.live.get(pool).copied(), reserved);
        let mut op = op;
        let Updated {
            value: (value, free),
            reset,
        } = self.queue.update(&HostStore, pool, |p| {
            let value = op(p, &limits);
            (value, p.in_use() < limits.capacity)
        })?;
        self.free.insert(pool.to_string(), free);
        if let Some(e) = reset {
            log(
                LogLevel::Error,
                &format!("fairgate: pool {pool} was unreadable and was reset: {e}"),
            );
        }
        Ok(value)
    }

    fn touch(&mut self, pool: &str) {
        if !self.touched.iter().any(|p| p == pool) {
            self.touched.push(pool.to_string());
        }
    }

    /// Whether `pool` had a free slot when this VM last saw it (unknown: yes).
    pub fn had_free_slot(&self, pool: &str) -> bool {
        self.free.get(pool).copied().unwrap_or(true)
    }

    /// The live capacities from a fresh sidecar snapshot (none: configured caps).
    pub fn set_live(&mut self, snapshot: Option<&Snapshot>) {
        self.live.clear();
        let Some(s) = snapshot else {
            return;
        };
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

    /// Admits, queues or refuses the request of `context` in `pool`, expected to
    /// cost `cost` (reconciled at `finish`). A failing store lets the request
    /// through (it is the host's fault, not the tenant's).
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        context: u32,
        tenant: &str,
        policy: &TenantPolicy,
        pool: &str,
        cost: f64,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Admission {
        let pool = pool.to_string();
        self.touch(&pool);
        let ticket = Ticket {
            vm: self.vm,
            context,
            enqueued_at_ms: now_ms,
            cost,
        };
        let outcome = self.update(&pool, |p, limits| {
            p.try_admit(tenant, policy, ticket, limits)
        });
        let admission = match outcome {
            Ok(a) => a,
            Err(e) => {
                log(
                    LogLevel::Warn,
                    &format!("fairgate: pool {pool} not enforced: {e}"),
                );
                return Admission::Forward;
            }
        };
        self.dispatch(admission.woken, actions);
        let state = match admission.admit {
            Admit::Admitted => State::Admitted,
            Admit::Queued => State::Queued,
            Admit::Shed => return Admission::Shed,
            Admit::QueueFull => return Admission::QueueFull,
        };
        self.contexts.insert(
            context,
            Context {
                pool,
                tenant: tenant.to_string(),
                state,
                enqueued_at_ms: now_ms,
                cost,
            },
        );
        match state {
            State::Admitted => Admission::Forward,
            State::Queued | State::Expired => Admission::Wait,
        }
    }

    /// The request of `context` has a better cost estimate now (its body was read):
    /// its tenant is charged the difference at once, so that the scheduler does not
    /// wait for the request's end to see it.
    pub fn reestimate(&mut self, context: u32, cost: f64) {
        let Some(ctx) = self.contexts.get(&context) else {
            return;
        };
        let delta = cost - ctx.cost;
        if ctx.state != State::Admitted || delta.abs() < 1.0 {
            return;
        }
        let (pool, tenant) = (ctx.pool.clone(), ctx.tenant.clone());
        match self.update(&pool, |p, _| p.charge(&tenant, delta)) {
            Ok(_) => {
                if let Some(ctx) = self.contexts.get_mut(&context) {
                    ctx.cost = cost;
                }
            }
            Err(e) => log(
                LogLevel::Warn,
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
            State::Admitted => self.update(&ctx.pool, |p, limits| {
                p.release(&ctx.tenant, vm, extra, limits, now_ms).woken
            }),
            // Cancelled before its slot came; if it came (the wake-up is on its way),
            // the slot goes back, and the estimate charged for it is refunded.
            State::Queued => self.update(&ctx.pool, |p, limits| match p.cancel(vm, context) {
                Some(_) => Vec::new(),
                None => p.release(&ctx.tenant, vm, -ctx.cost, limits, now_ms).woken,
            }),
        };
        match woken {
            Ok(woken) => self.dispatch(woken, actions),
            Err(e) => log(
                LogLevel::Warn,
                &format!("fairgate: releasing a slot of {}: {e}", ctx.pool),
            ),
        }
    }

    /// Sends each woken waiter to its VM; this VM's own come back as actions.
    fn dispatch(&mut self, woken: Vec<Waiter>, actions: &mut Vec<Action>) {
        for w in woken {
            if w.ticket.vm == self.vm {
                self.wake(w.ticket.context, None, actions);
                continue;
            }
            let name = wake_queue(&self.prefix, w.ticket.vm);
            let mut message = w.ticket.context.to_le_bytes().to_vec();
            message.extend_from_slice(&now_ns().to_le_bytes());
            let sent = match hostcalls::resolve_shared_queue(&self.vm_id, &name) {
                Ok(Some(q)) => hostcalls::enqueue_shared_queue(q, Some(&message)).is_ok(),
                _ => false,
            };
            if !sent {
                // The slot stays held until that VM's lease runs out and it is reclaimed.
                log(
                    LogLevel::Warn,
                    &format!("fairgate: no wake-up queue {name}"),
                );
            }
        }
    }

    /// A slot came for `context`: resume it if it still waits here.
    fn wake(&mut self, context: u32, sent_at_ns: Option<u64>, actions: &mut Vec<Action>) {
        if let Some(ctx) = self.contexts.get_mut(&context) {
            if ctx.state == State::Queued {
                ctx.state = State::Admitted;
                actions.push(Action::Resume {
                    context,
                    tenant: ctx.tenant.clone(),
                    enqueued_at_ms: ctx.enqueued_at_ms,
                    sent_at_ns,
                });
            }
        }
    }

    /// Wake-ups sent to this VM's queue.
    pub fn on_queue(&mut self, queue_id: u32, actions: &mut Vec<Action>) {
        while let Ok(Some(message)) = hostcalls::dequeue_shared_queue(queue_id) {
            let context = message
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes);
            let sent_at_ns = message
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes);
            if let Some(context) = context {
                self.wake(context, sent_at_ns, actions);
            }
        }
    }

    /// The safety net: lease renewal, queue timeouts, reclaiming dead VMs' slots.
    /// Returns the pools' gauges as they stand after it.
    pub fn tick(&mut self, now_ms: u64, actions: &mut Vec<Action>) -> Vec<Gauge> {
        let vm = self.vm;
        let mut gauges = Vec::new();
        let mut queued_by_tenant: HashMap<String, u64> = HashMap::new();
        for pool in self.touched.clone() {
            let members = self.members.get(&pool).cloned().unwrap_or_default();
            let ticked = self.update(&pool, |p, limits| {
                let tick = p.tick(vm, limits, now_ms);
                let gauges = [
                    (pool_in_flight_gauge(&pool), u64::from(p.in_use())),
                    (pool_capacity_gauge(&pool), u64::from(limits.capacity)),
                ];
                let queued: Vec<(String, u64)> = members
                    .iter()
                    .map(|t| (t.clone(), p.queued(t) as u64))
                    .collect();
                (tick, gauges, queued)
            });
            let (tick, pool_gauges, queued) = match ticked {
                Ok(t) => t,
                Err(e) => {
                    log(
                        LogLevel::Warn,
                        &format!("fairgate: ticking pool {pool}: {e}"),
                    );
                    continue;
                }
            };
            gauges.extend(pool_gauges);
            for (tenant, n) in queued {
                *queued_by_tenant.entry(tenant).or_default() += n;
            }
            for w in tick.expired {
                if let Some(ctx) = self.contexts.get_mut(&w.ticket.context) {
                    ctx.state = State::Expired;
                    actions.push(Action::TimedOut {
                        context: w.ticket.context,
                        tenant: w.tenant,
                    });
                }
            }
            if !tick.reclaimed.vms.is_empty() {
                log(
                    LogLevel::Warn,
                    &format!(
                        "fairgate: pool {pool}: reclaimed {} slots of VMs {:?} that stopped renewing",
                        tick.reclaimed.slots, tick.reclaimed.vms
                    ),
                );
            }
            self.dispatch(tick.reclaimed.woken, actions);
        }
        gauges.extend(
            queued_by_tenant
                .into_iter()
                .map(|(t, n)| (queued_gauge(&t), n)),
        );
        gauges
    }

    /// A woken context that is gone: its slot goes back and its estimate is refunded
    /// (as a queued context the pool no longer has a ticket for, which `finish` handles).
    pub fn vanished(&mut self, context: u32, now_ms: u64, actions: &mut Vec<Action>) {
        if let Some(ctx) = self.contexts.get_mut(&context) {
            ctx.state = State::Queued;
        }
        self.finish(context, now_ms, None, actions);
    }
}

/// A number for this VM, unique in the Envoy process: its wake-up queue's name and
/// its identity in pools and polling.
pub fn vm_index(prefix: &str) -> Result<u32, String> {
    cas_update(
        &HostStore,
        &format!("{prefix}vm_seq"),
        &0u32.to_le_bytes(),
        |v| {
            let next = v
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
                .wrapping_add(1);
            Update::Write(next.to_le_bytes().to_vec(), next)
        },
    )
    .map_err(|e| format!("taking a VM index: {e}"))
}

/// Wall-clock nanoseconds, as the host tells them.
pub fn now_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

fn wake_queue(prefix: &str, vm: u32) -> String {
    format!("{prefix}wake.{vm}")
}
