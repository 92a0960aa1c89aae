//! The GPU sidecar, polled from the main thread through the filter configuration's
//! HTTP callout every `poll_ms`; the last good snapshot is shared with every worker.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use envoy_proxy_dynamic_modules_rust_sdk::abi::{
    envoy_dynamic_module_type_http_callout_init_result as CalloutInit,
    envoy_dynamic_module_type_http_callout_result as CalloutResult,
};
use envoy_proxy_dynamic_modules_rust_sdk::{EnvoyBuffer, EnvoyHttpFilterConfig};
use fairgate_core::config::SidecarConfig;
use fairgate_core::headroom::Snapshot;
use fairgate_core::host::Level;

use crate::log;

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
    /// Whether the last poll succeeded, and whether the snapshot was fresh at the
    /// last look (to log the turns).
    last_ok: bool,
    fresh: bool,
}

impl Sidecar {
    pub fn new(config: SidecarConfig) -> Self {
        Self {
            config,
            snapshot: RwLock::new(None),
            poll: Mutex::new(Poll {
                pending: None,
                last_sent_ms: 0,
                last_ok: true,
                fresh: false,
            }),
        }
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
    /// snapshot turns fresh or stale.
    pub fn tick(&self, envoy: &mut impl EnvoyHttpFilterConfig, now_ms: u64) {
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
        let headers: [(&str, &[u8]); 3] = [
            (":method", b"GET"),
            (":path", self.config.path.as_bytes()),
            (":authority", b"fairgate-sidecar"),
        ];
        let (init, id) = envoy.send_http_callout(&self.config.cluster, &headers, None, timeout_ms);
        match init {
            CalloutInit::Success => poll.pending = Some(id),
            other => {
                poll.pending = None;
                let error = format!("cannot call cluster {}: {other:?}", self.config.cluster);
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
        let outcome = self.read_answer(result, headers, body, now_ms);
        Self::result(&mut poll, outcome);
    }

    fn read_answer(
        &self,
        result: CalloutResult,
        headers: Option<&[(EnvoyBuffer, EnvoyBuffer)]>,
        body: Option<&[EnvoyBuffer]>,
        now_ms: u64,
    ) -> Result<(), String> {
        if result != CalloutResult::Success {
            return Err(format!("the call failed: {result:?}"));
        }
        let status = headers
            .unwrap_or_default()
            .iter()
            .find(|(name, _)| name.as_slice() == b":status")
            .map(|(_, value)| String::from_utf8_lossy(value.as_slice()).into_owned())
            .unwrap_or_default();
        if status != "200" {
            return Err(format!("answered {status}"));
        }
        let chunks = body.unwrap_or_default();
        let size: usize = chunks.iter().map(|c| c.as_slice().len()).sum();
        if size > MAX_ANSWER_BYTES {
            return Err(format!(
                "an answer of {size} bytes, over the {MAX_ANSWER_BYTES} allowed"
            ));
        }
        let mut bytes = Vec::with_capacity(size);
        for chunk in chunks {
            bytes.extend_from_slice(chunk.as_slice());
        }
        let snapshot = Snapshot::parse(&bytes, now_ms)?;
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(snapshot));
        Ok(())
    }

    fn result(poll: &mut Poll, result: Result<(), String>) {
        match (&result, poll.last_ok) {
            (Err(e), true) => log(
                Level::Warn,
                &format!(
                    "fairgate: sidecar poll failed, last good snapshot kept: {e} \
                     (logged once until it recovers)"
                ),
            ),
            (Ok(()), false) => log(Level::Info, "fairgate: sidecar poll works again"),
            _ => {}
        }
        poll.last_ok = result.is_ok();
    }
}
