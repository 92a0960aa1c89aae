//! Weighted-fair admission to one upstream pool (a cluster), host-free: who gets the
//! next concurrency slot.
//!
//! A pool has `capacity` slots. A request takes a free slot at once or waits in its
//! tenant's FIFO queue. Each slot that frees goes to the backlogged tenant in the
//! highest priority band with the least weighted service received: the Virtual Token
//! Counter of Sheng et al. (OSDI 2024), weighted. Every tenant has a counter, charged
//! `cost / weight` when it is granted a slot (the request's cost estimate) and again
//! when the real cost is known (`charge`, or `release`'s extra cost), so that slots
//! handed out while others are still in flight already count. No banked credit: when
//! a request finds its tenant's queue empty, the counter is lifted to the smallest
//! counter among the backlogged tenants of its band or, when none is backlogged
//! there, to the pool's virtual time (the largest counter a tenant had when it was
//! granted a slot). Ties go to the tenant with the fewest slots in flight per unit of
//! weight, then to the oldest waiter. Two continuously backlogged tenants of one band,
//! neither held back by its cap, thus never differ by more than the largest single
//! `cost / weight` (plus the estimates' errors until they are reconciled).
//!
//! `max_concurrency` caps a tenant: a tenant at its cap is skipped and its waiters
//! keep their place. `min_concurrency` is a strict reservation, passed in `Limits`:
//! while a tenant holds fewer slots than it reserves, the difference stays free for
//! it even while it sends nothing, so its requests never wait behind a flood. A
//! request is admitted at once only where a freed slot would have gone to it: its own
//! queue is empty, it is under its cap, and a slot is free that no other tenant's
//! reservation holds. A sheddable tenant (negative priority) is refused instead of
//! queued when no slot is free for it.
//!
//! Fleet mode (SPEC 9): the pool's capacity is the slots its Envoy leases from the
//! fleet, and a tenant whose requests also reach other Envoys counts here only the
//! part of its weight its backlog here is of its backlog fleet-wide (`scale`, from
//! the sidecar), so that the fleet's slots and each Envoy's order together follow
//! the weights. [`PoolState::demand`] is what the Envoy reports for that. A sheddable
//! request that finds no slot here while the fleet has slots spare waits for the
//! leases to bring one (`Limits::sheddable_wait_ms`), and is shed if none comes.
//!
//! Leases: every slot and waiter records the VM that holds it, and the VM's lease is
//! the last time it was seen (its `tick`, admissions and releases). `reclaim` frees
//! the slots and drops the waiters of VMs not seen for `lease_ms` (a VM that panicked
//! or was reloaded) and hands the slots on; a late release from such a VM frees
//! nothing. A lease exists only while its VM holds a slot or a waiter.
//!
//! The whole pool is one value (`PoolState`) in shared data, so one compare-and-swap
//! makes each operation atomic across worker VMs (`FairQueue::update`). Cost: each
//! operation decodes and re-encodes the value, O(bytes): 17 bytes, then 41 and the
//! name per tenant, 8 per (tenant, VM) holding slots, 24 per waiter, 12 per lease; at
//! most `MAX_TENANTS` tenants and `MAX_WAITERS` waiters (under 250 KB at worst with
//! the config's 64-byte tenant ids, a few KB in practice). Handing out g slots costs
//! O(g × tenants × reservations).

/// The pool of tenants not pinned to a cluster of their own where no shared clusters
/// are named (each named shared cluster is a pool of its own).
pub const SHARED_POOL: &str = "shared";

use std::cmp::Ordering;
use std::collections::VecDeque;

use fairgate_wire::fleet::PoolTenant;

use crate::config::{PoolConfig, Scheduler, TenantPolicy, Tenants};
use crate::store::{cas_update, SharedStore, StoreError, Update};

/// The layout of a stored pool: its first byte. Another version decodes as an error.
pub const FORMAT_VERSION: u8 = 2;
/// Tenants one pool tracks at most (idle ones are forgotten first).
pub const MAX_TENANTS: usize = 512;
/// Waiters one pool holds at most, all tenants together.
pub const MAX_WAITERS: usize = 8192;
/// The longest tenant name a pool stores (the config allows far shorter ones).
pub const MAX_TENANT_NAME: usize = 255;
/// How long the slots of a VM outlive its last sign of life, by default.
pub const DEFAULT_LEASE_MS: u64 = 10_000;

/// One request as the pool knows it: where it lives and what it is expected to cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ticket {
    /// The worker VM holding the request (its shared-queue index).
    pub vm: u32,
    /// The HTTP context id on that VM.
    pub context: u32,
    pub enqueued_at_ms: u64,
    /// Cost units charged when the request gets its slot (1 per request for now).
    pub cost: f64,
}

/// A ticket and its tenant, as handed back to the glue.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiter {
    pub tenant: String,
    pub ticket: Ticket,
}

/// Slots kept for one tenant in a pool (its `min_concurrency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub tenant: String,
    pub slots: u32,
}

/// The reservations of the configured tenants in `cluster`: those pinned to it and,
/// where `shared` (one of the shared clusters), every tenant pinned nowhere, since
/// such a tenant may be routed to any shared cluster.
pub fn reservations(tenants: &Tenants, cluster: &str, shared: bool) -> Vec<Reservation> {
    tenants
        .by_name
        .iter()
        .filter_map(|(name, policy)| {
            let slots = policy.min_concurrency.filter(|m| *m > 0)?;
            let here = policy.cluster.as_deref().map_or(shared, |c| c == cluster);
            here.then(|| Reservation {
                tenant: name.to_string(),
                slots,
            })
        })
        .collect()
}

/// What an operation needs to know about the pool, beyond its state.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    pub capacity: u32,
    pub max_queue_per_tenant: u32,
    pub queue_timeout_ms: u64,
    pub lease_ms: u64,
    pub reserved: &'a [Reservation],
    pub scheduler: Scheduler,
    /// Fleet mode: how long a sheddable request that finds no slot free for it waits
    /// for one; 0 while the fleet is saturated. A sheddable waiter that has waited
    /// that long, and still finds no slot, is shed. `None` (one Envoy): refused at
    /// once, never queued for want of a slot.
    pub sheddable_wait_ms: Option<u64>,
}

impl<'a> Limits<'a> {
    /// The configured pool, its live capacity (the sidecar's, capped by the
    /// configured maximum; the maximum alone while there is none) and its
    /// reservations.
    pub fn new(pool: &PoolConfig, live_capacity: Option<u32>, reserved: &'a [Reservation]) -> Self {
        Self {
            capacity: live_capacity.map_or(pool.max_concurrency, |c| c.min(pool.max_concurrency)),
            max_queue_per_tenant: pool.max_queue_per_tenant,
            queue_timeout_ms: pool.queue_timeout_ms,
            lease_ms: DEFAULT_LEASE_MS,
            reserved,
            scheduler: pool.scheduler,
            sheddable_wait_ms: None,
        }
    }
}

/// What becomes of a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It holds a slot: forward it.
    Admitted,
    /// It waits in its tenant's queue: pause it until it is woken or expires.
    Queued,
    /// Sheddable, and no slot is free for it: 503 `overloaded`.
    Shed,
    /// Its tenant's queue (or the pool's) is full: 429 `queue_full`.
    QueueFull,
}

/// The outcome of `PoolState::try_admit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub admit: Admit,
    /// Waiters that got a slot on the way (the capacity grew since the last
    /// operation); each already counts as in flight and must be resumed.
    pub woken: Vec<Waiter>,
}

/// The outcome of `PoolState::release`.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// False when the VM held no slot of that tenant (it was reclaimed).
    pub held: bool,
    /// Waiters that now hold a slot; each must be resumed on its VM.
    pub woken: Vec<Waiter>,
}

/// The outcome of `PoolState::reclaim`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reclaimed {
    /// The VMs whose lease ran out.
    pub vms: Vec<u32>,
    /// How many slots they held.
    pub slots: u32,
    /// Their waiters, dropped: there is no one left to answer them.
    pub dropped: Vec<Waiter>,
    /// Waiters that now hold a slot; each must be resumed on its VM.
    pub woken: Vec<Waiter>,
}

/// The outcome of `PoolState::tick`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// This VM's waiters that timed out, removed: answer each with 503.
    pub expired: Vec<Waiter>,
    /// This VM's sheddable waiters the fleet had no slot for in time (fleet mode),
    /// removed: answer each with 503, as shed.
    pub shed: Vec<Waiter>,
    pub reclaimed: Reclaimed,
}

