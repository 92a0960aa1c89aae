//! Per-tenant budgets kept in shared data, so one limit holds across all workers.
//!
//! Each (tenant, kind) bucket is one shared-data key, `<prefix>bucket.<kind>.<tenant>`,
//! holding a `BucketState`. A take is one read and, when admitted, one CAS write
//! (`store::cas_update`); a refusal writes nothing. The prefix carries the plugin
//! name, so two fairgate plugins (or another plugin) in one Envoy never share keys.

use crate::bucket::{self, BucketState, Quota, Take};
use crate::config::RateLimit;
use crate::fleet::{FleetBooks, Source};
use crate::store::{cas_update, create_if_missing, SharedStore, StoreError, Update};

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

/// What a request got from a budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Taken {
    /// `amount` taken from `source` (where its settlement goes back).
    Admitted { amount: f64, source: Source },
    /// Refused: the budget holds too little.
    Limited { retry_after_ms: u64, quota: Quota },
    /// Refused: the fleet's budget cannot be reached and `fleet.outage` is `closed`.
    Unavailable { retry_after_ms: u64 },
}

/// Budgets of all tenants, in one shared store under one key prefix: the Envoy's own
/// token buckets, or in fleet mode its leases of the fleet's (`fleet`).
///
/// A configured tenant's bucket (and each of its models') has a key of its own. The
/// buckets of every other tenant (the default policy's, the policy claims') live in
/// `SHARDS` keys per kind, each a small map from bucket id to bucket, and only while
/// they are not full: a full bucket is what a missing one reads as, so it is dropped
/// at the next write to its shard. Shared data, where a key once written is never
/// freed, then holds a fixed number of keys whatever the number of tenants, and
/// entries only for the tenants whose buckets are still refilling.
#[derive(Debug, Clone)]
pub struct Budgets {
    prefix: String,
    fleet: Option<FleetBooks>,
    /// The bucket ids with keys of their own; `None`: all of them.
    own: Option<hashbrown::HashSet<String>>,
}

/// Shard keys per kind for the buckets of tenants not in `tenants`.
pub const SHARDS: u64 = 1024;

/// The most buckets one shard keeps; past it the one nearest to full is dropped (read
/// as full from then on). 1024 × 512 buckets per kind still refilling at once.
pub const MAX_PER_SHARD: usize = 512;

