//! A pool's slots over the in-memory store, on a hand-driven clock: simulated Envoys
//! with closed-loop tenants (each keeps `clients` requests outstanding), a local
//! weighted-fair order with the scales the sidecar hands out, polls every 100 ms.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fairgate_wire::fleet::{FleetPoll, OutageMode, PoolReport, PoolTenant};

use crate::fleet::clock::{Clock, ManualClock};
use crate::fleet::manager::FleetManager;
use crate::fleet::memory::MemoryStore;
use crate::fleet::store::StoreError;
use crate::fleet::testkit::manager;

const POLL_MS: u64 = 100;
const SERVICE_MS: u64 = 50;
const POOL: &str = "shared";

#[derive(Debug, Clone, Default)]
struct Tenant {
    weight: f64,
    clients: u32,
    /// Virtual counter of the local fair order.
    counter: f64,
    /// Completion times of the requests in flight.
    running: Vec<u64>,
    completed: u64,
}

/// One Envoy's pool: admits in weighted-fair order (scaled weights) up to its slots.
struct EnvoySim {
    name: String,
    capacity: u32,
    limit: u32,
    lease_until: u64,
    replicas: u32,
    scales: BTreeMap<String, f64>,
    tenants: BTreeMap<String, Tenant>,
}

impl EnvoySim {
    fn new(name: &str, capacity: u32, tenants: &[(&str, f64, u32)]) -> Self {
        Self {
            name: name.to_string(),
            capacity,
            limit: 0,
            lease_until: 0,
            replicas: 1,
            scales: BTreeMap::new(),
            tenants: tenants
                .iter()
                .map(|(n, w, c)| {
                    let t = Tenant {
                        weight: *w,
                        clients: *c,
                        ..Tenant::default()
                    };
                    (n.to_string(), t)
                })
                .collect(),
        }
    }

    fn in_flight(&self) -> u32 {
        self.tenants.values().map(|t| t.running.len() as u32).sum()
    }

    /// As the filter: its lease while it lives; before a first answer, none;
    /// after, capacity ÷ N.
    fn slots(&self, now_ms: u64) -> u32 {
        if now_ms < self.lease_until {
            self.limit
        } else if self.lease_until == 0 {
            0
        } else {
            fairgate_wire::fleet::outage_share(self.capacity, self.replicas)
        }
    }

    fn step(&mut self, now_ms: u64) {
        for t in self.tenants.values_mut() {
            let before = t.running.len();
            t.running.retain(|done| *done > now_ms);
            t.completed += (before - t.running.len()) as u64;
        }
        while self.in_flight() < self.slots(now_ms) {
            let scales = &self.scales;
            let next = self
                .tenants
                .iter_mut()
                .filter(|(_, t)| (t.running.len() as u32) < t.clients)
                .min_by(|a, b| a.1.counter.total_cmp(&b.1.counter));
            let Some((name, t)) = next else { break };
            let scale = scales.get(name).copied().unwrap_or(1.0);
            t.counter += 1.0 / (t.weight * scale);
            t.running.push(now_ms + SERVICE_MS);
        }
    }

    fn poll(&self) -> FleetPoll {
        let tenants = self
            .tenants
            .iter()
            .filter(|(_, t)| t.clients > 0)
            .map(|(n, t)| {
                let in_flight = t.running.len() as u32;
                let demand = PoolTenant {
                    weight: t.weight,
                    priority: 0,
                    queued: t.clients - in_flight,
                    in_flight,
                };
                (n.clone(), demand)
            })
            .collect();
        let report = PoolReport {
            capacity: self.capacity,
            in_flight: self.in_flight(),
            limit: self.limit,
            reserved: 0,
            reservations: BTreeMap::new(),
            tenants,
        };
        FleetPoll {
            envoy: self.name.clone(),
            boot: "boot".into(),
            outage: OutageMode::Safe,
            poll_ms: POLL_MS,
            tenants: BTreeMap::new(),
            pools: [(POOL.to_string(), report)].into_iter().collect(),
        }
    }

    async fn round(&mut self, sidecar: &FleetManager<MemoryStore>, now_ms: u64) {
        let answer = sidecar.poll(&self.poll()).await;
        self.replicas = answer.replicas;
        if let Some(lease) = answer.pools.get(POOL) {
            self.limit = lease.slots;
            self.lease_until = now_ms + lease.expires_in_ms;
            self.scales = lease.weights.clone();
        }
    }
}

struct Sim {
    clock: ManualClock,
    store: MemoryStore,
    sidecars: Vec<FleetManager<MemoryStore>>,
    envoys: Vec<EnvoySim>,
    /// The most requests in flight at once, all Envoys together.
    peak: u32,
    /// Per Envoy: its sidecar is gone (it polls no more; the sidecar ticks no more).
    cut_off: Vec<bool>,
}

impl Sim {
    fn new(envoys: Vec<EnvoySim>) -> Self {
        let clock = ManualClock::default();
        clock.advance_ms(1_000);
        let store = MemoryStore::new(Arc::new(clock.clone()));
        let sidecars = (0..envoys.len())
            .map(|i| {
                let name = format!("sidecar-{i}");
                let (timeout, ttl) = (Duration::from_millis(50), Duration::from_millis(1_000));
                manager(store.clone(), Arc::new(clock.clone()), &name, timeout, ttl)
            })
            .collect();
        Self {
            clock,
            store,
            sidecars,
            cut_off: vec![false; envoys.len()],
            envoys,
            peak: 0,
        }
    }