/// Why a stored pool could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    Version(u8),
    Truncated,
    Invalid(&'static str),
    TrailingBytes(usize),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("pool state is empty"),
            Self::Version(v) => write!(
                f,
                "pool state has layout version {v}, expected {FORMAT_VERSION}"
            ),
            Self::Truncated => f.write_str("pool state is truncated"),
            Self::Invalid(what) => write!(f, "pool state is invalid: {what}"),
            Self::TrailingBytes(n) => write!(f, "pool state has {n} trailing bytes"),
        }
    }
}

/// How a tenant competes, from its policy (refreshed by each of its requests).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Share {
    weight: f64,
    priority: i32,
    /// `u32::MAX` when uncapped.
    max_concurrency: u32,
    /// The part of its weight that counts in this pool (fleet mode: its backlog here
    /// over its backlog fleet-wide; 1 otherwise), in (0, 1].
    scale: f64,
}

impl Share {
    fn of(policy: &TenantPolicy) -> Self {
        let weight = if policy.weight.is_finite() && policy.weight > 0.0 {
            policy.weight
        } else {
            1.0
        };
        Self {
            weight,
            priority: policy.priority,
            max_concurrency: policy.max_concurrency.unwrap_or(u32::MAX),
            scale: 1.0,
        }
    }

    /// `of(policy)`, counting `scale` of its weight (outside (0, 1]: all of it).
    fn scaled(policy: &TenantPolicy, scale: f64) -> Self {
        let mut share = Self::of(policy);
        if scale.is_finite() && scale > 0.0 && scale <= 1.0 {
            share.scale = scale;
        }
        share
    }

    /// The weight that counts here.
    fn effective_weight(&self) -> f64 {
        self.weight * self.scale
    }

    /// The weighted service `cost` stands for; a cost that is not a number counts nothing.
    fn service(&self, cost: f64) -> f64 {
        if cost.is_finite() {
            cost / self.effective_weight()
        } else {
            0.0
        }
    }
}

/// Slots of one tenant held by one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holder {
    vm: u32,
    slots: u32,
}

#[derive(Debug, Clone, PartialEq)]
struct TenantState {
    name: String,
    share: Share,
    /// The virtual service counter: weighted service received, in cost units.
    counter: f64,
    holders: Vec<Holder>,
    queue: VecDeque<Ticket>,
}

impl TenantState {
    fn in_flight(&self) -> u32 {
        self.holders
            .iter()
            .fold(0u32, |n, h| n.saturating_add(h.slots))
    }

    fn is_idle(&self) -> bool {
        self.holders.is_empty() && self.queue.is_empty()
    }

    fn uses_vm(&self, vm: u32) -> bool {
        self.holders.iter().any(|h| h.vm == vm) || self.queue.iter().any(|t| t.vm == vm)
    }

    /// Slots in flight per unit of weight: the tie-break between equal counters.
    fn load(&self) -> f64 {
        f64::from(self.in_flight()) / self.share.effective_weight()
    }

    fn take_slot(&mut self, vm: u32) {
        match self.holders.iter_mut().find(|h| h.vm == vm) {
            Some(h) => h.slots = h.slots.saturating_add(1),
            None => self.holders.push(Holder { vm, slots: 1 }),
        }
    }

    /// False when `vm` holds no slot of this tenant.
    fn give_back_slot(&mut self, vm: u32) -> bool {
        let Some(pos) = self.holders.iter().position(|h| h.vm == vm) else {
            return false;
        };
        if let Some(h) = self.holders.get_mut(pos) {
            h.slots = h.slots.saturating_sub(1);
            if h.slots == 0 {
                self.holders.swap_remove(pos);
            }
        }
        true
    }
}

/// When the oldest waiter of `t` arrived.
fn head_enqueued_at(t: &TenantState) -> u64 {
    t.queue.front().map_or(u64::MAX, |w| w.enqueued_at_ms)
}

