//! The sidecar's headroom, as the filter uses it: who polls, what a snapshot says,
//! and which shared cluster a request goes to.
//!
//! - Polling: one VM per Envoy process polls the sidecar, elected through one
//!   shared-data value, `PollClaim` (holder VM, lease expiry, next poll time). Every
//!   VM's tick tries to claim the next poll under compare-and-swap; a claim succeeds
//!   only when the poll is due and the lease is the VM's own or has expired, so each
//!   `poll_ms` yields exactly one poll whatever the number of workers, and a poller
//!   that stops renewing is replaced after its lease (three periods).
//! - Snapshot: the poller stores the answer's bytes, stamped with when it arrived, in
//!   shared data; every VM re-reads it on its tick only when its CAS version changed,
//!   so a request never pays a host call for it. A snapshot older than `stale_ms`
//!   counts as none: the configured capacities alone apply.
//! - Routing: a pinned tenant goes to its cluster; others to the shared cluster with
//!   the most headroom among those with a free slot as last seen, ties in turn.

use std::collections::BTreeMap;

use fairgate_wire::fleet::{FleetState, SlotLease};
use fairgate_wire::Headroom;
use serde::Deserialize;

/// One cluster as the filter needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterView {
    pub headroom: f64,
    pub capacity: u32,
    pub healthy: bool,
}

/// A validated snapshot and when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub received_at_ms: u64,
    pub clusters: BTreeMap<String, ClusterView>,
    /// Fleet mode: the fleet's part of the answer to a fleet poll.
    pub fleet: Option<FleetView>,
}

/// What every worker needs of a fleet answer: the state, N, and each pool's slots.
/// (The budget grants are the poller's alone: it writes them into their records.)
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FleetView {
    pub state: FleetState,
    pub replicas: u32,
    #[serde(default)]
    pub pools: BTreeMap<String, SlotLease>,
}

/// The body as a snapshot reads it: the headroom, and of `fleet` only its view
/// (serde skips the rest unread into memory).
#[derive(Deserialize)]
struct Body {
    #[serde(flatten)]
    headroom: Headroom,
    #[serde(default)]
    fleet: Option<FleetView>,
}

impl Snapshot {
    /// Parses the sidecar's `/v1/headroom` body; refuses headroom outside 0..1.
    pub fn parse(body: &[u8], received_at_ms: u64) -> Result<Snapshot, String> {
        let Body { headroom: h, fleet } =
            serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let mut clusters = BTreeMap::new();
        for (name, c) in h.clusters {
            if !(c.headroom.is_finite() && (0.0..=1.0).contains(&c.headroom)) {
                return Err(format!(
                    "clusters.{name}.headroom: {} is not in 0..1",
                    c.headroom
                ));
            }
            let view = ClusterView {
                headroom: c.headroom,
                capacity: if c.healthy { c.capacity } else { 0 },
                healthy: c.healthy,
            };
            clusters.insert(name, view);
        }
        Ok(Snapshot {
            version: h.version,
            received_at_ms,
            clusters,
            fleet,
        })
    }

    /// How it is kept in shared data: arrival time, then the body as received.
    pub fn store_bytes(body: &[u8], received_at_ms: u64) -> Vec<u8> {
        let mut out = received_at_ms.to_le_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// The inverse of `store_bytes`.
    pub fn from_store(bytes: &[u8]) -> Result<Snapshot, String> {
        let at = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or("truncated snapshot")?;
        Snapshot::parse(bytes.get(8..).unwrap_or_default(), at)
    }

    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.received_at_ms)
    }

    pub fn is_fresh(&self, now_ms: u64, stale_ms: u64) -> bool {
        self.age_ms(now_ms) <= stale_ms
    }

    /// The live capacity of a pool made of `clusters` (their sum), or `None` where
    /// the sidecar reports none of them.
    pub fn capacity_of<'a>(&self, clusters: impl IntoIterator<Item = &'a str>) -> Option<u32> {
        let mut seen = false;
        let mut sum = 0u32;
        for c in clusters {
            if let Some(v) = self.clusters.get(c) {
                seen = true;
                sum = sum.saturating_add(v.capacity);
            }
        }
        seen.then_some(sum)
    }
}

