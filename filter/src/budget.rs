//! Per-tenant budgets kept in shared data, so one limit holds across all workers.
//!
//! Each (tenant, kind) bucket is one shared-data key, `<prefix>bucket.<kind>.<tenant>`,
//! holding a `BucketState`. A take is one read and, when admitted, one CAS write
//! (`store::cas_update`); a refusal writes nothing. The prefix carries the plugin
//! name, so two fairgate plugins (or another plugin) in one Envoy never share keys.

use crate::bucket::{self, BucketState, Take};
use crate::config::RateLimit;
use crate::store::{cas_update, SharedStore, StoreError, Update};

/// What a bucket limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetKind {
    Requests,
    Tokens,
}

impl BudgetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }
}

/// Budgets of all tenants, in one shared store under one key prefix.
#[derive(Debug, Clone)]
pub struct Budgets {
    prefix: String,
}

impl Budgets {
    /// `prefix` namespaces the keys, e.g. `fairgate:<plugin name>:`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn key(&self, kind: BudgetKind, tenant: &str) -> String {
        format!("{}bucket.{}.{}", self.prefix, kind.as_str(), tenant)
    }

    /// Creates the bucket full if it does not exist yet (done for every configured
    /// tenant at configure time, which keeps first-write races off the request path).
    pub fn ensure(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        tenant: &str,
        limit: &RateLimit,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let key = self.key(kind, tenant);
        if store.get(&key)?.is_none() {
            store.set(&key, &BucketState::full(limit, now_ms).encode(), None)?;
        }
        Ok(())
    }

    /// Takes `cost` from the tenant's `kind` bucket at `now_ms`.
    pub fn take(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        tenant: &str,
        limit: &RateLimit,
        now_ms: u64,
        cost: f64,
    ) -> Result<Take, StoreError> {
        let key = self.key(kind, tenant);
        let initial = BucketState::full(limit, now_ms).encode();
        cas_update(store, &key, &initial, |bytes| {
            // An unreadable value (written by an older layout) counts as a full bucket.
            let state = BucketState::decode(bytes);
            match bucket::take(limit, state, now_ms, cost) {
                t @ Take::Admitted { state, .. } => Update::Write(state.encode().to_vec(), t),
                t @ Take::Limited { .. } => Update::Keep(t),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use wasm_bindgen_test::wasm_bindgen_test;

    const LIMIT: RateLimit = RateLimit {
        per_second: 2.0,
        burst: 3.0,
    };

    #[wasm_bindgen_test(unsupported = test)]
    fn tenants_have_separate_buckets() {
        let store = MemoryStore::new();
        let budgets = Budgets::new("fairgate:test:");
        for _ in 0..3 {
            let t = budgets.take(&store, BudgetKind::Requests, "acme", &LIMIT, 0, 1.0);
            assert!(matches!(t, Ok(Take::Admitted { .. })));
        }
        let t = budgets.take(&store, BudgetKind::Requests, "acme", &LIMIT, 0, 1.0);
        assert!(matches!(t, Ok(Take::Limited { .. })));
        let t = budgets.take(&store, BudgetKind::Requests, "beta", &LIMIT, 0, 1.0);
        assert!(matches!(t, Ok(Take::Admitted { .. })));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keys_carry_the_prefix() {
        let budgets = Budgets::new("fairgate:edge:");
        assert_eq!(
            budgets.key(BudgetKind::Requests, "acme"),
            "fairgate:edge:bucket.requests.acme"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn two_workers_sharing_a_store_share_one_limit() {
        // Two budget handles (two VMs) on one store: the burst is shared, not doubled.
        let store = MemoryStore::new();
        let worker_a = Budgets::new("p:");
        let worker_b = Budgets::new("p:");
        worker_a
            .ensure(&store, BudgetKind::Requests, "acme", &LIMIT, 0)
            .unwrap();
        let mut admitted = 0;
        for i in 0..10 {
            let w = if i % 2 == 0 { &worker_a } else { &worker_b };
            if let Ok(Take::Admitted { .. }) =
                w.take(&store, BudgetKind::Requests, "acme", &LIMIT, 0, 1.0)
            {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn ensure_does_not_refill_an_existing_bucket() {
        let store = MemoryStore::new();
        let budgets = Budgets::new("p:");
        for _ in 0..3 {
            budgets
                .take(&store, BudgetKind::Requests, "acme", &LIMIT, 0, 1.0)
                .unwrap();
        }
        budgets
            .ensure(&store, BudgetKind::Requests, "acme", &LIMIT, 0)
            .unwrap();
        let t = budgets.take(&store, BudgetKind::Requests, "acme", &LIMIT, 0, 1.0);
        assert!(matches!(t, Ok(Take::Limited { .. })));
    }
}