/// The order in which backlogged tenants are served: `Less` is served first.
fn serving_order(a: &TenantState, b: &TenantState) -> Ordering {
    let head = head_enqueued_at;
    b.share
        .priority
        .cmp(&a.share.priority)
        .then(a.counter.total_cmp(&b.counter))
        .then(a.load().total_cmp(&b.load()))
        .then(head(a).cmp(&head(b)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    vm: u32,
    last_seen_ms: u64,
}

/// Free slots, and how many of them reservations hold.
struct Room {
    free: u32,
    reserved: u64,
}

/// The state of one pool: slots in use, and per tenant its counter, the slots it
/// holds (by VM) and its queue; the VMs' leases; the virtual time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolState {
    vtime: f64,
    leases: Vec<Lease>,
    tenants: Vec<TenantState>,
}

impl PoolState {
    /// Slots in flight, all tenants together.
    pub fn in_use(&self) -> u32 {
        self.tenants
            .iter()
            .fold(0u32, |n, t| n.saturating_add(t.in_flight()))
    }

    pub fn in_flight(&self, tenant: &str) -> u32 {
        self.tenant(tenant).map_or(0, TenantState::in_flight)
    }

    pub fn queued(&self, tenant: &str) -> usize {
        self.tenant(tenant).map_or(0, |t| t.queue.len())
    }

    /// Waiters, all tenants together.
    pub fn waiting(&self) -> usize {
        self.tenants.iter().map(|t| t.queue.len()).sum()
    }

    /// Slots that reservations keep free (`min_concurrency` not in use).
    pub fn reserved_free(&self, limits: &Limits) -> u32 {
        let unused = self.room(limits).reserved;
        u32::try_from(unused).unwrap_or(u32::MAX)
    }

    /// Every tenant with requests queued or in flight: its configured weight, band,
    /// queued and in flight (fleet mode reports it to the sidecar).
    pub fn demand(&self) -> impl Iterator<Item = (&str, PoolTenant)> + '_ {
        self.tenants.iter().filter(|t| !t.is_idle()).map(|t| {
            let tenant = PoolTenant {
                weight: t.share.weight,
                priority: t.share.priority,
                queued: u32::try_from(t.queue.len()).unwrap_or(u32::MAX),
                in_flight: t.in_flight(),
            };
            (t.name.as_str(), tenant)
        })
    }

    /// The tenant's virtual service counter, while the pool tracks it.
    pub fn service(&self, tenant: &str) -> Option<f64> {
        self.tenant(tenant).map(|t| t.counter)
    }

    /// Decides a new request of `tenant` (`ticket.enqueued_at_ms` is now): a slot at
    /// once, a place in its queue, or a refusal. `policy` refreshes the tenant's
    /// weight, priority and cap.
    pub fn try_admit(
        &mut self,
        tenant: &str,
        policy: &TenantPolicy,
        ticket: Ticket,
        limits: &Limits,
    ) -> Admission {
        self.try_admit_scaled(tenant, policy, 1.0, ticket, limits)
    }

    /// [`Self::try_admit`], the tenant counting `scale` (in (0, 1]) of its weight
    /// here: fleet mode, where its requests reach other Envoys too.
    pub fn try_admit_scaled(
        &mut self,
        tenant: &str,
        policy: &TenantPolicy,
        scale: f64,
        ticket: Ticket,
        limits: &Limits,
    ) -> Admission {
        let now_ms = ticket.enqueued_at_ms;
        let woken = self.fill(limits, now_ms);
        let admit = match self.entry(tenant, Share::scaled(policy, scale)) {
            None => Admit::QueueFull,
            Some(i) => self.admit_entry(i, ticket, limits),
        };
        if matches!(admit, Admit::Admitted | Admit::Queued) {
            self.renew(ticket.vm, now_ms);
        }
        self.forget_idle();
        Admission { admit, woken }
    }

    fn admit_entry(&mut self, i: usize, ticket: Ticket, limits: &Limits) -> Admit {
        let now_ms = ticket.enqueued_at_ms;
        let room = self.room(limits);
        let Some(t) = self.tenants.get(i) else {
            return Admit::QueueFull;
        };
        let backlogged = !t.queue.is_empty();
        let fits = self.fits(t, &room, limits);
        if !backlogged && fits && t.in_flight() < t.share.max_concurrency {
            self.lift(i);
            self.grant(i, ticket, now_ms);
            return Admit::Admitted;
        }
        if t.share.priority < 0 && !fits && limits.sheddable_wait_ms.unwrap_or(0) == 0 {
            return Admit::Shed;
        }
        if t.queue.len() >= limits.max_queue_per_tenant as usize || self.waiting() >= MAX_WAITERS {
            return Admit::QueueFull;
        }
        if !backlogged {
            self.lift(i);
        }
        if let Some(t) = self.tenants.get_mut(i) {
            t.queue.push_back(ticket);
        }
        self.add_lease(ticket.vm, now_ms);
        Admit::Queued
    }

    /// Frees a slot of `tenant` held by `vm`, charges `extra_cost` (the real cost
    /// minus the estimate charged at admission; minus the estimate for a request that
    /// never ran) and hands free slots to waiters.
    pub fn release(
        &mut self,
        tenant: &str,
        vm: u32,
        extra_cost: f64,
        limits: &Limits,
        now_ms: u64,
    ) -> Released {
        let held = match self.tenant_mut(tenant) {
            Some(t) => {
                t.counter += t.share.service(extra_cost);
                t.give_back_slot(vm)
            }
            None => false,
        };
        self.renew(vm, now_ms);
        let woken = self.fill(limits, now_ms);
        self.forget_idle();
        Released { held, woken }
    }

    /// Charges `cost` more (or less, when negative) to `tenant`: reconciliation
    /// once the real usage of a request is known. False when the pool no longer
    /// tracks the tenant.
    pub fn charge(&mut self, tenant: &str, cost: f64) -> bool {
        let found = match self.tenant_mut(tenant) {
            Some(t) => {
                t.counter += t.share.service(cost);
                true
            }
            None => false,
        };
        self.forget_idle();
        found
    }

    /// Removes the waiter of `context` on `vm` (its client went away). `None` when it
    /// is not waiting: it was woken meanwhile (it holds a slot the glue must release)
    /// or it expired.
    pub fn cancel(&mut self, vm: u32, context: u32) -> Option<Waiter> {
        let mut removed = self.remove_waiters(|t| t.vm == vm && t.context == context);
        self.forget_idle();
        removed.pop()
    }

    /// Removes and returns the waiters of `vm` that have waited `timeout_ms` or more.
    /// Each VM expires its own, so that it can answer them itself.
    pub fn expire(&mut self, vm: u32, now_ms: u64, timeout_ms: u64) -> Vec<Waiter> {
        let expired = self.remove_waiters(|t| {
            t.vm == vm && now_ms.saturating_sub(t.enqueued_at_ms) >= timeout_ms
        });
        self.forget_idle();
        expired
    }

    /// Renews the lease of `vm`, if it has one.
    pub fn renew(&mut self, vm: u32, now_ms: u64) {
        if let Some(lease) = self.leases.iter_mut().find(|l| l.vm == vm) {
            lease.last_seen_ms = lease.last_seen_ms.max(now_ms);
        }
    }

    /// Frees the slots and drops the waiters of every VM not seen for more than
    /// `limits.lease_ms`, then hands free slots to waiters.
    pub fn reclaim(&mut self, limits: &Limits, now_ms: u64) -> Reclaimed {
        let dead: Vec<u32> = self
            .leases
            .iter()
            .filter(|l| now_ms.saturating_sub(l.last_seen_ms) > limits.lease_ms)
            .map(|l| l.vm)
            .collect();
        let mut slots = 0u32;
        for t in &mut self.tenants {
            t.holders.retain(|h| {
                let alive = !dead.contains(&h.vm);
                if !alive {
                    slots = slots.saturating_add(h.slots);
                }
                alive
            });
        }
        let dropped = self.remove_waiters(|t| dead.contains(&t.vm));
        self.leases.retain(|l| !dead.contains(&l.vm));
        let woken = self.fill(limits, now_ms);
        self.forget_idle();
        Reclaimed {
            vms: dead,
            slots,
            dropped,
            woken,
        }
    }

    /// The periodic safety net of `vm`: renews its lease (at most every quarter
    /// lease, so that an idle pool is seldom written), expires its timed-out
    /// waiters, reclaims dead VMs' slots and fills slots the capacity added.
    pub fn tick(&mut self, vm: u32, limits: &Limits, now_ms: u64) -> Tick {
        let stale = self
            .leases
            .iter()
            .any(|l| l.vm == vm && now_ms.saturating_sub(l.last_seen_ms) >= limits.lease_ms / 4);
        if stale {
            self.renew(vm, now_ms);
        }
        let expired = self.expire(vm, now_ms, limits.queue_timeout_ms);
        let shed = self.shed_waiters(vm, limits, now_ms);
        let reclaimed = self.reclaim(limits, now_ms);
        Tick {
            expired,
            shed,
            reclaimed,
        }
    }

    /// Fleet mode: removes and returns the sheddable waiters of `vm` that have waited
    /// `limits.sheddable_wait_ms` and find no slot free for them (a waiter held back
    /// by its own `max_concurrency` waits on).
    pub fn shed_waiters(&mut self, vm: u32, limits: &Limits, now_ms: u64) -> Vec<Waiter> {
        let Some(wait_ms) = limits.sheddable_wait_ms else {
            return Vec::new();
        };
        let room = self.room(limits);
        let blocked: Vec<usize> = self
            .tenants
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.share.priority < 0 && !t.queue.is_empty() && !self.fits(t, &room, limits)
            })
            .map(|(i, _)| i)
            .collect();
        let mut shed = Vec::new();
        for i in blocked {
            let Some(t) = self.tenants.get_mut(i) else {
                continue;
            };
            let name = &t.name;
            t.queue.retain(|ticket| {
                let gone =
                    ticket.vm == vm && now_ms.saturating_sub(ticket.enqueued_at_ms) >= wait_ms;
                if gone {
                    shed.push(Waiter {
                        tenant: name.clone(),
                        ticket: *ticket,
                    });
                }
                !gone
            });
        }
        self.forget_idle();
        shed
    }

    fn tenant(&self, name: &str) -> Option<&TenantState> {
        self.tenants.iter().find(|t| t.name == name)
    }

    fn tenant_mut(&mut self, name: &str) -> Option<&mut TenantState> {
        self.tenants.iter_mut().find(|t| t.name == name)
    }

    /// The index of `name`'s entry, created (evicting the idle entry with the least
    /// counter when the table is full) and its share refreshed. `None` when the
    /// table is full of busy tenants or the name is too long to store.
    fn entry(&mut self, name: &str, share: Share) -> Option<usize> {
        if let Some(i) = self.tenants.iter().position(|t| t.name == name) {
            if let Some(t) = self.tenants.get_mut(i) {
                t.share = share;
            }
            return Some(i);
        }
        if name.is_empty() || name.len() > MAX_TENANT_NAME {
            return None;
        }
        if self.tenants.len() >= MAX_TENANTS {
            let idle = self
                .tenants
                .iter()
                .enumerate()
                .filter(|(_, t)| t.is_idle())
                .min_by(|(_, a), (_, b)| a.counter.total_cmp(&b.counter))
                .map(|(i, _)| i)?;
            self.tenants.swap_remove(idle);
        }
        self.tenants.push(TenantState {
            name: name.to_string(),
            share,
            counter: 0.0,
            holders: Vec::new(),
            queue: VecDeque::new(),
        });
        Some(self.tenants.len() - 1)
    }

    fn unused_reservation(&self, r: &Reservation) -> u32 {
        r.slots.saturating_sub(self.in_flight(&r.tenant))
    }

    fn room(&self, limits: &Limits) -> Room {
        Room {
            free: limits.capacity.saturating_sub(self.in_use()),
            reserved: limits
                .reserved
                .iter()
                .map(|r| u64::from(self.unused_reservation(r)))
                .sum(),
        }
    }

    /// Whether a free slot may go to `t`: one of its own reserved slots, or one that
    /// no reservation holds.
    fn fits(&self, t: &TenantState, room: &Room, limits: &Limits) -> bool {
        if room.free == 0 {
            return false;
        }
        let own = limits
            .reserved
            .iter()
            .find(|r| r.tenant == t.name)
            .map_or(0, |r| self.unused_reservation(r));
        own > 0 || u64::from(room.free) > room.reserved
    }

    /// The backlogged tenant the next free slot goes to, if any may take it.
    fn next_grantee(&self, limits: &Limits) -> Option<usize> {
        let room = self.room(limits);
        if room.free == 0 {
            return None;
        }
        self.tenants
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                !t.queue.is_empty()
                    && t.in_flight() < t.share.max_concurrency
                    && self.fits(t, &room, limits)
            })
            .min_by(|(_, a), (_, b)| match limits.scheduler {
                Scheduler::Fair => serving_order(a, b),
                Scheduler::Fifo => head_enqueued_at(a).cmp(&head_enqueued_at(b)),
            })
            .map(|(i, _)| i)
    }

    /// Hands free slots to waiters, in serving order, until none may take one.
    fn fill(&mut self, limits: &Limits, now_ms: u64) -> Vec<Waiter> {
        let mut woken = Vec::new();
        while let Some(i) = self.next_grantee(limits) {
            let Some(ticket) = self.tenants.get_mut(i).and_then(|t| t.queue.pop_front()) else {
                break;
            };
            if let Some(w) = self.grant(i, ticket, now_ms) {
                woken.push(w);
            }
        }
        woken
    }

    /// Gives tenant `i` a slot for `ticket` and charges its estimate.
    fn grant(&mut self, i: usize, ticket: Ticket, now_ms: u64) -> Option<Waiter> {
        let t = self.tenants.get_mut(i)?;
        self.vtime = self.vtime.max(t.counter);
        t.counter += t.share.service(ticket.cost);
        t.take_slot(ticket.vm);
        let waiter = Waiter {
            tenant: t.name.clone(),
            ticket,
        };
        self.add_lease(ticket.vm, now_ms);
        Some(waiter)
    }

    /// No banked credit: a tenant whose queue was empty starts no lower than the
    /// backlogged tenants of its band, or than the virtual time when there are none.
    fn lift(&mut self, i: usize) {
        let Some(band) = self.tenants.get(i).map(|t| t.share.priority) else {
            return;
        };
        let floor = self
            .tenants
            .iter()
            .enumerate()
            .filter(|(j, u)| *j != i && u.share.priority == band && !u.queue.is_empty())
            .map(|(_, u)| u.counter)
            .min_by(f64::total_cmp)
            .unwrap_or(self.vtime);
        if let Some(t) = self.tenants.get_mut(i) {
            t.counter = t.counter.max(floor);
        }
    }

    /// Starts a lease for `vm` if it has none. Only a VM's own calls renew an
    /// existing one: a grant made by another VM proves nothing about it.
    fn add_lease(&mut self, vm: u32, now_ms: u64) {
        if !self.leases.iter().any(|l| l.vm == vm) {
            self.leases.push(Lease {
                vm,
                last_seen_ms: now_ms,
            });
        }
    }

    fn remove_waiters(&mut self, mut remove: impl FnMut(&Ticket) -> bool) -> Vec<Waiter> {
        let mut removed = Vec::new();
        for t in &mut self.tenants {
            let name = &t.name;
            t.queue.retain(|ticket| {
                let gone = remove(ticket);
                if gone {
                    removed.push(Waiter {
                        tenant: name.clone(),
                        ticket: *ticket,
                    });
                }
                !gone
            });
        }
        removed
    }

    /// Drops what carries no information: idle tenants whose counter a returning
    /// request would be lifted to anyway, and leases of VMs that hold nothing.
    fn forget_idle(&mut self) {
        let vtime = self.vtime;
        self.tenants
            .retain(|t| !(t.is_idle() && t.counter <= vtime));
        let tenants = &self.tenants;
        self.leases
            .retain(|l| tenants.iter().any(|t| t.uses_vm(l.vm)));
    }

    /// The stored form: the version byte, then little-endian fields, counts as u32.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT_VERSION);
        put_f64(&mut out, self.vtime);
        put_len(&mut out, self.leases.len());
        for l in &self.leases {
            put_u32(&mut out, l.vm);
            put_u64(&mut out, l.last_seen_ms);
        }
        put_len(&mut out, self.tenants.len());
        for t in &self.tenants {
            let name = t.name.as_bytes();
            out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(name.get(..MAX_TENANT_NAME).unwrap_or(name));
            put_f64(&mut out, t.share.weight);
            out.extend_from_slice(&t.share.priority.to_le_bytes());
            put_u32(&mut out, t.share.max_concurrency);
            put_f64(&mut out, t.share.scale);
            put_f64(&mut out, t.counter);
            put_len(&mut out, t.holders.len());
            for h in &t.holders {
                put_u32(&mut out, h.vm);
                put_u32(&mut out, h.slots);
            }
            put_len(&mut out, t.queue.len());
            for w in &t.queue {
                put_u32(&mut out, w.vm);
                put_u32(&mut out, w.context);
                put_u64(&mut out, w.enqueued_at_ms);
                put_f64(&mut out, w.cost);
            }
        }
        out
    }

    /// Reads a stored pool; anything but a well-formed value of this version is an
    /// error, never a panic, and sizes are checked before anything is allocated.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes };
        match r.u8() {
            Err(_) => return Err(DecodeError::Empty),
            Ok(FORMAT_VERSION) => {}
            Ok(v) => return Err(DecodeError::Version(v)),
        }
        let vtime = r.finite()?;
        let n = r.count(LEASE_BYTES)?;
        let mut leases = Vec::with_capacity(n);
        for _ in 0..n {
            leases.push(Lease {
                vm: r.u32()?,
                last_seen_ms: r.u64()?,
            });
        }
        let mut leased: Vec<u32> = leases.iter().map(|l| l.vm).collect();
        leased.sort_unstable();
        let check_vm = |vm: u32| match leased.binary_search(&vm) {
            Ok(_) => Ok(()),
            Err(_) => Err(DecodeError::Invalid(
                "a slot or waiter of a VM without a lease",
            )),
        };
        let n = r.count(MIN_TENANT_BYTES)?;
        if n > MAX_TENANTS {
            return Err(DecodeError::Invalid("too many tenants"));
        }
        let mut tenants = Vec::with_capacity(n);
        let mut waiters = 0usize;
        for _ in 0..n {
            let len = usize::from(r.u8()?);
            let name = std::str::from_utf8(r.bytes(len)?)
                .map_err(|_| DecodeError::Invalid("tenant name is not UTF-8"))?;
            if name.is_empty() {
                return Err(DecodeError::Invalid("empty tenant name"));
            }
            let weight = r.finite()?;
            if weight <= 0.0 {
                return Err(DecodeError::Invalid("weight must be > 0"));
            }
            let (priority, max_concurrency, scale) = (r.i32()?, r.u32()?, r.finite()?);
            if scale <= 0.0 || scale > 1.0 {
                return Err(DecodeError::Invalid("weight scale must be in (0, 1]"));
            }
            let share = Share {
                weight,
                priority,
                max_concurrency,
                scale,
            };
            let counter = r.finite()?;
            let n = r.count(HOLDER_BYTES)?;
            let mut holders = Vec::with_capacity(n);
            for _ in 0..n {
                let h = Holder {
                    vm: r.u32()?,
                    slots: r.u32()?,
                };
                if h.slots == 0 {
                    return Err(DecodeError::Invalid("a holder of no slots"));
                }
                check_vm(h.vm)?;
                holders.push(h);
            }
            let n = r.count(TICKET_BYTES)?;
            waiters += n;
            if waiters > MAX_WAITERS {
                return Err(DecodeError::Invalid("too many waiters"));
            }
            let mut queue = VecDeque::with_capacity(n);
            for _ in 0..n {
                let t = Ticket {
                    vm: r.u32()?,
                    context: r.u32()?,
                    enqueued_at_ms: r.u64()?,
                    cost: r.finite()?,
                };
                check_vm(t.vm)?;
                queue.push_back(t);
            }
            tenants.push(TenantState {
                name: name.to_string(),
                share,
                counter,
                holders,
                queue,
            });
        }
        if !r.bytes.is_empty() {
            return Err(DecodeError::TrailingBytes(r.bytes.len()));
        }
        Ok(Self {
            vtime,
            leases,
            tenants,
        })
    }
}

