//! A pool's slots shared out among the Envoys of the fleet (SPEC 9): the arithmetic,
//! apart from where the reports live.
//!
//! Every Envoy reports, per pool, the tenants with requests queued or in flight there
//! (weight, band, backlog). From every live Envoy's report:
//!
//! - **Weights split by backlog.** A tenant queued at several Envoys counts at each
//!   the part of its weight that its backlog there is of its backlog fleet-wide. An
//!   Envoy's demand is the sum of its tenants' parts, and the same parts order the
//!   tenants inside it (the filter scales their weights by them), so that the fleet's
//!   shares follow the configured weights however the tenants reach it.
//! - **Reservations first.** Each tenant's `min_concurrency` is split among the
//!   Envoys (by its backlog at each, evenly while it is idle; whole slots summing to
//!   it); each Envoy's pool keeps its part free for the tenant, and the parts not in
//!   use are leased before any backlog is served.
//! - **Bands next.** The highest band with a backlog anywhere is served first: its
//!   demand is water-filled over the Envoys (each gets capacity in proportion to its
//!   demand, up to its backlog in that band; what one cannot use goes to the others),
//!   then the next band gets what is left, down to the sheddable ones.
//! - **Work conservation.** What no backlog wants is split evenly among the Envoys, so
//!   a request arriving anywhere finds a slot at once while the pool is not saturated;
//!   an Envoy whose tenants went idle keeps only that even part.
//! - **Spare slots.** What no tenant of a band ≥ 0 wants is told to every Envoy
//!   (`spare`): while there is some, the pool is not saturated, and a sheddable
//!   request that finds its Envoy's part full waits for the next leases (its backlog
//!   there wants the spare slots) instead of being refused.
//! - Targets are whole slots summing to the capacity (largest remainders, ties by
//!   name).
//!
//! A target is what an Envoy should hold; what it may take now is the store's
//! business ([`super::store::FleetStore::claim_slots`]): never more than the capacity
//! less what the others hold, so a slot moves only once the Envoy giving it up has it
//! free.

use std::collections::BTreeMap;

use fairgate_wire::fleet::PoolReport;

use super::store::SlotClaim;

/// One pool's share-out among the Envoys reporting it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    /// Per Envoy, the slots it should hold.
    pub targets: BTreeMap<String, u32>,
    /// Per Envoy and tenant queued at several Envoys, the part of its weight counting
    /// there.
    pub scales: BTreeMap<String, BTreeMap<String, f64>>,
    /// Per Envoy, its part of each tenant's `min_concurrency`.
    pub reserved: BTreeMap<String, BTreeMap<String, u32>>,
    /// Whole slots no tenant of a band ≥ 0 wants, by backlog or reservation: what
    /// sheddable requests may still have (the pool is saturated at 0).
    pub spare: u32,
}