impl Budgets {
    /// `prefix` namespaces the keys, e.g. `fairgate:<plugin name>:`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            fleet: None,
            own: None,
        }
    }

    /// Only these bucket ids get keys of their own (the configured tenants' and their
    /// models'); every other lives in a shard.
    pub fn with_own_keys(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.own = Some(ids.into_iter().collect());
        self
    }

    fn is_own(&self, id: &str) -> bool {
        id.len() > usize::from(u8::MAX) || self.own.as_ref().is_none_or(|own| own.contains(id))
    }

    /// The shard key of a bucket that has no key of its own.
    pub fn shard_key(&self, kind: BudgetKind, id: &str) -> String {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6661_6972, 0x6761_7465);
        h.write(id.as_bytes());
        format!(
            "{}bucket.{}.shard.{}",
            self.prefix,
            kind.as_str(),
            h.finish() % SHARDS
        )
    }

    /// Applies `f` to the bucket `id` of `kind` (`None`: never used, or full), writing
    /// what it returns (`None`: nothing to write).
    fn update<T>(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        id: &str,
        limit: &RateLimit,
        now_ms: u64,
        mut f: impl FnMut(Option<BucketState>) -> (Option<BucketState>, T),
    ) -> Result<T, StoreError> {
        if self.is_own(id) {
            let initial = BucketState::full(limit, now_ms).encode();
            return cas_update(store, &self.key(kind, id), &initial, |bytes| {
                // An unreadable value (written by an older layout) is a full bucket.
                match f(BucketState::decode(bytes)) {
                    (Some(state), out) => Update::Write(state.encode().to_vec(), out),
                    (None, out) => Update::Keep(out),
                }
            });
        }
        cas_update(store, &self.shard_key(kind, id), &[], |bytes| {
            let mut shard = Shard::decode(bytes);
            match f(shard.get(id, now_ms)) {
                (Some(state), out) => {
                    shard.put(id, state, limit);
                    Update::Write(shard.encode(now_ms), out)
                }
                (None, out) => Update::Keep(out),
            }
        })
    }

    /// Budgets spent from fleet leases (SPEC 9).
    pub fn with_fleet(mut self, books: Option<FleetBooks>) -> Self {
        self.fleet = books;
        self
    }

    pub fn fleet(&self) -> Option<&FleetBooks> {
        self.fleet.as_ref()
    }

    pub fn key(&self, kind: BudgetKind, tenant: &str) -> String {
        format!("{}bucket.{}.{}", self.prefix, kind.as_str(), tenant)
    }

    /// Creates the bucket full if it does not exist yet, without overwriting one that
    /// another worker creates at the same moment (done for every configured tenant at
    /// configure time, which keeps the host calls of creating a key off the request
    /// path).
    pub fn ensure(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        tenant: &str,
        limit: &RateLimit,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        if let Some(books) = &self.fleet {
            return books
                .ensure(store, kind, tenant, limit, true, now_ms)
                .map(|_| ());
        }
        let key = self.key(kind, tenant);
        if store.get(&key)?.is_none() {
            create_if_missing(store, &key, &BucketState::full(limit, now_ms).encode())?;
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
        self.update(
            store,
            kind,
            tenant,
            limit,
            now_ms,
            |state| match bucket::take(limit, state, now_ms, cost) {
                t @ Take::Admitted { state, .. } => (Some(state), t),
                t @ Take::Limited { .. } => (None, t),
            },
        )
    }

    /// Takes `want` tokens, or, with `least` set, as many as the bucket holds if that
    /// is at least `least` (a clamped request).
    #[allow(clippy::too_many_arguments)]
    pub fn take_up_to(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        tenant: &str,
        limit: &RateLimit,
        now_ms: u64,
        want: f64,
        least: Option<f64>,
    ) -> Result<Taken, StoreError> {
        if let Some(books) = &self.fleet {
            if let Some(taken) = books.take(store, kind, tenant, limit, now_ms, want, least)? {
                return Ok(taken);
            }
            // Past the fleet's records: this Envoy's share, in a bucket of its own.
            let share = books.local_share(store, limit)?;
            return self.take_local(store, kind, tenant, &share, now_ms, want, least);
        }
        self.take_local(store, kind, tenant, limit, now_ms, want, least)
    }

    /// `take_up_to` from the tenant's bucket in this Envoy.
    #[allow(clippy::too_many_arguments)]
    fn take_local(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        tenant: &str,
        limit: &RateLimit,
        now_ms: u64,
        want: f64,
        least: Option<f64>,
    ) -> Result<Taken, StoreError> {
        let admitted = |amount| Taken::Admitted {
            amount,
            source: Source::Bucket,
        };
        let outcome = |take: Take, amount: f64| match take {
            Take::Admitted { .. } => admitted(amount),
            Take::Limited {
                retry_after_ms,
                quota,
            } => Taken::Limited {
                retry_after_ms,
                quota,
            },
        };
        let Some(least) = least else {
            return self
                .take(store, kind, tenant, limit, now_ms, want)
                .map(|t| outcome(t, want));
        };
        self.update(
            store,
            kind,
            tenant,
            limit,
            now_ms,
            |state| match bucket::take_up_to(limit, state, now_ms, want, least) {
                (t @ Take::Admitted { state, .. }, n) => (Some(state), outcome(t, n)),
                (t @ Take::Limited { .. }, n) => (None, outcome(t, n)),
            },
        )
    }

    /// Settles what a request took from `source`: it used `used` of the `taken`
    /// (tokens: its answer's; 0 for a reservation handed back unused). The bucket
    /// gets back the difference, or gives more (a debt).
    #[allow(clippy::too_many_arguments)]
    pub fn settle(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        tenant: &str,
        limit: &RateLimit,
        now_ms: u64,
        source: Source,
        taken: u64,
        used: u64,
    ) -> Result<(), StoreError> {
        match (&self.fleet, source) {
            (None, Source::Bucket) => {
                let amount = taken as f64 - used as f64;
                self.give_back(store, kind, tenant, limit, now_ms, amount)
            }
            (Some(books), Source::Bucket) => {
                let amount = taken as f64 - used as f64;
                let share = books.local_share(store, limit)?;
                self.give_back(store, kind, tenant, &share, now_ms, amount)
            }
            (Some(books), _) => books.settle(store, kind, tenant, source, now_ms, taken, used),
            (None, _) => Ok(()),
        }
    }

    /// Gives `amount` tokens back to the bucket (negative: takes more), to settle a
    /// reservation against what was really used.
    pub fn give_back(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        tenant: &str,
        limit: &RateLimit,
        now_ms: u64,
        amount: f64,
    ) -> Result<(), StoreError> {
        if amount == 0.0 || !amount.is_finite() {
            return Ok(());
        }
        self.update(store, kind, tenant, limit, now_ms, |state| {
            (Some(bucket::give_back(limit, state, now_ms, amount)), ())
        })
    }
}