const LEASE_BYTES: usize = 12;
const HOLDER_BYTES: usize = 8;
const TICKET_BYTES: usize = 24;
/// A tenant with a one-byte name, no holders and no waiters.
const MIN_TENANT_BYTES: usize = 42;

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Every length stored is bounded far below `u32::MAX` (`MAX_TENANTS`, `MAX_WAITERS`).
fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u32(out, u32::try_from(n).unwrap_or(u32::MAX));
}

/// A cursor over stored bytes; every read fails cleanly past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(*head)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn finite(&mut self) -> Result<f64, DecodeError> {
        let v = f64::from_le_bytes(self.array()?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(DecodeError::Invalid("a number that is not finite"))
        }
    }

    /// A count of items of at least `item_bytes` each, no more than the bytes left
    /// could hold: a corrupt count never makes a large allocation.
    fn count(&mut self, item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.bytes.len() / item_bytes {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
}

/// The pools of one plugin, in one shared store under one key prefix.
#[derive(Debug, Clone)]
pub struct FairQueue {
    prefix: String,
}

/// The result of an operation applied to a stored pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated<T> {
    pub value: T,
    /// Set when the stored value could not be read: the operation ran on an empty
    /// pool, which replaced it (in-flight slots it counted are forgotten).
    pub reset: Option<DecodeError>,
}

