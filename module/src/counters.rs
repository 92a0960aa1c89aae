//! The per-request counters, batched: a labelled increment through Envoy costs
//! about 4,000 instructions (the labels are resolved to a stat on every call), more
//! than the rest of an admitted request's decision. So a request adds to an atomic
//! slot of a dense table (its tenant × its decision, kind or cluster), and the main
//! thread's tick (every 100 ms, `wake`) hands each slot's sum to Envoy in one
//! increment. Prometheus sees the counts within a tick, as from the wasm module,
//! whose counters are flushed on its tick too.
//!
//! Tenants outside the configuration (none today: a request's label is a configured
//! tenant or none) and clusters outside `routing` are counted at once instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use envoy_proxy_dynamic_modules_rust_sdk::EnvoyHttpFilterConfig;
use fairgate_core::metrics::{tag_value, Decision, TokenKind};
use hashbrown::HashMap;

use crate::Metrics;

/// Counts by tenant and decision, tokens by tenant and kind, reserved tokens by
/// tenant, routed requests by cluster.
pub struct Counters {
    tenants: Vec<String>,
    index: HashMap<String, usize>,
    clusters: Vec<String>,
    /// The clusters as label values (`tag_value`, as the wasm module's).
    cluster_labels: Vec<String>,
    /// `(tenant + 1) × decisions + decision`; tenant row 0 is "no tenant".
    requests: Vec<AtomicU64>,
    tokens: Vec<AtomicU64>,
    reserved: Vec<AtomicU64>,
    routed: Vec<AtomicU64>,
}

fn zeros(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// Where a count goes.
pub enum Counted {
    /// Into the batch.
    Batched,
    /// Nowhere here: the caller increments at once.
    Direct,
}

impl Counters {
    pub fn new(tenants: Vec<String>, clusters: Vec<String>) -> Self {
        let index = tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        let n = tenants.len();
        Self {
            requests: zeros((n + 1) * Decision::ALL.len()),
            tokens: zeros(n * TokenKind::ALL.len()),
            reserved: zeros(n),
            routed: zeros(clusters.len()),
            cluster_labels: clusters.iter().map(|c| tag_value(c)).collect(),
            tenants,
            index,
            clusters,
        }
    }

    fn add(slot: Option<&AtomicU64>, n: u64) -> Counted {
        match slot {
            Some(slot) => {
                slot.fetch_add(n, Ordering::Relaxed);
                Counted::Batched
            }
            None => Counted::Direct,
        }
    }

    pub fn request(&self, tenant: Option<&str>, decision: Decision) -> Counted {
        let row = match tenant {
            None => Some(0),
            Some(t) => self.index.get(t).map(|i| i + 1),
        };
        let slot = row.and_then(|r| {
            self.requests
                .get(r * Decision::ALL.len() + decision.index())
        });
        Self::add(slot, 1)
    }

    pub fn tokens(&self, tenant: &str, kind: TokenKind, n: u64) -> Counted {
        let slot = self
            .index
            .get(tenant)
            .and_then(|i| self.tokens.get(i * TokenKind::ALL.len() + kind.index()));
        Self::add(slot, n)
    }

    pub fn reserved(&self, tenant: &str, n: u64) -> Counted {
        Self::add(
            self.index.get(tenant).and_then(|i| self.reserved.get(*i)),
            n,
        )
    }

    pub fn routed(&self, cluster: &str) -> Counted {
        let slot = self
            .clusters
            .iter()
            .position(|c| c == cluster)
            .and_then(|i| self.routed.get(i));
        Self::add(slot, 1)
    }

    /// Every count since the last flush, taken out of the table: (series, labels, n).
    fn take(&self) -> Vec<(Series, Vec<String>, u64)> {
        let mut taken = Vec::new();
        let mut take = |series: Series, labels: Vec<&str>, slot: &AtomicU64| {
            let n = slot.swap(0, Ordering::Relaxed);
            if n > 0 {
                taken.push((series, labels.into_iter().map(str::to_string).collect(), n));
            }
        };
        for (d, decision) in Decision::ALL.iter().enumerate() {
            if let Some(slot) = self.requests.get(d) {
                take(Series::Untenanted, vec![decision.as_str()], slot);
            }
        }
        for (t, tenant) in self.tenants.iter().enumerate() {
            for (d, decision) in Decision::ALL.iter().enumerate() {
                let i = (t + 1) * Decision::ALL.len() + d;
                if let Some(slot) = self.requests.get(i) {
                    take(Series::Requests, vec![tenant, decision.as_str()], slot);
                }
            }
            for (k, kind) in TokenKind::ALL.iter().enumerate() {
                if let Some(slot) = self.tokens.get(t * TokenKind::ALL.len() + k) {
                    take(Series::Tokens, vec![tenant, kind.as_str()], slot);
                }
            }
            if let Some(slot) = self.reserved.get(t) {
                take(Series::Reserved, vec![tenant], slot);
            }
        }
        for (c, cluster) in self.cluster_labels.iter().enumerate() {
            if let Some(slot) = self.routed.get(c) {
                take(Series::Routed, vec![cluster], slot);
            }
        }
        taken
    }

    /// Hands every count since the last flush to Envoy (main thread), with the counts
    /// that configurations destroyed since left behind.
    pub fn flush(&self, envoy: &impl EnvoyHttpFilterConfig, metrics: &Metrics) {
        let mut taken = self.take();
        taken.extend(
            LEFT.lock()
                .map(|mut l| std::mem::take(&mut *l))
                .unwrap_or_default(),
        );
        for (series, labels, n) in taken {
            let id = match series {
                Series::Requests => metrics.requests,
                Series::Untenanted => metrics.untenanted,
                Series::Tokens => metrics.tokens,
                Series::Reserved => metrics.tokens_reserved,
                Series::Routed => metrics.routed,
            };
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let _ = envoy.increment_counter_vec(id, &labels, n);
        }
    }

    /// The configuration is being destroyed: what it has not flushed yet is left for
    /// the next configuration's flush (Envoy keeps one stat per name and labels, so
    /// it lands where it belongs).
    pub fn leave(&self) {
        let taken = self.take();
        if let Ok(mut left) = LEFT.lock() {
            left.extend(taken);
        }
    }
}

/// The series a count belongs to.
#[derive(Clone, Copy)]
enum Series {
    Requests,
    Untenanted,
    Tokens,
    Reserved,
    Routed,
}

/// Counts left by destroyed configurations until a live one flushes them: at most a
/// table's worth for each configuration destroyed within a tick.
static LEFT: Mutex<Vec<(Series, Vec<String>, u64)>> = Mutex::new(Vec::new());
