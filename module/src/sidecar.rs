//! The GPU sidecar, polled from the main thread through the filter configuration's
//! HTTP callout every `poll_ms`; the last good snapshot is shared with every worker.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use envoy_proxy_dynamic_modules_rust_sdk::abi::envoy_dynamic_module_type_http_callout_result as CalloutResult;
use envoy_proxy_dynamic_modules_rust_sdk::{EnvoyBuffer, EnvoyHttpFilterConfig};
use fairgate_core::config::SidecarConfig;
use fairgate_core::fleet::{FleetPoller, FleetState, FleetWatch, PoolReport, FLEET_POLL_PATH};
use fairgate_core::headroom::Snapshot;
use fairgate_core::host::{Level, Turns};

use crate::log;
use crate::store::ProcessStore;

/// A larger answer is refused unread (a real one is a few KB per cluster).
const MAX_ANSWER_BYTES: usize = 1 << 20;

pub struct Sidecar {
    pub config: SidecarConfig,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    poll: Mutex<Poll>,
}

struct Poll {
    /// The callout in flight.
    pending: Option<u64>,
    last_sent_ms: u64,
    /// The polls' failures and recoveries, and whether the snapshot was fresh at the
    /// last look (to log the turns).
    turns: Turns,
    fresh: bool,
    /// Fleet mode: the poll carries the leases both ways (`fairgate_core::fleet`).
    fleet: Option<(FleetPoller, FleetWatch)>,
}

impl Sidecar {
    pub fn new(config: SidecarConfig, fleet: Option<(FleetPoller, FleetWatch)>) -> Self {
        Self {
            config,
            snapshot: RwLock::new(None),
            poll: Mutex::new(Poll {
                pending: None,
                last_sent_ms: 0,
                turns: Turns::default(),
                fresh: false,
                fleet,
            }),
        }
    }

    /// Fleet mode: the state at `now_ms` and the replicas last seen, logging a turn.
    pub fn fleet_state(&self, now_ms: u64) -> Option<(FleetState, u32)> {
        let mut poll = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, watch) = poll.fleet.as_mut()?;
        if let Some((level, line)) = watch.turn(now_ms) {
            log(level, &line);
        }
        Some((watch.state(now_ms), watch.replicas()))
    }

    /// The snapshot, if it is fresh at `now_ms`.
    pub fn fresh(&self, now_ms: u64) -> Option<Arc<Snapshot>> {
        let snapshot = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        snapshot
            .as_ref()
            .filter(|s| s.is_fresh(now_ms, self.config.stale_ms))
            .cloned()
    }

    /// The last snapshot, fresh or not.
    pub fn last(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// On the main thread's tick: sends a poll when one is due, and logs when the
    /// snapshot turns fresh or stale. `pools`: the pools' demand for the fleet's slots,
    /// asked for only when a fleet poll is sent.
    pub fn tick(
        &self,
        envoy: &mut impl EnvoyHttpFilterConfig,
        now_ms: u64,
        pools: impl FnOnce() -> BTreeMap<String, PoolReport>,
    ) {
        let mut poll = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = self.fresh(now_ms).is_some();
        if fresh != poll.fresh {
            poll.fresh = fresh;
            let line = match fresh {
                true => "fairgate: sidecar headroom is fresh: live capacities apply",
                false => {
                    "fairgate: sidecar headroom is stale or missing: configured capacities apply"
                }
            };
            log(Level::Info, line);
        }
        let timeout_ms = self.config.poll_ms.max(100);
        let overdue = now_ms.saturating_sub(poll.last_sent_ms) >= 2 * timeout_ms;
        if poll.pending.is_some() && !overdue {
            return;
        }
        if now_ms.saturating_sub(poll.last_sent_ms) < self.config.poll_ms {
            return;
        }
        poll.last_sent_ms = now_ms;
        let (cluster, path) = (&self.config.cluster, &self.config.path);
        let sent = match &poll.fleet {
            None => crate::callout::get(envoy, cluster, path, "fairgate-sidecar", timeout_ms),
            Some((poller, _)) => poller
                .poll_body(&ProcessStore, pools(), now_ms)
                .map_err(|e| format!("fleet poll: {e}"))
                .and_then(|body| {
                    let authority = "fairgate-sidecar";
                    let path = FLEET_POLL_PATH;
                    crate::callout::post_json(envoy, cluster, path, authority, &body, timeout_ms)
                }),
        };
        match sent {
            Ok(id) => poll.pending = Some(id),
            Err(error) => {
                poll.pending = None;
                Self::result(&mut poll, Err(error));
            }
        }
    }

    /// The answer to the poll `id`.
    pub fn on_answer(
        &self,
        id: u64,
        result: CalloutResult,
        headers: Option<&[(EnvoyBuffer, EnvoyBuffer)]>,
        body: Option<&[EnvoyBuffer]>,
        now_ms: u64,
    ) {
        let mut poll = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        if poll.pending != Some(id) {
            return;
        }
        poll.pending = None;
        let outcome = self
            .read_answer(result, headers, body, now_ms)
            .and_then(|bytes| match poll.fleet.as_mut() {
                None => Ok(()),
                Some((poller, watch)) => {
                    let (state, replicas) = poller.apply_answer(&ProcessStore, &bytes, now_ms)?;
                    watch.answered(state, replicas, now_ms);
                    Ok(())
                }
            });
        Self::result(&mut poll, outcome);
    }

    fn read_answer(
        &self,
        result: CalloutResult,
        headers: Option<&[(EnvoyBuffer, EnvoyBuffer)]>,
        body: Option<&[EnvoyBuffer]>,
        now_ms: u64,
    ) -> Result<Vec<u8>, String> {
        let bytes = crate::callout::body_of(result, headers, body, MAX_ANSWER_BYTES)?;
        let snapshot = Snapshot::parse(&bytes, now_ms)?;
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(snapshot));
        Ok(bytes)
    }

    fn result(poll: &mut Poll, result: Result<(), String>) {
        if let Some((level, line)) = poll.turns.line("sidecar poll", "snapshot", &result) {
            log(level, &line);
        }
    }
}
