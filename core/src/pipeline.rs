//! The request-header pipeline, host-free: identify → resolve policy → budgets.
//!
//! `Gate` is one VM's view of the plugin: the validated config, that VM's token
//! cache, and the budgets in shared data. For each request it returns a `Verdict`:
//! forward (with the verified tenant to write into `forward_header`) or a local
//! reply. The glue (`host`) only fetches headers, calls `Gate::on_request_headers`,
//! and applies the verdict; everything here is tested natively with a
//! `MemoryStore` and a `ManualClock`.

use std::rc::Rc;

use crate::accounting::Accountant;
use crate::budget::{lease_size, BudgetKind, Budgets, Leases, Taken};
use crate::clock::Clock;
use crate::config::{Config, TenantPolicy, Tenants};
use crate::fleet::{FleetBooks, Source};
use crate::identity::{IdentityError, RequestHeaders, TenantIdentifier};
use crate::metrics::Decision;
use crate::response::{self, LocalReply};
use crate::store::{SharedStore, StoreError};

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Forward it; write `tenant` into the forward header.
    Forward {
        tenant: Rc<str>,
        /// The metrics label (the default policy's name for unlisted tenants, the
        /// claim label for a policy from the token).
        label: Rc<str>,
        /// The policy the request is held to (routing, admission, accounting).
        policy: Rc<TenantPolicy>,
        decision: Decision,
        /// Set when a budget could not be consulted: the request is let through.
        store_error: Option<StoreError>,
    },
    /// Answer it here.
    Reject {
        reply: LocalReply,
        label: Option<Rc<str>>,
        decision: Decision,
    },
}

/// One VM's request gate.
#[derive(Debug)]
pub struct Gate {
    identifier: TenantIdentifier,
    tenants: Tenants,
    budgets: Budgets,
    forward_header: String,
    accountant: Accountant,
    leases: Leases,
}

impl Gate {
    /// `key_prefix` namespaces shared data (see `Budgets`); `cache_seed` keys the
    /// token cache.
    pub fn new(config: Config, key_prefix: &str, cache_seed: [u8; 16]) -> Self {
        let forward_header = config.identity.forward_header.clone();
        let fleet = config
            .fleet_mode()
            .map(|mode| FleetBooks::new(key_prefix, mode));
        // The configured tenants' buckets have keys of their own; the others share.
        let own: Vec<String> = config
            .tenants
            .by_name
            .iter()
            .flat_map(|(name, policy)| {
                let models = policy
                    .models
                    .keys()
                    .map(|m| crate::accounting::model_bucket(name, m));
                std::iter::once(name.to_string()).chain(models)
            })
            .collect();
        Self {
            identifier: TenantIdentifier::new(config.identity, &config.tenants, cache_seed),
            tenants: config.tenants,
            budgets: Budgets::new(key_prefix)
                .with_fleet(fleet.clone())
                .with_own_keys(own.clone()),
            forward_header,
            accountant: Accountant::new(config.tokens, key_prefix)
                .with_fleet(fleet)
                .with_own_keys(own),
            leases: Leases::default(),
        }
    }

    /// Token accounting: request bodies and answers.
    pub fn accountant(&self) -> &Accountant {
        &self.accountant
    }

    /// The tenants and their policies.
    pub fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    /// The header the verified tenant is written to.
    pub fn forward_header(&self) -> &str {
        &self.forward_header
    }

    /// The request headers the gate reads.
    pub fn headers_read(&self) -> impl Iterator<Item = &str> {
        self.identifier.headers_read()
    }

    /// The identity part of the gate (JWKS keys in, refetch wishes out).
    pub fn identifier(&mut self) -> &mut TenantIdentifier {
        &mut self.identifier
    }