/// One shard: the buckets still refilling of the tenants whose ids hash to it, each
/// with when it will be full (and so can be dropped). Layout: a u32 count, then per
/// bucket its id (a u8 length and the bytes), tokens (f64), updated and full-at times
/// (u64 ms); an unreadable value reads as an empty shard (every bucket in it full).
#[derive(Debug, Default)]
struct Shard {
    buckets: Vec<(String, BucketState, u64)>,
}

impl Shard {
    fn decode(bytes: &[u8]) -> Self {
        Self::parse(bytes).unwrap_or_default()
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return Some(Self::default());
        }
        let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
            let out = bytes.get(*at..at.checked_add(n)?)?;
            *at += n;
            Some(out)
        };
        let mut at = 0;
        let count = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?);
        let mut buckets = Vec::with_capacity((count as usize).min(MAX_PER_SHARD));
        for _ in 0..count {
            let len = usize::from(*take(&mut at, 1)?.first()?);
            let id = std::str::from_utf8(take(&mut at, len)?).ok()?.to_string();
            let tokens = f64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?);
            let updated_ms = u64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?);
            let full_at = u64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?);
            if !tokens.is_finite() {
                return None;
            }
            buckets.push((id, BucketState { tokens, updated_ms }, full_at));
        }
        (at == bytes.len()).then_some(Self { buckets })
    }

    /// The bucket `id`, unless it is missing or full by `now_ms`.
    fn get(&self, id: &str, now_ms: u64) -> Option<BucketState> {
        self.buckets
            .iter()
            .find(|(b, _, full_at)| b == id && *full_at > now_ms)
            .map(|(_, state, _)| *state)
    }

    fn put(&mut self, id: &str, state: BucketState, limit: &RateLimit) {
        let missing = (limit.burst - state.tokens).max(0.0);
        let full_at = if missing == 0.0 {
            0
        } else if limit.per_second > 0.0 {
            state
                .updated_ms
                .saturating_add((missing / limit.per_second * 1000.0).ceil() as u64)
        } else {
            u64::MAX
        };
        match self.buckets.iter_mut().find(|(b, _, _)| b == id) {
            Some(entry) => *entry = (id.to_string(), state, full_at),
            None => self.buckets.push((id.to_string(), state, full_at)),
        }
    }

    /// The shard without the buckets full by `now_ms`, at most `MAX_PER_SHARD`.
    fn encode(&mut self, now_ms: u64) -> Vec<u8> {
        self.buckets.retain(|(_, _, full_at)| *full_at > now_ms);
        if self.buckets.len() > MAX_PER_SHARD {
            // The nearest to full go first: they lose the least.
            self.buckets.sort_by_key(|b| std::cmp::Reverse(b.2));
            self.buckets.truncate(MAX_PER_SHARD);
        }
        let mut out = Vec::with_capacity(4 + self.buckets.len() * 48);
        out.extend_from_slice(&(self.buckets.len() as u32).to_le_bytes());
        for (id, state, full_at) in &self.buckets {
            out.push(id.len() as u8);
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&state.tokens.to_le_bytes());
            out.extend_from_slice(&state.updated_ms.to_le_bytes());
            out.extend_from_slice(&full_at.to_le_bytes());
        }
        out
    }
}