impl FairQueue {
    /// `prefix` namespaces the keys, e.g. `fairgate:<plugin name>:`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn key(&self, cluster: &str) -> String {
        format!("{}pool.{}", self.prefix, cluster)
    }

    /// Applies `op` to the pool of `cluster` under compare-and-swap: one read and, when
    /// the pool changed, one conditional write, retried on a lost race. `op` may run
    /// more than once, each time on a fresh read; only the last run's result is
    /// returned, so it must not act on the host itself.
    pub fn update<T>(
        &self,
        store: &dyn SharedStore,
        cluster: &str,
        mut op: impl FnMut(&mut PoolState) -> T,
    ) -> Result<Updated<T>, StoreError> {
        let initial = PoolState::default().encode();
        cas_update(store, &self.key(cluster), &initial, |bytes| {
            let (mut pool, reset) = match PoolState::decode(bytes) {
                Ok(pool) => (pool, None),
                Err(e) => (PoolState::default(), Some(e)),
            };
            let value = op(&mut pool);
            let encoded = pool.encode();
            let out = Updated { value, reset };
            if encoded == bytes {
                Update::Keep(out)
            } else {
                Update::Write(encoded, out)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testkit::weight_only as policy;
    use std::collections::BTreeMap;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn limits(capacity: u32) -> Limits<'static> {
        Limits {
            capacity,
            max_queue_per_tenant: 10_000,
            queue_timeout_ms: 5_000,
            lease_ms: 10_000,
            reserved: &[],
            scheduler: Scheduler::Fair,
            sheddable_wait_ms: None,
        }
    }

    fn ticket(vm: u32, context: u32, now: u64) -> Ticket {
        Ticket {
            vm,
            context,
            enqueued_at_ms: now,
            cost: 1.0,
        }
    }

    /// A pool driven by hand at time `now`: requests are submitted (on VM 0 unless
    /// told) and run until the test finishes them; the oldest finishes first, as if
    /// every request took as long.
    struct Sim<'a> {
        pool: PoolState,
        limits: Limits<'a>,
        policies: Vec<(&'static str, TenantPolicy)>,
        running: VecDeque<Waiter>,
        next_context: u32,
        now: u64,
    }

    impl<'a> Sim<'a> {
        fn new(limits: Limits<'a>, policies: &[(&'static str, TenantPolicy)]) -> Self {
            Self {
                pool: PoolState::default(),
                limits,
                policies: policies.to_vec(),
                running: VecDeque::new(),
                next_context: 0,
                now: 1_000,
            }
        }

        fn submit(&mut self, tenant: &str) -> Admit {
            self.submit_as(0, tenant, 1.0)
        }

        fn submit_as(&mut self, vm: u32, tenant: &str, cost: f64) -> Admit {
            self.next_context += 1;
            let ticket = Ticket {
                cost,
                ..ticket(vm, self.next_context, self.now)
            };
            let policy = self
                .policies
                .iter()
                .find(|(name, _)| *name == tenant)
                .map_or_else(|| policy(1.0), |(_, p)| p.clone());
            let admission = self.pool.try_admit(tenant, &policy, ticket, &self.limits);
            if admission.admit == Admit::Admitted {
                self.running.push_back(Waiter {
                    tenant: tenant.to_string(),
                    ticket,
                });
            }
            self.running.extend(admission.woken);
            admission.admit
        }

        /// Finishes the running request at `pos`; returns it and the waiters woken.
        fn finish(&mut self, pos: usize) -> (Waiter, Vec<Waiter>) {
            let done = self.running.remove(pos).expect("a running request");
            let released =
                self.pool
                    .release(&done.tenant, done.ticket.vm, 0.0, &self.limits, self.now);
            assert!(released.held, "{done:?} held no slot");
            self.running.extend(released.woken.iter().cloned());
            (done, released.woken)
        }

        fn finish_oldest(&mut self) -> (Waiter, Vec<Waiter>) {
            self.finish(0)
        }

        fn finish_oldest_of(&mut self, tenant: &str) -> (Waiter, Vec<Waiter>) {
            let pos = self.running.iter().position(|w| w.tenant == tenant);
            self.finish(pos.expect("a running request of the tenant"))
        }

        fn keep_backlogged(&mut self, tenant: &str, depth: usize) {
            while self.pool.queued(tenant) < depth {
                self.submit(tenant);
            }
        }

        fn service(&self, tenant: &str) -> f64 {
            self.pool.service(tenant).expect("a tracked tenant")
        }
    }

    fn tenants_of(woken: &[Waiter]) -> Vec<&str> {
        woken.iter().map(|w| w.tenant.as_str()).collect()
    }

    /// Jain's fairness index: 1 when all values are equal, 1/n at worst.
    fn jain(xs: &[f64]) -> f64 {
        let sum: f64 = xs.iter().sum();
        let squares: f64 = xs.iter().map(|x| x * x).sum();
        sum * sum / (xs.len() as f64 * squares)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn weights_1_2_4_share_a_saturated_pool_by_weight() {
        let tenants = [("a", policy(1.0)), ("b", policy(2.0)), ("c", policy(4.0))];
        let mut sim = Sim::new(limits(4), &tenants);
        let mut completed = [0u32; 3];
        for step in 0..14_000 {
            for (name, _) in &tenants {
                sim.keep_backlogged(name, 4);
            }
            let (done, _) = sim.finish_oldest();
            if step >= 1_400 {
                let i = tenants.iter().position(|(n, _)| *n == done.tenant).unwrap();
                completed[i] += 1;
            }
        }
        let total: u32 = completed.iter().sum();
        let mut normalised = Vec::new();
        for (i, (name, p)) in tenants.iter().enumerate() {
            let share = f64::from(completed[i]) / f64::from(total);
            let fair = p.weight / 7.0;
            assert!(
                (share - fair).abs() <= 0.02,
                "{name}: share {share:.4}, weight share {fair:.4}"
            );
            normalised.push(share / fair);
        }
        let index = jain(&normalised);
        assert!(index >= 0.99, "Jain's index {index}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn two_backlogged_tenants_never_differ_by_more_than_twice_the_largest_cost() {
        let tenants = [("a", policy(1.0)), ("b", policy(3.0))];
        let mut sim = Sim::new(limits(3), &tenants);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next_cost = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (1 + (seed >> 33) % 50) as f64
        };
        // The largest weighted cost of a single request: 50 tokens at weight 1.
        let largest = 50.0;
        let mut served = [0.0f64; 2];
        for _ in 0..5_000 {
            for name in ["a", "b"] {
                while sim.pool.queued(name) < 3 {
                    sim.submit_as(0, name, next_cost());
                }
            }
            let (done, _) = sim.finish_oldest();
            served[usize::from(done.tenant == "b")] += done.ticket.cost;
            let gap = (sim.service("a") - sim.service("b")).abs();
            assert!(gap <= 2.0 * largest, "weighted service apart by {gap}");
        }
        let ratio = served[1] / served[0];
        assert!(
            (ratio - 3.0).abs() < 0.1,
            "b received {ratio} times a's tokens"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_returning_idle_tenant_gets_no_banked_credit() {
        let tenants = [("a", policy(1.0)), ("b", policy(1.0))];
        let mut sim = Sim::new(limits(1), &tenants);
        for _ in 0..20 {
            sim.keep_backlogged("a", 2);
            sim.keep_backlogged("b", 2);
            sim.finish_oldest();
        }
        // a goes quiet; b alone is served for a long while.
        for _ in 0..100 {
            sim.keep_backlogged("b", 2);
            sim.finish_oldest();
        }
        assert_eq!(sim.pool.in_flight("a") + sim.pool.queued("a") as u32, 0);
        for _ in 0..15 {
            assert_eq!(sim.submit("a"), Admit::Queued);
        }
        assert_eq!(
            sim.service("a"),
            sim.service("b"),
            "a starts level with the backlogged b"
        );
        let mut to_a = 0;
        for _ in 0..20 {
            sim.keep_backlogged("b", 2);
            let (_, woken) = sim.finish_oldest();
            to_a += tenants_of(&woken).iter().filter(|t| **t == "a").count();
        }
        assert!(
            (9..=11).contains(&to_a),
            "a got {to_a} of 20 slots: it shares, it does not replay its idle time"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn credit_from_an_uncontended_pool_is_not_banked() {
        let mut sim = Sim::new(limits(2), &[]);
        // heavy uses the idle pool alone, one request at a time.
        for _ in 0..40 {
            assert_eq!(sim.submit("heavy"), Admit::Admitted);
            sim.finish_oldest();
        }
        // Saturation: heavy holds both slots; light queues first, then heavy.
        sim.submit("heavy");
        sim.submit("heavy");
        for _ in 0..10 {
            assert_eq!(sim.submit("light"), Admit::Queued);
        }
        for _ in 0..10 {
            assert_eq!(sim.submit("heavy"), Admit::Queued);
        }
        let mut to_light = 0;
        for _ in 0..10 {
            let (_, woken) = sim.finish_oldest();
            to_light += tenants_of(&woken).iter().filter(|t| **t == "light").count();
        }
        assert!(
            to_light <= 6,
            "light took {to_light} of 10 slots for not using an idle pool"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_higher_priority_band_is_always_served_first() {
        let mut high = policy(1.0);
        high.priority = 1;
        let tenants = [("high", high), ("low", policy(100.0))];
        let mut sim = Sim::new(limits(1), &tenants);
        assert_eq!(sim.submit("low"), Admit::Admitted);
        for _ in 0..10 {
            sim.submit("low");
            sim.submit("high");
        }
        for i in 0..10 {
            let (_, woken) = sim.finish_oldest();
            assert_eq!(
                tenants_of(&woken),
                ["high"],
                "slot {i}, whatever the counters"
            );
        }
        let (_, woken) = sim.finish_oldest();
        assert_eq!(tenants_of(&woken), ["low"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_sheddable_tenant_is_refused_only_while_saturated() {
        let mut sheddable = policy(1.0);
        sheddable.priority = -1;
        let tenants = [("free", sheddable)];
        let mut sim = Sim::new(limits(2), &tenants);
        assert_eq!(sim.submit("free"), Admit::Admitted);
        assert_eq!(sim.submit("paid"), Admit::Admitted);
        assert_eq!(sim.submit("free"), Admit::Shed);
        assert_eq!(sim.submit("paid"), Admit::Queued, "others wait");
        assert_eq!(sim.pool.queued("free"), 0, "never queued");
        sim.finish_oldest_of("paid");
        sim.finish_oldest_of("paid");
        assert_eq!(
            sim.submit("free"),
            Admit::Admitted,
            "not saturated any more"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn in_fleet_mode_a_sheddable_request_waits_for_a_spare_slot_a_bounded_time() {
        let mut sheddable = policy(1.0);
        sheddable.priority = -1;
        let mut capped = sheddable.clone();
        capped.max_concurrency = Some(1);
        let tenants = [("free", sheddable), ("batch", capped)];
        let mut sim = Sim::new(limits(2), &tenants);
        sim.limits.sheddable_wait_ms = Some(500);
        assert_eq!(sim.submit("free"), Admit::Admitted);
        assert_eq!(sim.submit("batch"), Admit::Admitted);
        assert_eq!(
            sim.submit("free"),
            Admit::Queued,
            "the fleet has a slot spare"
        );
        assert_eq!(sim.submit("free"), Admit::Queued);
        // The next lease brings a slot: the oldest waiter takes it.
        sim.limits.capacity = 3;
        sim.now += 200;
        let tick = sim.pool.tick(0, &sim.limits, sim.now);
        assert_eq!(tick.reclaimed.woken.len(), 1);
        assert!(tick.shed.is_empty() && tick.expired.is_empty());
        // The other finds none in time: shed, not timed out.
        sim.now += 300;
        let tick = sim.pool.tick(0, &sim.limits, sim.now);
        assert_eq!(tick.shed.len(), 1);
        assert!(tick.expired.is_empty());
        assert_eq!(sim.pool.queued("free"), 0);
        // The fleet saturated: refused at once, and those waiting are shed at the tick.
        assert_eq!(sim.submit("free"), Admit::Queued);
        sim.limits.sheddable_wait_ms = Some(0);
        assert_eq!(sim.submit("free"), Admit::Shed);
        assert_eq!(sim.pool.tick(0, &sim.limits, sim.now).shed.len(), 1);
        // A waiter held back by its own cap, with a slot free, waits on.
        sim.limits.capacity = 4;
        assert_eq!(sim.submit("batch"), Admit::Queued);
        sim.now += 1_000;
        assert!(sim.pool.tick(0, &sim.limits, sim.now).shed.is_empty());
        assert_eq!(sim.pool.queued("batch"), 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn max_concurrency_is_never_exceeded() {
        let mut capped = policy(4.0);
        capped.max_concurrency = Some(2);
        let tenants = [("capped", capped), ("other", policy(1.0))];
        let mut sim = Sim::new(limits(10), &tenants);
        let mut reached = false;
        for _ in 0..500 {
            sim.keep_backlogged("capped", 5);
            sim.keep_backlogged("other", 5);
            let in_flight = sim.pool.in_flight("capped");
            assert!(in_flight <= 2, "capped holds {in_flight}");
            reached |= in_flight == 2;
            assert_eq!(sim.pool.in_use(), 10, "the rest of the pool stays busy");
            sim.finish_oldest();
        }
        assert!(reached);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn min_concurrency_is_reserved_under_a_flood() {
        let reserved = [Reservation {
            tenant: "acme".into(),
            slots: 2,
        }];
        let mut sim = Sim::new(
            Limits {
                reserved: &reserved,
                ..limits(4)
            },
            &[],
        );
        for _ in 0..100 {
            sim.keep_backlogged("flood", 20);
            assert_eq!(sim.pool.in_flight("flood"), 2, "two slots stay for acme");
            sim.finish_oldest();
        }
        assert_eq!(
            sim.submit("acme"),
            Admit::Admitted,
            "no wait behind the flood"
        );
        assert_eq!(sim.submit("acme"), Admit::Admitted);
        // A slot acme gives back stays acme's, though the flood is waiting.
        let (_, woken) = sim.finish_oldest_of("acme");
        assert!(woken.is_empty(), "woken: {woken:?}");
        assert_eq!(sim.submit("acme"), Admit::Admitted);
        assert_eq!(
            sim.submit("acme"),
            Admit::Queued,
            "beyond its reservation acme competes"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn requests_of_one_tenant_are_served_first_come_first_served() {
        let mut sim = Sim::new(limits(1), &[]);
        for _ in 0..6 {
            sim.submit("a");
            sim.now += 1;
        }
        let mut order = Vec::new();
        for _ in 0..5 {
            let (_, woken) = sim.finish_oldest();
            order.extend(woken.iter().map(|w| w.ticket.context));
        }
        assert_eq!(order, [2, 3, 4, 5, 6]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_fifo_baseline_serves_by_arrival_not_by_service() {
        let mut fifo = limits(1);
        fifo.scheduler = Scheduler::Fifo;
        let mut sim = Sim::new(fifo, &[]);
        sim.submit("heavy");
        sim.now += 1;
        for tenant in ["light", "light", "heavy", "light"] {
            sim.submit(tenant);
            sim.now += 1;
        }
        let mut order = Vec::new();
        for _ in 0..4 {
            let (_, woken) = sim.finish_oldest();
            order.extend(woken.into_iter().map(|w| w.tenant));
        }
        assert_eq!(order, ["light", "light", "heavy", "light"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_sending_one_at_a_time_gets_the_next_free_slot_despite_a_flood() {
        let mut sim = Sim::new(limits(4), &[]);
        for _ in 0..100 {
            sim.submit("noisy");
        }
        for round in 0..20 {
            assert_eq!(sim.submit("polite"), Admit::Queued);
            let (_, woken) = sim.finish_oldest();
            assert_eq!(tenants_of(&woken), ["polite"], "round {round}");
            let (_, woken) = sim.finish_oldest_of("polite");
            assert_eq!(tenants_of(&woken), ["noisy"]);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_full_queue_answers_queue_full() {
        let mut sim = Sim::new(
            Limits {
                max_queue_per_tenant: 2,
                ..limits(1)
            },
            &[],
        );
        assert_eq!(sim.submit("a"), Admit::Admitted);
        assert_eq!(sim.submit("a"), Admit::Queued);
        assert_eq!(sim.submit("a"), Admit::Queued);
        assert_eq!(sim.submit("a"), Admit::QueueFull);
        assert_eq!(
            sim.submit("b"),
            Admit::Queued,
            "each tenant has its own queue"
        );
        assert_eq!(sim.pool.queued("a"), 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn waiters_time_out_on_their_own_vm() {
        let mut sim = Sim::new(limits(1), &[]);
        sim.submit_as(0, "a", 1.0);
        sim.submit_as(0, "a", 1.0);
        sim.submit_as(1, "b", 1.0);
        sim.now += 3_000;
        sim.submit_as(0, "a", 1.0);
        sim.now += 2_000;
        let tick = sim.pool.tick(0, &sim.limits, sim.now);
        let expired: Vec<u32> = tick.expired.iter().map(|w| w.ticket.context).collect();
        assert_eq!(
            expired,
            [2],
            "only VM 0's waiter that waited the full timeout"
        );
        let expired = sim.pool.expire(1, sim.now, 5_000);
        assert_eq!(tenants_of(&expired), ["b"]);
        assert_eq!(sim.pool.waiting(), 1);
        assert_eq!(sim.pool.in_use(), 1, "expiry frees no slot");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_cancelled_waiter_is_never_woken() {
        let mut sim = Sim::new(limits(1), &[]);
        sim.submit("a");
        sim.submit("b");
        sim.submit("c");
        let gone = sim.pool.cancel(0, 2).expect("b was waiting");
        assert_eq!(gone.tenant, "b");
        let (_, woken) = sim.finish_oldest();
        assert_eq!(tenants_of(&woken), ["c"]);
        assert_eq!(sim.pool.cancel(0, 2), None, "already gone");
        assert_eq!(
            sim.pool.cancel(0, 3),
            None,
            "woken: it holds a slot the glue releases"
        );
        assert_eq!(sim.pool.in_flight("c"), 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_woken_context_that_vanished_passes_its_slot_on_and_is_refunded() {
        let mut sim = Sim::new(limits(1), &[]);
        sim.submit("a");
        sim.submit("b");
        sim.submit("c");
        let before = sim.service("b");
        let (_, woken) = sim.finish_oldest();
        assert_eq!(tenants_of(&woken), ["b"]);
        assert_eq!(sim.service("b"), before + 1.0, "charged at its grant");
        // b's VM finds the context gone: it releases the slot, refunding the estimate.
        let released = sim.pool.release("b", 0, -1.0, &sim.limits, sim.now);
        assert!(released.held);
        assert_eq!(tenants_of(&released.woken), ["c"]);
        assert_eq!(sim.pool.service("b").unwrap_or(before), before);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn charge_reconciles_service_with_the_real_cost() {
        let tenants = [("a", policy(2.0))];
        let mut sim = Sim::new(limits(1), &tenants);
        sim.submit("a");
        assert_eq!(sim.service("a"), 0.5, "the estimate, divided by the weight");
        assert!(sim.pool.charge("a", 9.0));
        assert_eq!(sim.service("a"), 5.0);
        let released = sim.pool.release("a", 0, 2.0, &sim.limits, sim.now);
        assert!(released.held);
        assert_eq!(sim.service("a"), 6.0, "an idle tenant keeps its debt");
        assert!(!sim.pool.charge("unknown", 1.0));
        assert!(sim.pool.charge("a", f64::NAN), "a cost that is no number");
        assert_eq!(sim.service("a"), 6.0, "counts nothing");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn slots_of_a_vm_that_stopped_renewing_are_reclaimed() {
        let long_wait = Limits {
            queue_timeout_ms: 60_000,
            ..limits(2)
        };
        let mut sim = Sim::new(long_wait, &[]);
        let start = sim.now;
        assert_eq!(sim.submit_as(1, "a", 1.0), Admit::Admitted);
        assert_eq!(sim.submit_as(1, "a", 1.0), Admit::Admitted);
        assert_eq!(sim.submit_as(1, "a", 1.0), Admit::Queued);
        assert_eq!(sim.submit_as(2, "b", 1.0), Admit::Queued);
        assert_eq!(sim.submit_as(2, "b", 1.0), Admit::Queued);
        // VM 2 keeps ticking; VM 1 has died.
        for now in [start + 4_000, start + 8_000] {
            let tick = sim.pool.tick(2, &sim.limits, now);
            assert_eq!(tick.reclaimed, Reclaimed::default());
            assert!(tick.expired.is_empty());
        }
        let tick = sim.pool.tick(2, &sim.limits, start + 10_001);
        let reclaimed = tick.reclaimed;
        assert_eq!(reclaimed.vms, [1]);
        assert_eq!(reclaimed.slots, 2);
        assert_eq!(tenants_of(&reclaimed.dropped), ["a"]);
        assert_eq!(tenants_of(&reclaimed.woken), ["b", "b"]);
        assert_eq!(sim.pool.in_flight("a"), 0);
        assert_eq!(sim.pool.in_flight("b"), 2);
        // VM 1 was only slow after all: its late release frees nothing.
        let late = sim.pool.release("a", 1, 0.0, &sim.limits, start + 10_002);
        assert!(!late.held);
        assert!(late.woken.is_empty());
        assert_eq!(sim.pool.in_use(), 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_vm_that_keeps_ticking_keeps_its_slots() {
        let mut sim = Sim::new(limits(1), &[]);
        sim.submit_as(1, "a", 1.0);
        sim.submit_as(2, "b", 1.0);
        for step in 1..=20 {
            let now = sim.now + step * 3_000;
            for vm in [1, 2] {
                let tick = sim.pool.tick(vm, &sim.limits, now);
                assert!(tick.reclaimed.vms.is_empty(), "at {now}");
            }
        }
        assert_eq!(sim.pool.in_flight("a"), 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_grown_capacity_wakes_waiters_and_a_shrunk_one_waits_for_releases() {
        let mut sim = Sim::new(limits(1), &[]);
        for _ in 0..4 {
            sim.submit("a");
        }
        let tick = sim.pool.tick(0, &limits(3), sim.now);
        assert_eq!(tick.reclaimed.woken.len(), 2);
        assert_eq!(sim.pool.in_use(), 3);
        sim.running.extend(tick.reclaimed.woken);
        sim.limits = limits(1);
        let (_, woken) = sim.finish_oldest();
        assert!(woken.is_empty(), "2 in use of 1");
        let (_, woken) = sim.finish_oldest();
        assert!(woken.is_empty(), "1 in use of 1");
        let (_, woken) = sim.finish_oldest();
        assert_eq!(tenants_of(&woken), ["a"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn nothing_is_left_behind_once_every_request_ends() {
        let tenants = [("a", policy(1.0)), ("b", policy(2.0))];
        let mut sim = Sim::new(limits(3), &tenants);
        for i in 0..60u32 {
            sim.submit_as(i % 3, if i % 2 == 0 { "a" } else { "b" }, 1.0);
        }
        // A third of the clients go away while queued.
        for context in (3..=60).step_by(3) {
            sim.pool.cancel((context - 1) % 3, context);
        }
        while !sim.running.is_empty() {
            sim.finish_oldest();
        }
        assert_eq!(sim.pool.in_use(), 0);
        assert_eq!(sim.pool.waiting(), 0);
        assert!(
            sim.pool.leases.is_empty(),
            "no lease without a slot or waiter"
        );
        assert_eq!(sim.submit("c"), Admit::Admitted);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_pool_tracks_a_bounded_number_of_tenants_and_waiters() {
        let mut pool = PoolState::default();
        let p = policy(1.0);
        let full = limits(0);
        for i in 0..MAX_TENANTS as u32 {
            let a = pool.try_admit(&format!("t{i}"), &p, ticket(0, i, 0), &full);
            assert_eq!(a.admit, Admit::Queued);
        }
        let a = pool.try_admit("one-more", &p, ticket(0, 0, 0), &full);
        assert_eq!(a.admit, Admit::QueueFull, "no room among busy tenants");
        for i in 0..(MAX_WAITERS - MAX_TENANTS) as u32 {
            let a = pool.try_admit("t0", &p, ticket(1, i, 0), &full);
            assert_eq!(a.admit, Admit::Queued);
        }
        let a = pool.try_admit("t1", &p, ticket(1, 0, 0), &full);
        assert_eq!(a.admit, Admit::QueueFull, "the pool's waiters are bounded");
        let bytes = pool.encode();
        assert!(bytes.len() < 250_000, "{} bytes", bytes.len());
        assert_eq!(PoolState::decode(&bytes), Ok(pool));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn idle_tenants_make_room_for_new_ones() {
        let mut pool = PoolState::default();
        let p = policy(1.0);
        let l = limits(1);
        for i in 0..MAX_TENANTS as u32 {
            let a = pool.try_admit(&format!("t{i}"), &p, ticket(0, i, 0), &l);
            assert_eq!(a.admit, Admit::Admitted);
            pool.release(&format!("t{i}"), 0, 0.0, &l, 0);
        }
        let a = pool.try_admit("newcomer", &p, ticket(0, 0, 0), &l);
        assert_eq!(a.admit, Admit::Admitted);
        assert!(pool.tenants.len() <= MAX_TENANTS);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_idle_tenant_without_debt_is_forgotten() {
        let mut sim = Sim::new(limits(1), &[]);
        for tenant in ["a", "a", "a", "b"] {
            sim.submit(tenant);
            sim.finish_oldest();
        }
        assert_eq!(
            sim.pool.service("a"),
            Some(3.0),
            "ahead of the virtual time"
        );
        sim.submit("b");
        sim.finish_oldest();
        // b was granted at counter 3: a returning a would be lifted that far anyway.
        assert_eq!(sim.pool.service("a"), None);
        assert_eq!(
            sim.pool.service("b"),
            Some(4.0),
            "b still owes its last grant"
        );
    }

    /// A pool with two tenants, slots on two VMs, waiters and a virtual time.
    fn sample_pool() -> PoolState {
        let tenants = [("acme", policy(4.0)), ("beta", policy(0.5))];
        let mut sim = Sim::new(limits(2), &tenants);
        sim.submit_as(7, "acme", 3.0);
        sim.submit_as(9, "beta", 1.0);
        sim.submit_as(9, "beta", 2.5);
        sim.submit_as(7, "acme", 1.0);
        sim.finish_oldest();
        sim.pool
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_pool_round_trips_through_bytes() {
        let pool = sample_pool();
        assert!(pool.vtime > 0.0 && pool.leases.len() == 2 && pool.waiting() == 1);
        assert_eq!(PoolState::decode(&pool.encode()), Ok(pool));
        let empty = PoolState::default();
        assert_eq!(PoolState::decode(&empty.encode()), Ok(empty));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn garbage_is_refused_never_misread() {
        let bytes = sample_pool().encode();
        for len in 0..bytes.len() {
            assert!(PoolState::decode(&bytes[..len]).is_err(), "{len} bytes");
        }
        assert_eq!(PoolState::decode(&[]), Err(DecodeError::Empty));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            PoolState::decode(&longer),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut version = bytes.clone();
        version[0] = FORMAT_VERSION + 1;
        assert_eq!(
            PoolState::decode(&version),
            Err(DecodeError::Version(FORMAT_VERSION + 1))
        );
        let mut nan = bytes.clone();
        nan[1..9].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(matches!(
            PoolState::decode(&nan),
            Err(DecodeError::Invalid(_))
        ));
        let mut huge = bytes.clone();
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(PoolState::decode(&huge), Err(DecodeError::Truncated));
        let mut orphan = sample_pool();
        orphan.leases.clear();
        assert!(matches!(
            PoolState::decode(&orphan.encode()),
            Err(DecodeError::Invalid(_))
        ));
        // Random bytes behind a valid version byte: an answer, never a panic.
        let mut seed = 1u64;
        for round in 0..3_000usize {
            let mut junk = vec![FORMAT_VERSION];
            for _ in 0..round % 120 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                junk.push((seed >> 56) as u8);
            }
            let _ = PoolState::decode(&junk);
            let mut flipped = bytes.clone();
            let i = round % flipped.len();
            flipped[i] ^= (seed >> 40) as u8 | 1;
            let _ = PoolState::decode(&flipped);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keys_carry_the_prefix_and_the_cluster() {
        assert_eq!(
            FairQueue::new("fairgate:edge:").key("pool_a"),
            "fairgate:edge:pool.pool_a"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn two_vms_sharing_a_store_see_one_pool() {
        let store = MemoryStore::new();
        let vm1 = FairQueue::new("fairgate:test:");
        let vm2 = FairQueue::new("fairgate:test:");
        let (l, p) = (limits(1), policy(1.0));
        let first = vm1
            .update(&store, "pool_a", |pool| {
                pool.try_admit("acme", &p, ticket(1, 10, 0), &l)
            })
            .unwrap();
        assert_eq!(first.value.admit, Admit::Admitted);
        assert_eq!(first.reset, None);
        let second = vm2
            .update(&store, "pool_a", |pool| {
                pool.try_admit("beta", &p, ticket(2, 20, 1), &l)
            })
            .unwrap();
        assert_eq!(second.value.admit, Admit::Queued, "VM 1's slot is taken");
        let other_pool = vm2
            .update(&store, "pool_b", |pool| {
                pool.try_admit("beta", &p, ticket(2, 21, 1), &l)
            })
            .unwrap();
        assert_eq!(
            other_pool.value.admit,
            Admit::Admitted,
            "pools are separate"
        );
        let released = vm1
            .update(&store, "pool_a", |pool| pool.release("acme", 1, 0.0, &l, 2))
            .unwrap();
        assert_eq!(
            released.value.woken,
            [Waiter {
                tenant: "beta".into(),
                ticket: ticket(2, 20, 1)
            }],
            "VM 1's release wakes VM 2's waiter"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unreadable_stored_pool_is_reset_and_reported() {
        let store = MemoryStore::new();
        let fq = FairQueue::new("p:");
        store.set(&fq.key("pool_a"), b"\x07garbage", None).unwrap();
        let (l, p) = (limits(1), policy(1.0));
        let admit = |store: &MemoryStore| {
            fq.update(store, "pool_a", |pool| {
                pool.try_admit("acme", &p, ticket(0, 1, 0), &l).admit
            })
            .unwrap()
        };
        let first = admit(&store);
        assert_eq!(first.value, Admit::Admitted);
        assert_eq!(first.reset, Some(DecodeError::Version(7)));
        let second = admit(&store);
        assert_eq!(second.value, Admit::Queued, "the reset pool was stored");
        assert_eq!(second.reset, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_operation_that_changes_nothing_writes_nothing() {
        let store = MemoryStore::new();
        let fq = FairQueue::new("p:");
        let l = limits(1);
        fq.update(&store, "pool_a", |pool| {
            pool.try_admit("acme", &policy(1.0), ticket(0, 1, 0), &l)
        })
        .unwrap();
        let before = store.get(&fq.key("pool_a")).unwrap();
        let cancelled = fq
            .update(&store, "pool_a", |pool| pool.cancel(0, 99))
            .unwrap();
        assert_eq!(cancelled.value, None);
        assert_eq!(store.get(&fq.key("pool_a")).unwrap(), before);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reservations_follow_the_tenants_pinning() {
        let pinned = TenantPolicy {
            min_concurrency: Some(2),
            cluster: Some("acme_dedicated".into()),
            ..policy(4.0)
        };
        let roaming = TenantPolicy {
            min_concurrency: Some(1),
            ..policy(1.0)
        };
        let tenants = Tenants {
            by_name: BTreeMap::from([
                ("acme".into(), pinned.into()),
                ("beta".into(), roaming.into()),
                ("free".into(), policy(1.0).into()),
            ]),
            default_tenant: None,
            claim_label: None,
            claim_clusters: Vec::new(),
        };
        let slots = |cluster: &str, shared: bool| -> Vec<(String, u32)> {
            reservations(&tenants, cluster, shared)
                .into_iter()
                .map(|r| (r.tenant, r.slots))
                .collect()
        };
        assert_eq!(slots("acme_dedicated", false), [("acme".to_string(), 2)]);
        assert_eq!(slots("pool_a", true), [("beta".to_string(), 1)]);
        assert!(slots("elsewhere", false).is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn live_capacity_is_capped_by_the_configured_maximum() {
        let pool = PoolConfig {
            max_concurrency: 64,
            queue_timeout_ms: 30_000,
            max_queue_per_tenant: 256,
            scheduler: Scheduler::Fair,
        };
        assert_eq!(Limits::new(&pool, None, &[]).capacity, 64);
        assert_eq!(Limits::new(&pool, Some(48), &[]).capacity, 48);
        assert_eq!(Limits::new(&pool, Some(100), &[]).capacity, 64);
    }
}
