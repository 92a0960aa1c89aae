//! The leasing logic over the in-memory store, on a hand-driven clock: simulated
//! filters poll every 100 ms and offer load every 10 ms.

use std::sync::Arc;
use std::time::Duration;

use fairgate_wire::fleet::{BudgetKind, FleetState, OutageMode};

use crate::fleet::clock::{Clock, ManualClock};
use crate::fleet::manager::FleetManager;
use crate::fleet::memory::MemoryStore;
use crate::fleet::store::StoreError;
use crate::fleet::testkit::{manager, FilterSim, TENANT};

const POLL_MS: u64 = 100;
const TIMEOUT: Duration = Duration::from_millis(50);
const ENVOY_TTL: Duration = Duration::from_millis(1000);

struct Fleet {
    clock: ManualClock,
    store: MemoryStore,
    sidecars: Vec<FleetManager<MemoryStore>>,
}

impl Fleet {
    fn new(sidecars: usize) -> Self {
        let clock = ManualClock::default();
        // Not at 0: a lease expiring "at 0" would read as never leased.
        clock.advance_ms(1_000);
        let store = MemoryStore::new(Arc::new(clock.clone()));
        let sidecars = (0..sidecars)
            .map(|i| {
                manager(
                    store.clone(),
                    Arc::new(clock.clone()),
                    &format!("sidecar-{i}"),
                    TIMEOUT,
                    ENVOY_TTL,
                )
            })
            .collect();
        Self {
            clock,
            store,
            sidecars,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    async fn tick(&self) {
        for sidecar in &self.sidecars {
            sidecar.tick().await;
        }
    }
}

/// Runs `filters` (filter i polls sidecar i % n) for `ms`, each offering `offer` per
/// 10 ms step; returns what they admitted.
async fn run(fleet: &Fleet, filters: &mut [FilterSim], ms: u64, offer: u64) -> u64 {
    let mut admitted = 0;
    for step in 0..ms / 10 {
        for (i, filter) in filters.iter_mut().enumerate() {
            // Polls staggered over the period, as independent Envoys would be.
            if (step * 10 + i as u64 * 10).is_multiple_of(POLL_MS) {
                let sidecar = &fleet.sidecars[i % fleet.sidecars.len()];
                filter.round(sidecar, fleet.now()).await;
            }
            admitted += filter.offer(offer, fleet.now());
        }
        if step % 10 == 0 {
            fleet.tick().await;
        }
        fleet.clock.advance_ms(10);
    }
    admitted
}

#[tokio::test]
async fn two_sidecars_never_grant_more_than_rate_times_t_plus_burst_and_grant_95_percent() {
    let fleet = Fleet::new(2);
    let (rate, burst) = (100.0, 50.0);
    let mut filters: Vec<FilterSim> = (0..4)
        .map(|i| FilterSim::new(&format!("envoy-{i}"), POLL_MS, rate, burst))
        .collect();
    let start = fleet.now();
    let mut admitted = 0;
    // Checked every second: the bound holds over every window from the start.
    for _ in 0..10 {
        admitted += run(&fleet, &mut filters, 1_000, 3).await; // 4 × 300/s offered
        let t = (fleet.now() - start) as f64 / 1000.0;
        let granted: u64 = filters.iter().map(|f| f.granted).sum();
        assert!(
            granted as f64 <= rate * t + burst,
            "granted {granted} > {rate} × {t} + {burst}"
        );
    }
    let allowed = rate * 10.0 + burst;
    eprintln!(
        "allowed {allowed}, admitted {admitted} ({:.1} %)",
        100.0 * admitted as f64 / allowed
    );
    assert!(
        admitted as f64 >= 0.95 * allowed,
        "admitted {admitted} of {allowed}"
    );
    assert_eq!(fleet.sidecars[0].replicas(), 4);
}

#[tokio::test]
async fn load_moving_to_another_envoy_reaches_the_rate_within_a_few_polls() {
    let fleet = Fleet::new(2);
    let mut filters: Vec<FilterSim> = (0..2)
        .map(|i| FilterSim::new(&format!("envoy-{i}"), POLL_MS, 100.0, 50.0))
        .collect();
    // All the load on envoy-0 for 2 s (5 × the rate), then all on envoy-1.
    run(&fleet, &mut filters[..1], 2_000, 5).await;
    filters[0].demand = false;
    let mut per_poll = Vec::new();
    for _ in 0..10 {
        let spent = filters[1].spent;
        filters[0].offer(0, fleet.now());
        filters[0].round(&fleet.sidecars[0], fleet.now()).await;
        filters[1].round(&fleet.sidecars[1], fleet.now()).await;
        for _ in 0..10 {
            filters[1].offer(5, fleet.now());
            fleet.clock.advance_ms(10);
        }
        fleet.tick().await;
        per_poll.push(filters[1].spent - spent);
    }
    // The rate is 10 per 100 ms: from the fourth poll after the move, at least 90 %.
    assert!(
        per_poll[3..].iter().all(|&n| n >= 9),
        "admitted per poll after the move: {per_poll:?}"
    );
}

#[tokio::test]
async fn a_lost_answer_is_repeated_and_a_repeated_answer_is_applied_once() {
    let fleet = Fleet::new(1);
    let sidecar = &fleet.sidecars[0];
    let mut filter = FilterSim::new("envoy-0", POLL_MS, 100.0, 50.0);
    let lost = sidecar.poll(&filter.poll()).await;
    let first = lost.tenants[TENANT].requests.clone().unwrap();
    assert_eq!(first.grants.len(), 1);
    fleet.clock.advance_ms(POLL_MS);
    // Same totals again: the grant comes back, with the same seq and amount.
    let again = sidecar.poll(&filter.poll()).await;
    let repeated = again.tenants[TENANT].requests.clone().unwrap();
    assert_eq!(repeated.grants[0], first.grants[0]);
    filter.apply(&again, fleet.now());
    filter.apply(&again, fleet.now());
    filter.apply(&lost, fleet.now());
    let sum: u64 = repeated.grants.iter().map(|g| g.amount).sum();
    assert_eq!(filter.allowance, sum, "each grant applied once");
    // Acknowledged grants are not sent again.
    fleet.clock.advance_ms(POLL_MS);
    let next = sidecar.poll(&filter.poll()).await;
    let lease = next.tenants[TENANT].requests.clone().unwrap();
    assert!(
        lease.grants.iter().all(|g| g.seq > filter.applied),
        "{lease:?}"
    );
}

#[tokio::test]
async fn outage_spends_held_leases_then_follows_the_mode_and_is_exact_within_two_polls() {
    for mode in [OutageMode::Safe, OutageMode::Open, OutageMode::Closed] {
        let fleet = Fleet::new(1);
        let sidecar = &fleet.sidecars[0];
        let mut filter = FilterSim::new("envoy-0", POLL_MS, 100.0, 50.0);
        filter.outage = mode;
        run(&fleet, std::slice::from_mut(&mut filter), 500, 1).await;
        assert_eq!(filter.state, Some(FleetState::Exact));

        fleet
            .store
            .set_failing(Some(StoreError::Unreachable("refused".into())));
        fleet.clock.advance_ms(POLL_MS);
        fleet.tick().await; // the heartbeat fails
        filter.round(sidecar, fleet.now()).await;
        let held_until = filter.expires_at_ms;
        assert_eq!(filter.state, Some(FleetState::outage(mode)));
        assert!(!sidecar.store_up());
        // The lease is no longer renewed: it runs out, then the mode applies.
        fleet.clock.advance_ms(POLL_MS);
        filter.round(sidecar, fleet.now()).await;
        assert_eq!(filter.expires_at_ms, held_until, "not renewed in an outage");
        fleet.clock.advance_ms(3 * POLL_MS);
        assert_eq!(filter.offer(1, fleet.now()), 0, "expired");

        fleet.store.set_failing(None);
        fleet.clock.advance_ms(POLL_MS);
        fleet.tick().await; // the heartbeat finds the store back
        filter.round(sidecar, fleet.now()).await;
        assert_eq!(filter.state, Some(FleetState::Exact), "{mode:?}");
        assert_eq!(filter.offer(1, fleet.now()), 1, "granted again");
    }
}

#[tokio::test]
async fn a_slow_store_is_an_outage() {
    let fleet = Fleet::new(1);
    let mut filter = FilterSim::new("envoy-0", POLL_MS, 100.0, 50.0);
    fleet.store.set_delay(TIMEOUT * 3);
    filter.round(&fleet.sidecars[0], fleet.now()).await;
    assert_eq!(filter.state, Some(FleetState::Safe));
    assert_eq!(filter.granted, 0);
}

#[tokio::test]
async fn a_replica_that_stops_polling_is_forgotten_and_its_share_returns() {
    let fleet = Fleet::new(2);
    // A bucket that does not refill, so every change is a grant or a return.
    let mut a = FilterSim::new("envoy-a", POLL_MS, 0.0, 100.0);
    let mut b = FilterSim::new("envoy-b", POLL_MS, 0.0, 100.0);
    a.round(&fleet.sidecars[0], fleet.now()).await;
    b.round(&fleet.sidecars[1], fleet.now()).await;
    fleet.tick().await;
    fleet.tick().await;
    assert_eq!(fleet.sidecars[0].replicas(), 2);
    let held = (a.granted + b.granted) as f64;
    assert!(b.granted > 0);
    assert_eq!(
        fleet.store.level(TENANT, BudgetKind::Requests),
        Some(100.0 - held)
    );

    // b's Envoy dies holding its allowance; a stays, idle, and lets its lease expire.
    a.demand = false;
    for _ in 0..12 {
        fleet.clock.advance_ms(POLL_MS);
        a.offer(0, fleet.now());
        a.round(&fleet.sidecars[0], fleet.now()).await;
        fleet.tick().await;
    }
    assert_eq!(fleet.sidecars[0].replicas(), 1, "b left the fleet");
    assert_eq!(
        fleet.store.level(TENANT, BudgetKind::Requests),
        Some(100.0),
        "a's expired allowance and b's abandoned one are back"
    );
}

#[tokio::test]
async fn unspent_grants_expired_at_the_filter_go_back_and_debt_is_charged() {
    let fleet = Fleet::new(1);
    let sidecar = &fleet.sidecars[0];
    // A bucket that does not refill, so every change is a return or a charge.
    let mut filter = FilterSim::new("envoy-0", POLL_MS, 0.0, 100.0);
    filter.round(sidecar, fleet.now()).await;
    let held = filter.allowance;
    assert!(held > 0);
    let level = fleet
        .store
        .level(TENANT, BudgetKind::Requests)
        .unwrap_or(0.0);
    assert_eq!(level, 100.0 - held as f64);

    filter.demand = false;
    fleet.clock.advance_ms(10 * POLL_MS);
    assert_eq!(filter.offer(0, fleet.now()), 0);
    assert_eq!(filter.expired, held, "dropped at expiry");
    filter.debt = 7;
    filter.round(sidecar, fleet.now()).await;
    let level = fleet
        .store
        .level(TENANT, BudgetKind::Requests)
        .unwrap_or(0.0);
    assert_eq!(level, 100.0 - 7.0, "returned, and the debt charged");
}

#[tokio::test]
async fn shutdown_hands_back_what_is_held_once_the_leases_have_expired() {
    let fleet = Fleet::new(1);
    let sidecar = &fleet.sidecars[0];
    let mut filter = FilterSim::new("envoy-0", POLL_MS, 0.0, 100.0);
    filter.round(sidecar, fleet.now()).await;
    assert!(filter.allowance > 0);
    let wait = sidecar.drain().await;
    assert!(wait >= Duration::from_millis(3 * POLL_MS), "{wait:?}");
    fleet.clock.advance_ms(POLL_MS);
    filter.round(sidecar, fleet.now()).await;
    assert_eq!(
        filter.granted, filter.allowance,
        "no new grant while draining"
    );
    fleet.clock.advance_ms(wait.as_millis() as u64);
    sidecar.shutdown().await;
    assert_eq!(fleet.store.level(TENANT, BudgetKind::Requests), Some(100.0));
}

#[tokio::test]
async fn a_restarted_envoy_hands_back_its_old_allowance() {
    let fleet = Fleet::new(1);
    let sidecar = &fleet.sidecars[0];
    let mut filter = FilterSim::new("envoy-0", POLL_MS, 0.0, 100.0);
    filter.round(sidecar, fleet.now()).await;
    let held = filter.allowance;
    let mut restarted = FilterSim::new("envoy-0", POLL_MS, 0.0, 100.0);
    restarted.boot = "boot-2".into();
    restarted.demand = false;
    fleet.clock.advance_ms(POLL_MS);
    restarted.round(sidecar, fleet.now()).await;
    fleet.tick().await;
    assert!(held > 0);
    assert_eq!(fleet.store.level(TENANT, BudgetKind::Requests), Some(100.0));
}

#[tokio::test]
async fn a_store_that_lost_its_data_is_not_charged_for_what_was_granted_before() {
    let fleet = Fleet::new(1);
    let sidecar = &fleet.sidecars[0];
    // A bucket that does not refill: what the new store holds shows every charge.
    let mut a = FilterSim::new("envoy-a", POLL_MS, 0.0, 100.0);
    let mut b = FilterSim::new("envoy-b", POLL_MS, 0.0, 100.0);
    a.round(sidecar, fleet.now()).await;
    sidecar.tick().await;
    let held_a = a.allowance;
    assert!(held_a > 0);
    // Redis restarts empty: a new epoch, seen on the next tick.
    fleet.store.lose_data();
    sidecar.tick().await;
    b.round(sidecar, fleet.now()).await;
    let held_b = b.allowance;
    assert!(held_b > 0);
    // A spends what it held from the old store and reports it.
    let granted_a = a.granted;
    assert_eq!(a.offer(held_a, fleet.now()), held_a);
    fleet.clock.advance_ms(POLL_MS);
    a.round(sidecar, fleet.now()).await;
    let new_a = a.granted - granted_a;
    // The new store holds B's grants and A's new ones: A's spending of the old store's
    // grants freed nothing of B's in it.
    let held = fleet.store.held(TENANT, BudgetKind::Requests);
    assert_eq!(held, Some((held_b + new_a) as f64));
    let level = fleet.store.level(TENANT, BudgetKind::Requests);
    assert_eq!(level, Some(100.0 - (held_b + new_a) as f64));
}