/// Picks the shared cluster for a request: the most headroom among those whose
/// pool had a free slot when last seen (`has_free_slot`), else among all; `turn`
/// (a counter the caller advances) breaks ties, and chooses alone with no snapshot.
pub fn choose_shared<'a>(
    shared: &'a [String],
    snapshot: Option<&Snapshot>,
    has_free_slot: impl Fn(&str) -> bool,
    turn: usize,
) -> Option<&'a str> {
    if shared.is_empty() {
        return None;
    }
    let headroom = |c: &str| {
        snapshot
            .and_then(|s| s.clusters.get(c))
            .filter(|v| v.healthy)
            .map_or(0.0, |v| v.headroom)
    };
    let free: Vec<&'a String> = shared.iter().filter(|c| has_free_slot(c)).collect();
    let candidates: Vec<&'a String> = if free.is_empty() {
        shared.iter().collect()
    } else {
        free
    };
    let best = candidates
        .iter()
        .map(|c| headroom(c))
        .fold(f64::MIN, f64::max);
    let tied: Vec<&'a String> = candidates
        .into_iter()
        .filter(|c| (headroom(c) - best).abs() < 1e-9)
        .collect();
    tied.get(turn % tied.len().max(1)).map(|c| c.as_str())
}

/// Who polls the sidecar, and when next: one value in shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollClaim {
    pub holder: u32,
    pub lease_until_ms: u64,
    pub next_poll_ms: u64,
}

impl PollClaim {
    pub const ENCODED_LEN: usize = 20;