/// How long a VM may hold leased request tokens before giving back what it did
/// not use.
pub const LEASE_MS: u64 = 50;

/// The most request tokens a VM leases beyond the one a request needs.
const MAX_LEASE: f64 = 32.0;

/// The tokens a VM leases beyond one request's: what the rate refills in
/// `LEASE_MS`, at most an eighth of the burst (so one worker cannot hold what
/// the others need) and `MAX_LEASE`. 0 for low rates: every request then goes to
/// the shared bucket, as exact as it can be.
pub fn lease_size(limit: &RateLimit) -> f64 {
    (limit.per_second * LEASE_MS as f64 / 1000.0)
        .min(limit.burst / 8.0)
        .min(MAX_LEASE)
        .floor()
        .max(0.0)
}

/// Request tokens one VM took from a tenant's shared bucket ahead of use, so that a
/// high-rate tenant's requests cost no shared-data round trip each. Tokens in a
/// lease were taken from the bucket when leased, so `rate × t + burst` still holds
/// across all VMs; what a lease still holds at `LEASE_MS` goes back to the bucket
/// (`expired`), so nothing is lost either.
#[derive(Debug, Default)]
pub struct Leases {
    by_tenant: hashbrown::HashMap<String, Lease>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    tokens: f64,
    /// What the lease took from the budget (what it gives back is `tokens`).
    granted: f64,
    expires_ms: u64,
}

impl Leases {
    /// Takes one request token from `tenant`'s lease, if it holds one still valid.
    pub fn take(&mut self, tenant: &str, now_ms: u64) -> bool {
        match self.by_tenant.get_mut(tenant) {
            Some(lease) if lease.tokens >= 1.0 && now_ms < lease.expires_ms => {
                lease.tokens -= 1.0;
                true
            }
            _ => false,
        }
    }

    /// Records `tokens` leased for `tenant` (added to what its lease still holds).
    pub fn grant(&mut self, tenant: &str, tokens: f64, now_ms: u64) {
        if tokens < 1.0 {
            return;
        }
        let expires_ms = now_ms + LEASE_MS;
        match self.by_tenant.get_mut(tenant) {
            Some(lease) => {
                lease.tokens += tokens;
                lease.granted += tokens;
                lease.expires_ms = expires_ms;
            }
            None => {
                let lease = Lease {
                    tokens,
                    granted: tokens,
                    expires_ms,
                };
                self.by_tenant.insert(tenant.to_string(), lease);
            }
        }
    }