    /// Creates the budget keys of every configured tenant that has none yet.
    pub fn prepare_budgets(&self, store: &dyn SharedStore, now_ms: u64) -> Result<(), StoreError> {
        for (name, policy) in &self.tenants.by_name {
            if let Some(limit) = &policy.requests {
                self.budgets
                    .ensure(store, BudgetKind::Requests, name, limit, now_ms)?;
            }
            // Token buckets too: creating a key takes three host calls
            // (`store::cas_update`), better spent here than on a request.
            if let Some(limit) = &policy.tokens {
                self.budgets
                    .ensure(store, BudgetKind::Tokens, name, limit, now_ms)?;
            }
            for (model, limit) in &policy.models {
                let id = crate::accounting::model_bucket(name, model);
                self.budgets
                    .ensure(store, BudgetKind::Tokens, &id, limit, now_ms)?;
            }
        }
        Ok(())
    }

    /// Gives back to the shared buckets what this VM's expired request leases did not
    /// use (called on the tick).
    pub fn return_leases(
        &mut self,
        store: &dyn SharedStore,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        // VM leases come from the Envoy's bucket, or in fleet mode from its lease.
        let source = match self.budgets.fleet() {
            Some(_) => Source::Lease,
            None => Source::Bucket,
        };
        for (tenant, granted, unused) in self.leases.expired(now_ms) {
            let limit = self
                .tenants
                .resolve_tenant(&tenant)
                .and_then(|r| r.policy.requests);
            if let Some(limit) = limit {
                self.budgets.settle(
                    store,
                    BudgetKind::Requests,
                    &tenant,
                    &limit,
                    now_ms,
                    source,
                    granted as u64,
                    (granted - unused) as u64,
                )?;
            }
        }
        Ok(())
    }