    /// The value a claim starts from: nobody holds it and a poll is due. (Shared
    /// data cannot hold an empty value: the host reads it back as missing.)
    pub const UNCLAIMED: PollClaim = PollClaim {
        holder: u32::MAX,
        lease_until_ms: 0,
        next_poll_ms: 0,
    };

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..4].copy_from_slice(&self.holder.to_le_bytes());
        out[4..12].copy_from_slice(&self.lease_until_ms.to_le_bytes());
        out[12..].copy_from_slice(&self.next_poll_ms.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<PollClaim> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        Some(PollClaim {
            holder: u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?),
            lease_until_ms: u64::from_le_bytes(bytes.get(4..12)?.try_into().ok()?),
            next_poll_ms: u64::from_le_bytes(bytes.get(12..20)?.try_into().ok()?),
        })
    }

    /// The claim after `vm` tries to take the poll due at `now_ms`: `Some` (to be
    /// stored; `vm` polls now) when the poll is due and the lease is `vm`'s or has
    /// run out (or there is no claim yet), `None` otherwise.
    pub fn claim(
        current: Option<PollClaim>,
        vm: u32,
        now_ms: u64,
        poll_ms: u64,
    ) -> Option<PollClaim> {
        let mut next_poll_ms = now_ms + poll_ms;
        if let Some(c) = current {
            let mine = c.holder == vm;
            let expired = now_ms >= c.lease_until_ms;
            if now_ms < c.next_poll_ms || !(mine || expired) {
                return None;
            }
            // Keep to the schedule, so the ticks' lateness does not add up; after a
            // gap of more than a period, start again from now.
            let scheduled = c.next_poll_ms + poll_ms;
            if scheduled > now_ms {
                next_poll_ms = scheduled;
            }
        }
        Some(PollClaim {
            holder: vm,
            lease_until_ms: now_ms + 3 * poll_ms,
            next_poll_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const BODY: &str = r#"{"version": 7, "generated_at_ms": 1764400000000, "source": "sim",
        "clusters": {
          "pool_a": {"headroom": 0.62, "capacity": 48, "healthy": true,
                     "gpus": [{"index": 0, "uuid": "GPU-0", "memory_free_bytes": 1,
                               "memory_total_bytes": 2, "utilization": 0.41, "healthy": true}]},
          "pool_b": {"headroom": 0.8, "capacity": 20, "healthy": true, "gpus": []},
          "sick": {"headroom": 0.0, "capacity": 5, "healthy": false, "gpus": []}}}"#;

    fn shared(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_spec_answer_parses_and_an_unhealthy_cluster_has_no_capacity() {
        let s = Snapshot::parse(BODY.as_bytes(), 1000).unwrap();
        assert_eq!(s.version, 7);
        assert_eq!(s.clusters["pool_a"].capacity, 48);
        assert_eq!(s.clusters["sick"].capacity, 0);
        assert_eq!(s.capacity_of(["pool_a", "pool_b"]), Some(68));
        assert_eq!(s.capacity_of(["elsewhere"]), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_answers_are_refused() {
        assert!(Snapshot::parse(b"not json", 0).is_err());
        let out_of_range = BODY.replace("0.62", "1.5");
        let err = Snapshot::parse(out_of_range.as_bytes(), 0).unwrap_err();
        assert!(err.contains("clusters.pool_a.headroom"), "{err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_stored_snapshot_round_trips_and_goes_stale() {
        let bytes = Snapshot::store_bytes(BODY.as_bytes(), 5000);
        let s = Snapshot::from_store(&bytes).unwrap();
        assert_eq!(s.received_at_ms, 5000);
        assert!(s.is_fresh(8000, 3000));
        assert!(!s.is_fresh(8001, 3000));
        assert!(Snapshot::from_store(b"short").is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn requests_go_to_the_shared_cluster_with_the_most_headroom_and_a_free_slot() {
        let s = Snapshot::parse(BODY.as_bytes(), 0).unwrap();
        let clusters = shared(&["pool_a", "pool_b"]);
        assert_eq!(
            choose_shared(&clusters, Some(&s), |_| true, 0),
            Some("pool_b")
        );
        // pool_b was full when last seen: the next best with a free slot.
        assert_eq!(
            choose_shared(&clusters, Some(&s), |c| c != "pool_b", 0),
            Some("pool_a")
        );
        // Both full: still the most headroom.
        assert_eq!(
            choose_shared(&clusters, Some(&s), |_| false, 0),
            Some("pool_b")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn without_a_snapshot_shared_clusters_take_turns() {
        let clusters = shared(&["pool_a", "pool_b"]);
        let picks: Vec<_> = (0..4)
            .map(|t| choose_shared(&clusters, None, |_| true, t))
            .collect();
        assert_eq!(
            picks,
            [
                Some("pool_a"),
                Some("pool_b"),
                Some("pool_a"),
                Some("pool_b")
            ]
        );
        assert_eq!(choose_shared(&[], None, |_| true, 0), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn one_vm_polls_per_period_and_a_silent_poller_is_replaced() {
        let first = PollClaim::claim(None, 1, 1000, 500).unwrap();
        assert_eq!(first.next_poll_ms, 1500);
        // Another VM cannot take the same period, nor the next while the lease holds.
        assert_eq!(PollClaim::claim(Some(first), 2, 1200, 500), None);
        assert_eq!(PollClaim::claim(Some(first), 2, 1600, 500), None);
        // The holder polls again when due, on schedule even if its tick is late.
        let second = PollClaim::claim(Some(first), 1, 1580, 500).unwrap();
        assert_eq!(second.next_poll_ms, 2000);
        assert_eq!(PollClaim::claim(Some(second), 1, 1700, 500), None);
        // The holder went silent: after its lease another VM takes over.
        assert_eq!(PollClaim::claim(Some(second), 2, 3079, 500), None);
        let taken = PollClaim::claim(Some(second), 2, 3080, 500).unwrap();
        assert_eq!(taken.holder, 2);
        assert_eq!(PollClaim::decode(&taken.encode()), Some(taken));
        assert_eq!(PollClaim::decode(b"junk"), None);
        // The starting value lets the first VM that looks poll at once.
        let from_start = PollClaim::claim(Some(PollClaim::UNCLAIMED), 3, 10, 500).unwrap();
        assert_eq!(from_start.holder, 3);
    }
}