    /// Removes the leases past `LEASE_MS`: (tenant, tokens granted, tokens unused),
    /// to settle.
    pub fn expired(&mut self, now_ms: u64) -> Vec<(String, f64, f64)> {
        let mut out = Vec::new();
        self.by_tenant.retain(|tenant, lease| {
            if now_ms < lease.expires_ms {
                return true;
            }
            out.push((tenant.clone(), lease.granted, lease.tokens));
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// What a take admitted (0 when refused).
    fn amount(t: Taken) -> f64 {
        match t {
            Taken::Admitted { amount, .. } => amount,
            _ => 0.0,
        }
    }

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
    fn unlisted_tenants_share_shards_and_leave_them_once_their_buckets_are_full() {
        let store = MemoryStore::new();
        let budgets = Budgets::new("p:").with_own_keys(["acme".to_string()]);
        // 3 a second, burst 3: each of 5000 tenants takes its burst.
        let limit = RateLimit {
            per_second: 3.0,
            burst: 3.0,
        };
        for i in 0..5000 {
            let tenant = format!("t{i}");
            for _ in 0..3 {
                let t = budgets.take(&store, BudgetKind::Requests, &tenant, &limit, 0, 1.0);
                assert!(matches!(t, Ok(Take::Admitted { .. })), "{tenant}");
            }
            let t = budgets.take(&store, BudgetKind::Requests, &tenant, &limit, 0, 1.0);
            assert!(
                matches!(t, Ok(Take::Limited { .. })),
                "{tenant}: its own bucket"
            );
        }
        assert!(store
            .get(&budgets.key(BudgetKind::Requests, "t1"))
            .unwrap()
            .is_none());
        let shard = budgets.shard_key(BudgetKind::Requests, "t1");
        let held = |store: &MemoryStore| {
            (0..SHARDS)
                .filter_map(|n| {
                    let key = format!("p:bucket.requests.shard.{n}");
                    store
                        .get(&key)
                        .unwrap()
                        .map(|(v, _)| Shard::decode(&v).buckets.len())
                })
                .sum::<usize>()
        };
        assert_eq!(held(&store), 5000);
        // A second later every bucket is full again: the next write to a shard drops
        // its full ones, and t1 takes from a full bucket.
        let t = budgets.take(&store, BudgetKind::Requests, "t1", &limit, 1000, 3.0);
        assert!(matches!(t, Ok(Take::Admitted { .. })));
        let (bytes, _) = store.get(&shard).unwrap().unwrap();
        assert_eq!(
            Shard::decode(&bytes).buckets.len(),
            1,
            "only t1, empty again"
        );
        // A configured tenant keeps its own key.
        budgets
            .take(&store, BudgetKind::Requests, "acme", &limit, 0, 1.0)
            .unwrap();
        assert!(store
            .get(&budgets.key(BudgetKind::Requests, "acme"))
            .unwrap()
            .is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_shard_keeps_at_most_its_bound_dropping_the_nearest_to_full() {
        let limit = RateLimit {
            per_second: 1.0,
            burst: 10.0,
        };
        let mut shard = Shard::default();
        for i in 0..(MAX_PER_SHARD + 10) {
            let state = BucketState {
                tokens: (i % 10) as f64,
                updated_ms: 0,
            };
            shard.put(&format!("t{i}"), state, &limit);
        }
        let bytes = shard.encode(0);
        let back = Shard::decode(&bytes);
        assert_eq!(back.buckets.len(), MAX_PER_SHARD);
        assert!(back.get("t0", 0).is_some(), "the emptiest stays");
        assert!(Shard::decode(b"garbage").buckets.is_empty());
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

    #[wasm_bindgen_test(unsupported = test)]
    fn a_reservation_settled_leaves_the_bucket_as_if_only_the_use_was_taken() {
        let store = MemoryStore::new();
        let budgets = Budgets::new("p:");
        let limit = RateLimit {
            per_second: 0.0001,
            burst: 5000.0,
        };
        let t = budgets
            .take_up_to(&store, BudgetKind::Tokens, "acme", &limit, 0, 4000.0, None)
            .unwrap();
        assert_eq!(amount(t), 4000.0);
        budgets
            .give_back(
                &store,
                BudgetKind::Tokens,
                "acme",
                &limit,
                0,
                4000.0 - 100.0,
            )
            .unwrap();
        let t = budgets
            .take_up_to(&store, BudgetKind::Tokens, "acme", &limit, 0, 4900.0, None)
            .unwrap();
        assert!(matches!(t, Taken::Admitted { .. }), "5000 - 100 left");
        let t = budgets
            .take_up_to(
                &store,
                BudgetKind::Tokens,
                "acme",
                &limit,
                0,
                50.0,
                Some(16.0),
            )
            .unwrap();
        assert!(
            matches!(t, Taken::Limited { .. }),
            "nothing left to clamp to"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn lease_sizes_follow_the_rate_and_the_burst() {
        let size = |per_second, burst| lease_size(&RateLimit { per_second, burst });
        assert_eq!(size(1e9, 1e9), 32.0);
        assert_eq!(size(100.0, 20.0), 2.0);
        assert_eq!(size(100.0, 1000.0), 5.0);
        assert_eq!(size(1.0, 5.0), 0.0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_lease_serves_requests_until_it_runs_out_or_expires() {
        let mut leases = Leases::default();
        assert!(!leases.take("acme", 0));
        leases.grant("acme", 2.0, 0);
        assert!(leases.take("acme", 10));
        assert!(leases.take("acme", 10));
        assert!(!leases.take("acme", 10), "used up");
        leases.grant("acme", 3.0, 20);
        assert!(!leases.take("acme", 20 + LEASE_MS), "expired");
        assert_eq!(
            leases.expired(20 + LEASE_MS),
            vec![("acme".to_string(), 5.0, 3.0)],
            "granted 2 + 3, of which 3 unused"
        );
        assert!(leases.expired(1000).is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn leased_and_given_back_tokens_keep_the_limit_exact() {
        let store = MemoryStore::new();
        let budgets = Budgets::new("p:");
        let limit = RateLimit {
            per_second: 0.001,
            burst: 10.0,
        };
        let mut leases = [Leases::default(), Leases::default()];
        let mut admitted = 0;
        for i in 0..40 {
            let vm = &mut leases[i % 2];
            if vm.take("acme", 0) {
                admitted += 1;
                continue;
            }
            let want = 1.0 + 3.0;
            if let Ok(Taken::Admitted { amount: n, .. }) = budgets.take_up_to(
                &store,
                BudgetKind::Requests,
                "acme",
                &limit,
                0,
                want,
                Some(1.0),
            ) {
                admitted += 1;
                vm.grant("acme", n - 1.0, 0);
            }
        }
        assert_eq!(admitted, 10, "the burst, whichever VM held it");
        // Unused leased tokens go back.
        let mut vm = Leases::default();
        budgets
            .give_back(&store, BudgetKind::Requests, "acme", &limit, 0, 4.0)
            .unwrap();
        let n = budgets
            .take_up_to(
                &store,
                BudgetKind::Requests,
                "acme",
                &limit,
                0,
                4.0,
                Some(1.0),
            )
            .map(amount)
            .unwrap();
        vm.grant("acme", n - 1.0, 0);
        for (tenant, _, tokens) in vm.expired(LEASE_MS) {
            budgets
                .give_back(&store, BudgetKind::Requests, &tenant, &limit, 0, tokens)
                .unwrap();
        }
        let n = budgets
            .take_up_to(
                &store,
                BudgetKind::Requests,
                "acme",
                &limit,
                0,
                10.0,
                Some(1.0),
            )
            .map(amount)
            .unwrap();
        assert_eq!(n, 3.0, "the three unused came back");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn in_fleet_mode_a_bucket_past_the_records_is_held_here_at_its_share() {
        use crate::fleet::{FleetBooks, FleetMode, OutageMode};
        let mode = FleetMode {
            outage: OutageMode::Safe,
            poll_ms: 500,
            stale_ms: 3000,
        };
        let limit = RateLimit {
            per_second: 10.0,
            burst: 8.0,
        };
        let store = MemoryStore::new();
        let books = FleetBooks::new("p:", mode).with_max_records(1);
        // N = 2 as the last answer said.
        store
            .set("p:fleet.replicas", &2u32.to_le_bytes(), None)
            .unwrap();
        let budgets = Budgets::new("p:").with_fleet(Some(books));
        let take = |tenant: &str, now_ms: u64| {
            let kind = BudgetKind::Requests;
            budgets
                .take_up_to(&store, kind, tenant, &limit, now_ms, 1.0, None)
                .unwrap()
        };
        // The first tenant has the one record; the second holds half the burst here.
        assert!(matches!(
            take("listed", 0),
            Taken::Limited { .. } | Taken::Admitted { .. }
        ));
        let admitted: Vec<bool> = (0..6)
            .map(|_| {
                matches!(
                    take("overflow", 0),
                    Taken::Admitted {
                        source: Source::Bucket,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(
            admitted,
            [true, true, true, true, false, false],
            "burst 8 ÷ 2, kept"
        );
        // It refills at 10/s ÷ 2: one more after 200 ms.
        assert_eq!(amount(take("overflow", 200)), 1.0);
        assert_eq!(amount(take("overflow", 200)), 0.0);
    }
}
