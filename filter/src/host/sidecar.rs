//! Glue for the GPU sidecar (`headroom`): the elected VM polls it with
//! `dispatch_http_call` and stores the answer in shared data; every VM keeps a copy,
//! re-read on its tick only when the stored value changed.

use std::collections::BTreeMap;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use super::{call_answer, log, log_at, HostStore};
use fairgate_core::admission::Gauge;
use fairgate_core::config::SidecarConfig;
use fairgate_core::fleet::{state_gauge, FleetPoller, FleetWatch, PoolReport, FLEET_POLL_PATH};
use fairgate_core::headroom::{PollClaim, Snapshot};
use fairgate_core::metrics::{FLEET_REPLICAS_GAUGE, FLEET_STATE_GAUGE};

use fairgate_core::host::Turns;
use fairgate_core::store::{cas_update, SharedStore, Update};

/// A larger answer is refused unread (a real one is a few KB per cluster).
const MAX_ANSWER_BYTES: usize = 1 << 20;

pub struct Sidecar {
    config: SidecarConfig,
    claim_key: String,
    snapshot_key: String,
    vm: u32,
    /// The call in flight, if this VM is polling now.
    pending: Option<u32>,
    snapshot: Option<Snapshot>,
    snapshot_cas: Option<u32>,
    /// Whether the last look found a fresh snapshot (to log the turns).
    fresh: bool,
    /// This VM's polls' failures and recoveries (to log the turns).
    turns: Turns,
    /// Fleet mode: the poll carries the leases both ways (`fairgate_core::fleet`).
    fleet: Option<Fleet>,
}

struct Fleet {
    poller: FleetPoller,
    watch: FleetWatch,
    /// Whether this VM has polled (only a poller watches the fleet's state).
    polled: bool,
}

impl Sidecar {
    pub fn new(
        prefix: &str,
        config: SidecarConfig,
        vm: u32,
        fleet: Option<(FleetPoller, FleetWatch)>,
    ) -> Self {
        Self {
            fleet: fleet.map(|(poller, watch)| Fleet {
                poller,
                watch,
                polled: false,
            }),
            config,
            claim_key: format!("{prefix}sidecar.claim"),
            snapshot_key: format!("{prefix}sidecar.snapshot"),
            vm,
            pending: None,
            snapshot: None,
            snapshot_cas: None,
            fresh: false,
            turns: Turns::default(),
        }
    }

    /// The snapshot, if it is fresh at `now_ms`.
    pub fn fresh(&self, now_ms: u64) -> Option<&Snapshot> {
        self.snapshot
            .as_ref()
            .filter(|s| s.is_fresh(now_ms, self.config.stale_ms))
    }

    /// Polls when this VM wins the due poll, refreshes its copy, and returns gauges.
    /// `pools`: the pools' demand for the fleet's slots, asked for only when this VM
    /// sends a fleet poll.
    pub fn tick(
        &mut self,
        now_ms: u64,
        pools: impl FnOnce() -> BTreeMap<String, PoolReport>,
    ) -> Vec<Gauge> {
        if self.pending.is_none() {
            self.maybe_poll(now_ms, pools);
        }
        self.refresh(now_ms);
        let mut gauges = vec![("fg_sidecar_fresh".to_string(), u64::from(self.fresh))];
        if let Some(fleet) = self.fleet.as_mut().filter(|f| f.polled) {
            if let Some((level, line)) = fleet.watch.turn(now_ms) {
                log_at(level, &line);
            }
            let state = fleet.watch.state(now_ms);
            gauges.push((FLEET_STATE_GAUGE.to_string(), state_gauge(state)));
            gauges.push((
                FLEET_REPLICAS_GAUGE.to_string(),
                u64::from(fleet.watch.replicas()),
            ));
        }
        if let Some(s) = &self.snapshot {
            gauges.push(("fg_sidecar_snapshot_age_ms".to_string(), s.age_ms(now_ms)));
            for (name, c) in &s.clusters {
                gauges.push((
                    fairgate_core::metrics::headroom_gauge(name),
                    (c.headroom * 100.0).round() as u64,
                ));
                gauges.push((
                    fairgate_core::metrics::sidecar_capacity_gauge(name),
                    u64::from(c.capacity),
                ));
            }
        }
        gauges
    }