/// Shares `capacity` slots among `reports` (per Envoy, its report of the pool).
pub fn allocate(capacity: u32, reports: &BTreeMap<String, PoolReport>) -> Allocation {
    let mut fleet_backlog: BTreeMap<&str, f64> = BTreeMap::new();
    for report in reports.values() {
        for (tenant, t) in &report.tenants {
            *fleet_backlog.entry(tenant).or_default() += f64::from(t.backlog());
        }
    }
    let mut scales: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    // Per band (highest first), per Envoy: (demand, backlog).
    let mut bands: BTreeMap<std::cmp::Reverse<i32>, BTreeMap<&str, (f64, f64)>> = BTreeMap::new();
    for (envoy, report) in reports {
        for (tenant, t) in &report.tenants {
            let backlog = f64::from(t.backlog());
            let total = fleet_backlog.get(tenant.as_str()).copied().unwrap_or(0.0);
            if backlog <= 0.0 || total <= 0.0 || !(t.weight.is_finite() && t.weight > 0.0) {
                continue;
            }
            let scale = (backlog / total).min(1.0);
            if scale < 1.0 {
                scales
                    .entry(envoy.clone())
                    .or_default()
                    .insert(tenant.clone(), scale);
            }
            let entry = bands
                .entry(std::cmp::Reverse(t.priority))
                .or_default()
                .entry(envoy.as_str())
                .or_default();
            entry.0 += t.weight * scale;
            entry.1 += backlog;
        }
    }
    let mut shares: BTreeMap<&str, f64> = reports.keys().map(|e| (e.as_str(), 0.0)).collect();
    let mut left = f64::from(capacity);
    let reserved = split_reservations(reports, &fleet_backlog);
    // Reservations not in use first (in proportion, where they exceed the capacity).
    let unused: BTreeMap<&str, f64> = reports
        .iter()
        .map(|(envoy, report)| {
            let parts = reserved.get(envoy);
            let free = match parts {
                Some(parts) => parts
                    .iter()
                    .map(|(t, n)| {
                        let backlog = report.tenants.get(t).map_or(0, |d| d.backlog());
                        f64::from(n.saturating_sub(backlog))
                    })
                    .sum(),
                // A report without its reservations: what it says it keeps free.
                None => f64::from(report.reserved),
            };
            (envoy.as_str(), free)
        })
        .collect();
    let total: f64 = unused.values().sum();
    if total > 0.0 {
        let part = (left / total).min(1.0);
        for (envoy, free) in &unused {
            let given = free * part;
            *shares.entry(envoy).or_default() += given;
            left -= given;
        }
    }
    let mut spare = None;
    for (band, demand) in &bands {
        if band.0 < 0 && spare.is_none() {
            spare = Some(left);
        }
        left -= water_fill(left, demand, &mut shares);
        if left <= 0.0 {
            break;
        }
    }
    let spare = spare.unwrap_or(left).clamp(0.0, f64::from(capacity));
    if left > 0.0 && !shares.is_empty() {
        let even = left / shares.len() as f64;
        for share in shares.values_mut() {
            *share += even;
        }
    }
    Allocation {
        targets: whole_slots(capacity, &shares),
        scales,
        reserved,
        // Whole slots; the 1e-9 absorbs the water fill's rounding.
        spare: (spare + 1e-9).floor() as u32,
    }
}

/// Each tenant's `min_concurrency` (the largest any Envoy reports) split among the
/// Envoys: by its backlog at each where it has one anywhere, else evenly; whole slots
/// summing to it.
fn split_reservations(
    reports: &BTreeMap<String, PoolReport>,
    fleet_backlog: &BTreeMap<&str, f64>,
) -> BTreeMap<String, BTreeMap<String, u32>> {
    let mut minimum: BTreeMap<&str, u32> = BTreeMap::new();
    for report in reports.values() {
        for (tenant, m) in &report.reservations {
            let entry = minimum.entry(tenant.as_str()).or_default();
            *entry = (*entry).max(*m);
        }
    }
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for (tenant, m) in minimum {
        let total = fleet_backlog.get(tenant).copied().unwrap_or(0.0);
        let parts: BTreeMap<&str, f64> = reports
            .iter()
            .map(|(envoy, r)| {
                let part = if total > 0.0 {
                    let here = r.tenants.get(tenant).map_or(0, |d| d.backlog());
                    f64::from(m) * f64::from(here) / total
                } else {
                    f64::from(m) / reports.len() as f64
                };
                (envoy.as_str(), part)
            })
            .collect();
        for (envoy, n) in whole_slots(m, &parts) {
            out.entry(envoy).or_default().insert(tenant.to_string(), n);
        }
    }
    out
}

/// What a claim is granted where the other claims hold `others`: its target, up to
/// what is left of the capacity (the Redis script computes the same).
pub fn grant(claim: &SlotClaim, others: u32) -> u32 {
    claim.target.min(
        claim
            .capacity
            .saturating_sub(others)
            .saturating_sub(claim.presumed),
    )
}