    /// Decides what happens to a request, from its headers.
    pub fn on_request_headers(
        &mut self,
        headers: &impl RequestHeaders,
        store: &dyn SharedStore,
        clock: &impl Clock,
    ) -> Verdict {
        // Identity and a lease need no more than a recent reading; the shared
        // bucket, when it is reached, gets the clock's own.
        let recent_ms = clock.recent_ms();
        let (tenant, claimed) = match self.identifier.identify(headers, recent_ms / 1000) {
            Ok(identity) => (identity.tenant, identity.claimed),
            Err(e) => {
                let reply = match e {
                    IdentityError::Missing(reason) => response::missing_tenant(&reason),
                    IdentityError::Invalid(reason) => response::invalid_tenant_token(&reason),
                };
                return Verdict::Reject {
                    reply,
                    label: None,
                    decision: Decision::Unauthenticated,
                };
            }
        };
        let Some(resolved) = self.tenants.resolve(&tenant, claimed.as_ref()) else {
            return Verdict::Reject {
                reply: response::unknown_tenant(&tenant),
                label: None,
                decision: Decision::UnknownTenant,
            };
        };
        let (label, policy) = (resolved.label.clone(), resolved.policy.clone());
        // A claimed policy is not known on the tick that gives leases back: no lease.
        let leased = claimed.is_none() || self.tenants.by_name.contains_key(&tenant);
        let mut store_error = None;
        if let Some(limit) = policy.requests.as_ref() {
            if leased && self.leases.take(&tenant, recent_ms) {
                return Verdict::Forward {
                    tenant,
                    label,
                    policy,
                    decision: Decision::Admitted,
                    store_error: None,
                };
            }
            let lease = if leased { lease_size(limit) } else { 0.0 };
            let now_ms = clock.now_ms();
            match self.budgets.take_up_to(
                store,
                BudgetKind::Requests,
                &tenant,
                limit,
                now_ms,
                1.0 + lease,
                (lease > 0.0).then_some(1.0),
            ) {
                Ok(Taken::Admitted { amount, source }) => match source {
                    Source::Bucket | Source::Lease => {
                        self.leases.grant(&tenant, amount - 1.0, now_ms);
                    }
                    // An outage's local share: what is beyond this request goes back.
                    Source::Local | Source::Unlimited => {
                        let beyond = (amount - 1.0).max(0.0) as u64;
                        let _ = self.budgets.settle(
                            store,
                            BudgetKind::Requests,
                            &tenant,
                            limit,
                            now_ms,
                            source,
                            beyond,
                            0,
                        );
                    }
                },
                Ok(refused @ (Taken::Limited { .. } | Taken::Unavailable { .. }))
                    if policy.shadow =>
                {
                    // Shadow mode: counted as refused, let through, the bucket left as
                    // a refusal leaves it.
                    let decision = match refused {
                        Taken::Unavailable { .. } => Decision::ShadowFleetUnavailable,
                        _ => Decision::ShadowRateLimited,
                    };
                    return Verdict::Forward {
                        tenant,
                        label,
                        policy,
                        decision,
                        store_error: None,
                    };
                }
                Ok(Taken::Limited {
                    retry_after_ms,
                    quota,
                }) => {
                    return Verdict::Reject {
                        reply: response::rate_limited(BudgetKind::Requests, retry_after_ms, &quota),
                        label: Some(label),
                        decision: Decision::RateLimited,
                    };
                }
                Ok(Taken::Unavailable { retry_after_ms }) => {
                    return Verdict::Reject {
                        reply: response::fleet_unavailable(retry_after_ms),
                        label: Some(label),
                        decision: Decision::FleetUnavailable,
                    };
                }
                // Shared data failing is an Envoy fault, not the tenant's: serve the
                // request rather than turn every request into an error.
                Err(e) => store_error = Some(e),
            }
        }
        Verdict::Forward {
            tenant,
            label,
            policy,
            decision: if store_error.is_some() {
                Decision::BudgetError
            } else {
                Decision::Admitted
            },
            store_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::BucketState;
    use crate::clock::ManualClock;
    use crate::store::{MemoryStore, Versioned};
    use crate::testkit::{self, config_json, header, Headers, Mint, NOW_S};
    use serde_json::{json, Value};
    use std::cell::Cell;
    use wasm_bindgen_test::wasm_bindgen_test;

    const PREFIX: &str = "fairgate:test:";

    /// A gate for `config` (acme: burst 2 at 1/s; free: burst 1 at 1/s, the default).
    fn gate_for(config: &Value) -> Gate {
        Gate::new(testkit::config(config), PREFIX, [5; 16])
    }

    fn gate() -> Gate {
        gate_for(&config_json())
    }

    fn clock() -> ManualClock {
        ManualClock::at(NOW_S * 1000)
    }

    fn request_of(tenant: &str) -> Headers {
        Headers::bearer(&Mint::new("HS256", tenant).sign())
    }

    fn rejection(verdict: Verdict) -> (LocalReply, Option<Rc<str>>, Decision) {
        match verdict {
            Verdict::Reject {
                reply,
                label,
                decision,
            } => (reply, label, decision),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn is_forwarded(verdict: &Verdict) -> bool {
        matches!(verdict, Verdict::Forward { .. })
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_admitted_request_is_forwarded_with_its_tenant_and_label() {
        let store = MemoryStore::new();
        let verdict = gate().on_request_headers(&request_of("acme"), &store, &clock());
        assert_eq!(
            verdict,
            Verdict::Forward {
                tenant: "acme".into(),
                label: "acme".into(),
                policy: gate().tenants().by_name["acme"].clone(),
                decision: Decision::Admitted,
                store_error: None,
            }
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn in_shadow_mode_an_empty_bucket_lets_the_request_through_counted_as_refused() {
        for (global, tenant) in [(Some("shadow"), None), (None, Some("shadow"))] {
            let mut config = config_json();
            if let Some(mode) = global {
                config["mode"] = json!(mode);
            }
            if let Some(mode) = tenant {
                config["tenants"]["acme"]["mode"] = json!(mode);
            }
            let (mut gate, store, clock) = (gate_for(&config), MemoryStore::new(), clock());
            let decisions: Vec<Decision> = (0..4)
                .map(
                    |_| match gate.on_request_headers(&request_of("acme"), &store, &clock) {
                        Verdict::Forward { decision, .. } => decision,
                        other => panic!("shadow mode refused: {other:?}"),
                    },
                )
                .collect();
            // acme's burst is 2: the others would have been refused.
            assert_eq!(
                decisions,
                [
                    Decision::Admitted,
                    Decision::Admitted,
                    Decision::ShadowRateLimited,
                    Decision::ShadowRateLimited
                ]
            );
        }
        // A tenant may enforce under a global shadow.
        let mut config = config_json();
        config["mode"] = json!("shadow");
        config["tenants"]["acme"]["mode"] = json!("enforce");
        let (mut gate, store, clock) = (gate_for(&config), MemoryStore::new(), clock());
        for _ in 0..2 {
            assert!(is_forwarded(&gate.on_request_headers(
                &request_of("acme"),
                &store,
                &clock
            )));
        }
        let (reply, _, _) = rejection(gate.on_request_headers(&request_of("acme"), &store, &clock));
        assert_eq!(reply.status, 429);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_verified_tenant_goes_into_the_forward_header() {
        assert_eq!(gate().forward_header(), "x-fairgate-tenant");
        assert_eq!(gate().headers_read().collect::<Vec<_>>(), ["authorization"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_request_without_identity_is_answered_401_missing_tenant() {
        let store = MemoryStore::new();
        let verdict = gate().on_request_headers(&Headers::default(), &store, &clock());
        let (reply, label, decision) = rejection(verdict);
        assert_eq!(reply.status, 401);
        assert_eq!(reply.code, "missing_tenant");
        assert_eq!(header(&reply, "www-authenticate"), Some("Bearer"));
        assert_eq!(label, None);
        assert_eq!(decision, Decision::Unauthenticated);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_request_with_a_bad_token_is_answered_401_invalid_tenant_token() {
        let store = MemoryStore::new();
        let mut mint = Mint::new("HS256", "acme");
        mint.expires_at = Some(NOW_S - 3600);
        mint.issued_at = Some(NOW_S - 7200);
        let headers = Headers::bearer(&mint.sign());
        let (reply, label, decision) =
            rejection(gate().on_request_headers(&headers, &store, &clock()));
        assert_eq!(reply.status, 401);
        assert_eq!(reply.code, "invalid_tenant_token");
        assert!(header(&reply, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        assert!(reply.body.contains("expired"), "{}", reply.body);
        assert_eq!(label, None);
        assert_eq!(decision, Decision::Unauthenticated);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_tenant_without_a_default_is_answered_403() {
        let mut config = config_json();
        config.as_object_mut().unwrap().remove("default_tenant");
        let store = MemoryStore::new();
        let verdict = gate_for(&config).on_request_headers(&request_of("zeta"), &store, &clock());
        let (reply, label, decision) = rejection(verdict);
        assert_eq!(reply.status, 403);
        assert_eq!(reply.code, "unknown_tenant");
        assert!(reply.body.contains("zeta"));
        assert_eq!(label, None);
        assert_eq!(decision, Decision::UnknownTenant);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_tenant_with_a_default_is_forwarded_under_the_default_label() {
        let store = MemoryStore::new();
        let verdict = gate().on_request_headers(&request_of("zeta"), &store, &clock());
        assert_eq!(
            verdict,
            Verdict::Forward {
                tenant: "zeta".into(),
                label: "free".into(),
                policy: gate().tenants().by_name["free"].clone(),
                decision: Decision::Admitted,
                store_error: None,
            }
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn unlisted_tenants_each_get_their_own_bucket_of_the_default_policy() {
        // `free` bursts 1: each unlisted tenant gets its one request, not one between
        // them all, and the `free` tenant's own bucket is untouched.
        let store = MemoryStore::new();
        let clock = clock();
        let mut gate = gate();
        assert!(is_forwarded(&gate.on_request_headers(
            &request_of("zeta"),
            &store,
            &clock
        )));
        let (reply, label, _) =
            rejection(gate.on_request_headers(&request_of("zeta"), &store, &clock));
        assert_eq!(reply.status, 429);
        assert_eq!(label.as_deref(), Some("free"));
        assert!(is_forwarded(&gate.on_request_headers(
            &request_of("yotta"),
            &store,
            &clock
        )));
        assert!(is_forwarded(&gate.on_request_headers(
            &request_of("free"),
            &store,
            &clock
        )));
        // The configured `free` has a key of its own; the unlisted share shards.
        let budgets = Budgets::new(PREFIX).with_own_keys(["free".to_string()]);
        assert!(store
            .get(&budgets.key(BudgetKind::Requests, "free"))
            .unwrap()
            .is_some());
        for tenant in ["zeta", "yotta"] {
            assert!(store
                .get(&budgets.key(BudgetKind::Requests, tenant))
                .unwrap()
                .is_none());
            let shard = budgets.shard_key(BudgetKind::Requests, tenant);
            assert!(store.get(&shard).unwrap().is_some(), "{shard}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_exhausted_request_burst_is_answered_429_with_when_to_retry() {
        let store = MemoryStore::new();
        let clock = clock();
        let mut gate = gate();
        let acme = request_of("acme");
        for _ in 0..2 {
            assert!(is_forwarded(
                &gate.on_request_headers(&acme, &store, &clock)
            ));
        }
        let (reply, label, decision) = rejection(gate.on_request_headers(&acme, &store, &clock));
        assert_eq!(reply.status, 429);
        assert_eq!(reply.code, "rate_limit_exceeded");
        assert_eq!(label.as_deref(), Some("acme"));
        assert_eq!(decision, Decision::RateLimited);
        let retry_after: u64 = header(&reply, "retry-after").unwrap().parse().unwrap();
        assert!(retry_after >= 1);
        assert_eq!(header(&reply, "retry-after-ms"), Some("1000"));
        assert_eq!(header(&reply, "x-ratelimit-limit-requests"), Some("2"));
        assert_eq!(header(&reply, "x-ratelimit-remaining-requests"), Some("0"));
        assert_eq!(header(&reply, "x-ratelimit-reset-requests"), Some("2s"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_request_bucket_refills_as_the_clock_advances() {
        let store = MemoryStore::new();
        let clock = clock();
        let mut gate = gate();
        let acme = request_of("acme");
        while is_forwarded(&gate.on_request_headers(&acme, &store, &clock)) {}
        // 1 request/s: the next one arrives after 1000 ms, not before.
        clock.advance_ms(999);
        assert!(!is_forwarded(
            &gate.on_request_headers(&acme, &store, &clock)
        ));
        clock.advance_ms(1);
        assert!(is_forwarded(
            &gate.on_request_headers(&acme, &store, &clock)
        ));
        assert!(!is_forwarded(
            &gate.on_request_headers(&acme, &store, &clock)
        ));
    }

    /// A clock like the filter's: each reading is kept as the recent one; counts
    /// the readings, each of which is a host call in the filter.
    struct CountingClock {
        inner: ManualClock,
        recent: Cell<u64>,
        readings: Cell<u32>,
    }

    impl Clock for CountingClock {
        fn now_ms(&self) -> u64 {
            self.readings.set(self.readings.get() + 1);
            self.recent.set(self.inner.now_ms());
            self.recent.get()
        }

        fn recent_ms(&self) -> u64 {
            self.recent.get()
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_request_on_a_leased_budget_reads_no_clock() {
        let mut config = config_json();
        // 1000/s: a lease of 32 requests (50 ms of the rate, at most 32).
        config["tenants"]["acme"] =
            json!({"weight": 1, "requests_per_second": 1000, "request_burst": 1000});
        let mut gate = gate_for(&config);
        let store = MemoryStore::new();
        let clock = CountingClock {
            inner: clock(),
            recent: Cell::new(NOW_S * 1000),
            readings: Cell::new(0),
        };
        let acme = request_of("acme");
        assert!(is_forwarded(
            &gate.on_request_headers(&acme, &store, &clock)
        ));
        assert_eq!(
            clock.readings.get(),
            1,
            "the shared bucket is read at `now_ms`"
        );
        for _ in 0..32 {
            assert!(is_forwarded(
                &gate.on_request_headers(&acme, &store, &clock)
            ));
        }
        assert_eq!(clock.readings.get(), 1, "32 requests served from the lease");
        assert!(is_forwarded(
            &gate.on_request_headers(&acme, &store, &clock)
        ));
        assert_eq!(
            clock.readings.get(),
            2,
            "the lease spent, back to the bucket"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn two_vms_sharing_one_store_share_one_limit() {
        let store = MemoryStore::new();
        let clock = clock();
        let mut vm_a = gate();
        let mut vm_b = gate();
        vm_a.prepare_budgets(&store, clock.now_ms()).unwrap();
        vm_b.prepare_budgets(&store, clock.now_ms()).unwrap();
        let acme = request_of("acme");
        let mut forwarded = 0;
        for i in 0..10 {
            let vm = if i % 2 == 0 { &mut vm_a } else { &mut vm_b };
            if is_forwarded(&vm.on_request_headers(&acme, &store, &clock)) {
                forwarded += 1;
            }
        }
        assert_eq!(forwarded, 2, "acme's burst of 2 holds across both VMs");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn prepare_budgets_creates_a_full_bucket_for_every_limited_tenant() {
        let mut config = config_json();
        config["tenants"]["unmetered"] = json!({"weight": 1});
        config["tenants"]["metered"] =
            json!({"weight": 1, "tokens_per_minute": 600, "token_burst": 50});
        let gate = gate_for(&config);
        let store = MemoryStore::new();
        let now_ms = NOW_S * 1000;
        gate.prepare_budgets(&store, now_ms).unwrap();
        let budgets = Budgets::new(PREFIX);
        let state = |tenant: &str| -> Option<BucketState> {
            let stored: Versioned = store
                .get(&budgets.key(BudgetKind::Requests, tenant))
                .unwrap();
            stored.and_then(|(bytes, _)| BucketState::decode(&bytes))
        };
        assert_eq!(
            state("acme"),
            Some(BucketState {
                tokens: 2.0,
                updated_ms: now_ms
            })
        );
        assert_eq!(
            state("free"),
            Some(BucketState {
                tokens: 1.0,
                updated_ms: now_ms
            })
        );
        assert_eq!(state("unmetered"), None, "no limit, no bucket");
        let tokens: Versioned = store
            .get(&budgets.key(BudgetKind::Tokens, "metered"))
            .unwrap();
        assert_eq!(
            tokens.and_then(|(bytes, _)| BucketState::decode(&bytes)),
            Some(BucketState {
                tokens: 50.0,
                updated_ms: now_ms
            }),
            "token buckets are made at configure time too"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_without_a_request_limit_is_always_forwarded() {
        let mut config = config_json();
        config["tenants"]["unmetered"] = json!({"weight": 1});
        let mut gate = gate_for(&config);
        let store = MemoryStore::new();
        let request = request_of("unmetered");
        for _ in 0..20 {
            assert!(is_forwarded(&gate.on_request_headers(
                &request,
                &store,
                &clock()
            )));
        }
    }

    /// Shared data that refuses every operation, as a broken host would.
    struct FailingStore;

    impl SharedStore for FailingStore {
        fn get(&self, _key: &str) -> Result<Versioned, StoreError> {
            Err(StoreError::Host("unavailable".into()))
        }
        fn set(&self, _key: &str, _value: &[u8], _cas: Option<u32>) -> Result<(), StoreError> {
            Err(StoreError::Host("unavailable".into()))
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_failing_store_lets_the_request_through_and_says_so() {
        let verdict = gate().on_request_headers(&request_of("acme"), &FailingStore, &clock());
        assert_eq!(
            verdict,
            Verdict::Forward {
                tenant: "acme".into(),
                label: "acme".into(),
                policy: gate().tenants().by_name["acme"].clone(),
                decision: Decision::BudgetError,
                store_error: Some(StoreError::Host("unavailable".into())),
            }
        );
    }
}