    fn maybe_poll(&mut self, now_ms: u64, pools: impl FnOnce() -> BTreeMap<String, PoolReport>) {
        let (vm, poll_ms) = (self.vm, self.config.poll_ms);
        let unclaimed = PollClaim::UNCLAIMED.encode();
        let claimed = cas_update(
            &HostStore,
            &self.claim_key,
            &unclaimed,
            |v| match PollClaim::claim(PollClaim::decode(v), vm, now_ms, poll_ms) {
                Some(c) => Update::Write(c.encode().to_vec(), true),
                None => Update::Keep(false),
            },
        );
        if !matches!(claimed, Ok(true)) {
            return;
        }
        let timeout = Duration::from_millis(self.config.poll_ms.max(100));
        let (headers, body) = match self.fleet.as_mut() {
            None => (
                vec![
                    (":method", "GET"),
                    (":path", self.config.path.as_str()),
                    (":authority", "fairgate-sidecar"),
                ],
                None,
            ),
            Some(fleet) => {
                fleet.polled = true;
                match fleet.poller.poll_body(&HostStore, pools(), now_ms) {
                    Ok(body) => (
                        vec![
                            (":method", "POST"),
                            (":path", FLEET_POLL_PATH),
                            (":authority", "fairgate-sidecar"),
                            ("content-type", "application/json"),
                        ],
                        Some(body),
                    ),
                    Err(e) => return self.poll_result(Err(format!("fleet poll: {e}"))),
                }
            }
        };
        let sent = hostcalls::dispatch_http_call(
            &self.config.cluster,
            headers,
            body.as_deref(),
            vec![],
            timeout,
        );
        match sent {
            Ok(token) => self.pending = Some(token),
            Err(status) => self.poll_result(Err(format!(
                "cannot call cluster {}: {status:?}",
                self.config.cluster
            ))),
        }
    }

    /// The sidecar's answer to this VM's poll.
    pub fn on_response(&mut self, token: u32, body_size: usize, now_ms: u64) {
        if self.pending != Some(token) {
            return;
        }
        self.pending = None;
        let fleet = self.fleet.as_mut();
        let result = call_answer(body_size, MAX_ANSWER_BYTES).and_then(|body| {
            Snapshot::parse(&body, now_ms)?;
            if let Some(fleet) = fleet {
                let (state, replicas) = fleet.poller.apply_answer(&HostStore, &body, now_ms)?;
                fleet.watch.answered(state, replicas, now_ms);
            }
            HostStore
                .set(
                    &self.snapshot_key,
                    &Snapshot::store_bytes(&body, now_ms),
                    None,
                )
                .map_err(|e| e.to_string())
        });
        self.poll_result(result);
    }

    fn poll_result(&mut self, result: Result<(), String>) {
        if let Some((level, line)) = self.turns.line("sidecar poll", "snapshot", &result) {
            log_at(level, &line);
        }
    }

    fn refresh(&mut self, now_ms: u64) {
        if let Ok(Some((bytes, cas))) = HostStore.get(&self.snapshot_key) {
            if self.snapshot_cas != Some(cas) {
                self.snapshot_cas = Some(cas);
                match Snapshot::from_store(&bytes) {
                    Ok(s) => self.snapshot = Some(s),
                    Err(e) => log(LogLevel::Warn, &format!("fairgate: stored snapshot: {e}")),
                }
            }
        }
        let fresh = self.fresh(now_ms).is_some();
        if fresh != self.fresh {
            let line = if fresh {
                "fairgate: sidecar headroom is fresh: live capacities apply"
            } else {
                "fairgate: sidecar headroom is stale or missing: configured capacities apply"
            };
            log(LogLevel::Info, line);
            self.fresh = fresh;
        }
    }
}