    async fn run(&mut self, ms: u64) {
        for step in 0..ms / 10 {
            let now = self.clock.now_ms();
            for (i, envoy) in self.envoys.iter_mut().enumerate() {
                if !self.cut_off[i] && (step * 10 + i as u64 * 30).is_multiple_of(POLL_MS) {
                    envoy.round(&self.sidecars[i], now).await;
                }
                envoy.step(now);
            }
            let in_flight: u32 = self.envoys.iter().map(EnvoySim::in_flight).sum();
            self.peak = self.peak.max(in_flight);
            if step % 10 == 0 {
                for (sidecar, cut_off) in self.sidecars.iter().zip(&self.cut_off) {
                    if !cut_off {
                        sidecar.tick().await;
                    }
                }
            }
            self.clock.advance_ms(10);
        }
    }

    fn completed(&self) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for envoy in &self.envoys {
            for (name, t) in &envoy.tenants {
                *out.entry(name.clone()).or_default() += t.completed;
            }
        }
        out
    }
}

fn shares(completed: &BTreeMap<String, u64>) -> BTreeMap<String, f64> {
    let total: u64 = completed.values().sum();
    completed
        .iter()
        .map(|(n, c)| (n.clone(), *c as f64 / total as f64))
        .collect()
}

#[tokio::test]
async fn weights_hold_fleet_wide_when_tenants_reach_different_envoys() {
    // A (1) only at e0, C (4) only at e1, B (2) at both.
    let mut sim = Sim::new(vec![
        EnvoySim::new("e0", 14, &[("a", 1.0, 20), ("b", 2.0, 10)]),
        EnvoySim::new("e1", 14, &[("b", 2.0, 10), ("c", 4.0, 20)]),
    ]);
    sim.run(1_000).await;
    let warm = sim.completed();
    sim.run(10_000).await;
    let done: BTreeMap<String, u64> = sim
        .completed()
        .into_iter()
        .map(|(n, c)| (n.clone(), c - warm[&n]))
        .collect();
    let s = shares(&done);
    eprintln!("completed {done:?}, shares {s:?}, peak {}", sim.peak);
    for (tenant, want) in [("a", 1.0 / 7.0), ("b", 2.0 / 7.0), ("c", 4.0 / 7.0)] {
        assert!((s[tenant] - want).abs() < 0.03, "{tenant}: {s:?}");
    }
    assert!(sim.peak <= 14, "{} in flight at once", sim.peak);
    // 14 slots of 50 ms for 10 s: 2,800 at most; 90 % of it served.
    let total: u64 = done.values().sum();
    assert!(total >= 2_520, "{total} served");
}

#[tokio::test]
async fn an_idle_envoy_gives_its_slots_up_and_the_busy_one_gets_the_whole_pool() {
    let mut sim = Sim::new(vec![
        EnvoySim::new("e0", 10, &[("a", 1.0, 30)]),
        EnvoySim::new("e1", 10, &[("b", 1.0, 30)]),
    ]);
    sim.run(2_000).await;
    assert_eq!(sim.envoys[0].limit + sim.envoys[1].limit, 10);
    assert_eq!(sim.envoys[0].limit, 5, "equal demand, equal halves");
    sim.envoys[1].tenants.get_mut("b").unwrap().clients = 0;
    // Within two polls and the requests' end, e0 holds the whole pool.
    sim.run(2 * POLL_MS + SERVICE_MS + 10).await;
    assert_eq!(sim.envoys[0].limit, 10);
    assert!(sim.peak <= 10, "{} in flight at once", sim.peak);
}

#[tokio::test]
async fn while_the_store_is_down_each_envoy_runs_under_capacity_over_n_then_leases_again() {
    let mut sim = Sim::new(vec![
        EnvoySim::new("e0", 12, &[("a", 1.0, 30)]),
        EnvoySim::new("e1", 12, &[("b", 1.0, 30)]),
        EnvoySim::new("e2", 12, &[]),
    ]);
    sim.run(2_000).await;
    sim.store
        .set_failing(Some(StoreError::Unreachable("down".into())));
    // Leases run out (three polls), then capacity ÷ 3 each.
    sim.run(1_000).await;
    let now = sim.clock.now_ms();
    assert!(sim.envoys.iter().all(|e| e.slots(now) == 4));
    sim.store.set_failing(None);
    sim.run(1_000).await;
    let now = sim.clock.now_ms();
    let slots: Vec<u32> = sim.envoys.iter().map(|e| e.slots(now)).collect();
    assert_eq!(slots, vec![6, 6, 0], "leases again");
    assert!(sim.peak <= 12, "{} in flight at once", sim.peak);
}

#[tokio::test]
async fn an_envoy_cut_off_from_its_sidecar_keeps_its_outage_share_and_the_others_leave_it_room() {
    let mut sim = Sim::new(vec![
        EnvoySim::new("e0", 12, &[("a", 1.0, 30)]),
        EnvoySim::new("e1", 12, &[("b", 1.0, 30)]),
    ]);
    sim.run(2_000).await;
    // e0's sidecar dies: e0 polls no more and, its lease lapsed, runs under 12 ÷ 2.
    sim.cut_off[0] = true;
    sim.run(10_000).await;
    let now = sim.clock.now_ms();
    assert_eq!(sim.envoys[0].slots(now), 6);
    assert_eq!(sim.envoys[1].limit, 6, "e0's share left to it");
    assert!(sim.peak <= 12, "{} in flight at once", sim.peak);
    // e0 is gone for good: once its claim has been silent for the silent period
    // (30 s), e1 gets the whole pool.
    sim.envoys[0].tenants.get_mut("a").unwrap().clients = 0;
    sim.run(18_000).await;
    assert_eq!(sim.envoys[1].limit, 6, "still silent");
    sim.run(3_000).await;
    assert_eq!(sim.envoys[1].limit, 12);
    assert!(sim.peak <= 12, "{} in flight at once", sim.peak);
}