/// Gives out up to `amount` over `band` (per Envoy: demand, backlog) in proportion to
/// demand, none beyond its backlog; adds to `shares` and returns what it gave.
fn water_fill<'a>(
    amount: f64,
    band: &BTreeMap<&'a str, (f64, f64)>,
    shares: &mut BTreeMap<&'a str, f64>,
) -> f64 {
    let mut open: Vec<(&'a str, f64, f64)> = band
        .iter()
        .filter(|(_, (demand, backlog))| *demand > 0.0 && *backlog > 0.0)
        .map(|(envoy, (demand, backlog))| (*envoy, *demand, *backlog))
        .collect();
    let mut left = amount;
    while left > 1e-9 && !open.is_empty() {
        let demand: f64 = open.iter().map(|(_, d, _)| d).sum();
        let per_demand = left / demand;
        // Envoys whose backlog this round would cover: they take their backlog and
        // leave the round; the rest is shared again among the others.
        let (full, partial): (Vec<_>, Vec<_>) =
            open.into_iter().partition(|(_, d, b)| d * per_demand >= *b);
        if full.is_empty() {
            for (envoy, d, _) in &partial {
                *shares.entry(envoy).or_default() += d * per_demand;
            }
            left = 0.0;
            break;
        }
        for (envoy, _, b) in full {
            *shares.entry(envoy).or_default() += b;
            left -= b;
        }
        open = partial;
    }
    amount - left.max(0.0)
}

/// Whole slots summing to `capacity`: each share rounded down, the slots left over to
/// the largest remainders (ties by name).
fn whole_slots(capacity: u32, shares: &BTreeMap<&str, f64>) -> BTreeMap<String, u32> {
    let mut targets: BTreeMap<String, u32> = BTreeMap::new();
    let mut remainders: Vec<(&str, f64)> = Vec::with_capacity(shares.len());
    let mut given = 0u32;
    for (envoy, share) in shares {
        let share = share.clamp(0.0, f64::from(capacity));
        let whole = share.floor() as u32;
        given = given.saturating_add(whole);
        targets.insert(envoy.to_string(), whole);
        remainders.push((envoy, share - share.floor()));
    }
    remainders.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    for (envoy, _) in remainders {
        if given >= capacity {
            break;
        }
        if let Some(t) = targets.get_mut(envoy) {
            *t += 1;
            given += 1;
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use fairgate_wire::fleet::PoolTenant;

    fn tenant(weight: f64, priority: i32, queued: u32) -> PoolTenant {
        PoolTenant {
            weight,
            priority,
            queued,
            in_flight: 0,
        }
    }

    fn report(tenants: &[(&str, PoolTenant)]) -> PoolReport {
        PoolReport {
            capacity: 14,
            in_flight: 0,
            limit: 0,
            reserved: 0,
            reservations: BTreeMap::new(),
            tenants: tenants.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
        }
    }

    fn reports(list: &[(&str, PoolReport)]) -> BTreeMap<String, PoolReport> {
        list.iter()
            .map(|(e, r)| (e.to_string(), r.clone()))
            .collect()
    }

    #[test]
    fn a_tenant_at_two_envoys_counts_half_its_weight_at_each() {
        // A (1) at e0 only, C (4) at e1 only, B (2) at both: demand 1+1 at e0, 1+4 at
        // e1, so 2/7 and 5/7 of 14 slots; B counts weight 1 at each.
        let all = reports(&[
            (
                "e0",
                report(&[("a", tenant(1.0, 0, 20)), ("b", tenant(2.0, 0, 10))]),
            ),
            (
                "e1",
                report(&[("b", tenant(2.0, 0, 10)), ("c", tenant(4.0, 0, 20))]),
            ),
        ]);
        let a = allocate(14, &all);
        assert_eq!(a.targets["e0"], 4);
        assert_eq!(a.targets["e1"], 10);
        assert_eq!(a.scales["e0"]["b"], 0.5);
        assert_eq!(a.scales["e1"]["b"], 0.5);
        assert!(!a.scales["e0"].contains_key("a"));
    }

    #[test]
    fn a_lone_busy_envoy_gets_the_whole_pool_and_idle_slots_are_split_evenly() {
        let all = reports(&[
            ("e0", report(&[("a", tenant(1.0, 0, 30))])),
            ("e1", report(&[])),
        ]);
        assert_eq!(
            allocate(14, &all).targets,
            BTreeMap::from([("e0".into(), 14), ("e1".into(), 0)])
        );
        let light = reports(&[
            ("e0", report(&[("a", tenant(1.0, 0, 4))])),
            ("e1", report(&[])),
        ]);
        // 4 wanted at e0; the 10 nobody wants, 5 each.
        assert_eq!(
            allocate(14, &light).targets,
            BTreeMap::from([("e0".into(), 9), ("e1".into(), 5)])
        );
    }

    #[test]
    fn what_one_envoy_cannot_use_goes_to_the_others() {
        let all = reports(&[
            ("e0", report(&[("a", tenant(10.0, 0, 2))])),
            ("e1", report(&[("b", tenant(1.0, 0, 30))])),
        ]);
        assert_eq!(
            allocate(14, &all).targets,
            BTreeMap::from([("e0".into(), 2), ("e1".into(), 12)])
        );
    }

    #[test]
    fn a_higher_band_is_served_first_and_sheddable_tenants_get_what_is_left() {
        let all = reports(&[
            ("e0", report(&[("gold", tenant(1.0, 1, 30))])),
            ("e1", report(&[("batch", tenant(8.0, -1, 0))])),
        ]);
        // The batch tenant's backlog is what it holds: nothing. Gold takes all.
        assert_eq!(allocate(14, &all).targets["e0"], 14);
        let mut holding = all.clone();
        holding
            .get_mut("e1")
            .unwrap()
            .tenants
            .get_mut("batch")
            .unwrap()
            .in_flight = 3;
        let mut busy = holding.clone();
        busy.get_mut("e0")
            .unwrap()
            .tenants
            .get_mut("gold")
            .unwrap()
            .queued = 5;
        // Gold wants 5: the batch tenant keeps its 3, the 6 left are split evenly.
        assert_eq!(
            allocate(14, &busy).targets,
            BTreeMap::from([("e0".into(), 8), ("e1".into(), 6)])
        );
    }

    #[test]
    fn spare_slots_are_those_no_tenant_of_a_band_of_zero_or_more_wants() {
        let idle = reports(&[("e0", report(&[])), ("e1", report(&[]))]);
        assert_eq!(allocate(14, &idle).spare, 14);
        // A sheddable burst at one Envoy: it wants slots, but they are still spare
        // (so its waiters wait for them); its backlog draws them to its Envoy.
        let burst = reports(&[
            ("e0", report(&[("batch", tenant(1.0, -1, 6))])),
            ("e1", report(&[])),
        ]);
        let allocation = allocate(14, &burst);
        assert_eq!(allocation.spare, 14);
        assert_eq!(allocation.targets["e0"], 10, "6 + half of the 8 left");
        let busy = reports(&[
            ("e0", report(&[("batch", tenant(1.0, -1, 6))])),
            ("e1", report(&[("gold", tenant(1.0, 0, 11))])),
        ]);
        assert_eq!(allocate(14, &busy).spare, 3);
        let saturated = reports(&[
            ("e0", report(&[("batch", tenant(1.0, -1, 6))])),
            ("e1", report(&[("gold", tenant(1.0, 0, 30))])),
        ]);
        let allocation = allocate(14, &saturated);
        assert_eq!(allocation.spare, 0);
        assert_eq!(allocation.targets["e1"], 14);
    }

    #[test]
    fn a_reservation_is_split_by_backlog_or_evenly_and_leased_first() {
        let reserving = |queued: u32| {
            let mut r = report(&[("gold", tenant(1.0, 0, queued)), ("a", tenant(1.0, 0, 30))]);
            r.reservations = BTreeMap::from([("gold".to_string(), 4)]);
            r
        };
        let idle = reports(&[("e0", reserving(0)), ("e1", reserving(0))]);
        let a = allocate(14, &idle);
        assert_eq!(a.reserved["e0"]["gold"] + a.reserved["e1"]["gold"], 4);
        assert_eq!(a.reserved["e0"]["gold"], 2, "idle: evenly");
        let busy = reports(&[("e0", reserving(3)), ("e1", reserving(1))]);
        let a = allocate(14, &busy);
        assert_eq!((a.reserved["e0"]["gold"], a.reserved["e1"]["gold"]), (3, 1));
    }

    #[test]
    fn reservations_are_leased_before_any_backlog() {
        let mut reserving = report(&[]);
        reserving.reserved = 3;
        let all = reports(&[
            ("e0", report(&[("a", tenant(1.0, 0, 30))])),
            ("e1", reserving),
        ]);
        assert_eq!(
            allocate(14, &all).targets,
            BTreeMap::from([("e0".into(), 11), ("e1".into(), 3)])
        );
    }

    #[test]
    fn targets_are_whole_and_sum_to_the_capacity() {
        let all = reports(&[
            ("e0", report(&[("a", tenant(1.0, 0, 9))])),
            ("e1", report(&[("b", tenant(1.0, 0, 9))])),
            ("e2", report(&[("c", tenant(1.0, 0, 9))])),
        ]);
        let a = allocate(10, &all);
        assert_eq!(a.targets.values().sum::<u32>(), 10);
        assert_eq!(
            a.targets,
            BTreeMap::from([("e0".into(), 4), ("e1".into(), 3), ("e2".into(), 3)])
        );
        assert_eq!(allocate(0, &all).targets.values().sum::<u32>(), 0);
        assert!(allocate(5, &BTreeMap::new()).targets.is_empty());
    }
}
