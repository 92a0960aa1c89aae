//! Policy in the token (`identity.jwt.policy_claim`, SPEC 11): a tenant not listed in
//! `tenants` takes its policy from an object claim of its verified token, so that
//! thousands of tenants need no per-tenant config.
//!
//! The claim holds the fields of `tenants.<id>` and is read by the same code
//! (`config::RawTenant`, `config::validate_tenant`), so one set of rules holds for
//! both. On top, every number must stay within the operator's `max` (a field absent
//! from `max` is unbounded; a limit the claim leaves out is `max`'s, so that no claim
//! is looser than `max`), a `cluster` must be one of `clusters`, and a claim may not
//! reserve slots (`min_concurrency`: reservations are configured per tenant) nor
//! turn shadow mode on where the configuration enforces. Any breach is a 401 naming
//! the field. The parsed policy is cached with the verified token, so a repeated
//! token costs no parse. Claim tenants are labelled `label` in the metrics (default
//! `claims`), never with their own ids, so that a million of them cannot grow the
//! stats.

use std::rc::Rc;

use serde::Deserialize;
use serde_json::Value;

use crate::config::{
    is_valid_tenant_id, validate_tenant, ConfigError, Mode, RawTenant, TenantPolicy,
};

/// The most per-model budgets one claim may carry.
pub const MAX_CLAIM_MODELS: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicyClaim {
    #[serde(default = "default_claim")]
    claim: String,
    #[serde(default)]
    max: RawClaimMax,
    #[serde(default)]
    clusters: Option<Vec<String>>,
    #[serde(default = "default_label")]
    label: String,
}

fn default_claim() -> String {
    "fairgate".to_string()
}
fn default_label() -> String {
    "claims".to_string()
}

/// The ceilings of a claim's values (`policy_claim.max`), in the units of
/// `tenants.<id>`. `None`: unbounded.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMax {
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    #[serde(default)]
    pub request_burst: Option<f64>,
    #[serde(default)]
    pub tokens_per_minute: Option<f64>,
    #[serde(default)]
    pub token_burst: Option<f64>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
}

type RawClaimMax = ClaimMax;

/// The validated `identity.jwt.policy_claim`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyClaim {
    /// The name of the object claim.
    pub claim: String,
    pub max: ClaimMax,
    /// The clusters a claim may pin its tenant to (none: no `cluster` in claims).
    pub clusters: Vec<String>,
    /// The metrics label of every claim tenant.
    pub label: Rc<str>,
    /// The configuration's top-level mode: a claim may not be laxer.
    pub mode: Mode,
}

impl PolicyClaim {
    /// Validates `raw` (at `identity.jwt.policy_claim`).
    pub(crate) fn validate(raw: RawPolicyClaim, mode: Mode) -> Result<Self, ConfigError> {
        const PATH: &str = "identity.jwt.policy_claim";
        if raw.claim.is_empty() {
            return Err(ConfigError::new(
                format!("{PATH}.claim"),
                "must not be empty",
            ));
        }
        if !is_valid_tenant_id(&raw.label) {
            return Err(ConfigError::new(
                format!("{PATH}.label"),
                "labels are 1 to 64 characters of [A-Za-z0-9_-]",
            ));
        }
        let max = &raw.max;
        let positive = [
            ("weight", max.weight),
            ("requests_per_second", max.requests_per_second),
            ("tokens_per_minute", max.tokens_per_minute),
        ];
        for (field, value) in positive {
            if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(ConfigError::new(
                    format!("{PATH}.max.{field}"),
                    "must be > 0",
                ));
            }
        }
        for (field, value) in [
            ("request_burst", max.request_burst),
            ("token_burst", max.token_burst),
        ] {
            if value.is_some_and(|v| !(v.is_finite() && v >= 1.0)) {
                return Err(ConfigError::new(
                    format!("{PATH}.max.{field}"),
                    "must be >= 1",
                ));
            }
        }
        if max.max_concurrency == Some(0) {
            return Err(ConfigError::new(
                format!("{PATH}.max.max_concurrency"),
                "must be >= 1",
            ));
        }
        let clusters = raw.clusters.unwrap_or_default();
        for (i, cluster) in clusters.iter().enumerate() {
            if cluster.is_empty() {
                return Err(ConfigError::new(
                    format!("{PATH}.clusters[{i}]"),
                    "must not be empty",
                ));
            }
            if clusters[..i].contains(cluster) {
                return Err(ConfigError::new(
                    format!("{PATH}.clusters[{i}]"),
                    format!("duplicate cluster {cluster:?}"),
                ));
            }
        }
        Ok(Self {
            claim: raw.claim,
            max: raw.max,
            clusters,
            label: Rc::from(raw.label),
            mode,
        })
    }

    /// The policy `value` (the claim of a verified token) gives its tenant, or why
    /// it gives none: `policy claim "<claim>": <field>: <reason>`.
    pub fn policy(&self, value: &Value) -> Result<TenantPolicy, String> {
        self.checked(value)
            .map_err(|e| format!("policy claim {:?}: {e}", self.claim))
    }

    fn checked(&self, value: &Value) -> Result<TenantPolicy, ConfigError> {
        if !value.is_object() {
            return Err(ConfigError::new("", "must be a JSON object"));
        }
        let mut raw: RawTenant = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ConfigError::new(path, e.into_inner().to_string())
        })?;
        self.bound(&mut raw)?;
        validate_tenant("", raw, self.mode).map_err(|mut e| {
            e.path = e.path.trim_start_matches('.').to_string();
            e
        })
    }

    /// Holds `raw` within `max` and `clusters`; a limit it leaves out is `max`'s.
    fn bound(&self, raw: &mut RawTenant) -> Result<(), ConfigError> {
        let max = &self.max;
        at_most("weight", Some(raw.weight), max.weight)?;
        if let Some(ceiling) = max.priority {
            if raw.priority > ceiling {
                return Err(exceeds("priority", raw.priority, ceiling));
            }
        }
        fill_rate(
            ("requests_per_second", &mut raw.requests_per_second),
            ("request_burst", &mut raw.request_burst),
            max.requests_per_second,
            max.request_burst,
        )?;
        fill_rate(
            ("tokens_per_minute", &mut raw.tokens_per_minute),
            ("token_burst", &mut raw.token_burst),
            max.tokens_per_minute,
            max.token_burst,
        )?;
        if raw.models.len() > MAX_CLAIM_MODELS {
            return Err(ConfigError::new(
                "models",
                format!("at most {MAX_CLAIM_MODELS} models"),
            ));
        }
        for (model, budget) in &raw.models {
            at_most(
                &format!("models.{model}.tokens_per_minute"),
                Some(budget.tokens_per_minute),
                max.tokens_per_minute,
            )?;
            at_most(
                &format!("models.{model}.token_burst"),
                budget.token_burst,
                max.token_burst,
            )?;
        }
        match (raw.max_concurrency, max.max_concurrency) {
            (Some(value), Some(ceiling)) if value > ceiling => {
                return Err(exceeds("max_concurrency", value, ceiling))
            }
            (None, ceiling) => raw.max_concurrency = ceiling,
            _ => {}
        }
        if raw.min_concurrency.is_some() {
            return Err(ConfigError::new(
                "min_concurrency",
                "is not allowed in a policy claim (reservations are configured per tenant)",
            ));
        }
        if let Some(cluster) = &raw.cluster {
            if !self.clusters.contains(cluster) {
                return Err(ConfigError::new(
                    "cluster",
                    format!(
                        "{cluster:?} is not one of identity.jwt.policy_claim.clusters ({})",
                        self.clusters.join(", ")
                    ),
                ));
            }
        }
        if raw.mode == Some(Mode::Shadow) && self.mode == Mode::Enforce {
            return Err(ConfigError::new(
                "mode",
                "\"shadow\" is not allowed where the configuration enforces",
            ));
        }
        Ok(())
    }
}

fn exceeds(
    field: &str,
    value: impl std::fmt::Display,
    ceiling: impl std::fmt::Display,
) -> ConfigError {
    ConfigError::new(field, format!("{value} exceeds max {ceiling}"))
}

fn at_most(field: &str, value: Option<f64>, ceiling: Option<f64>) -> Result<(), ConfigError> {
    match (value, ceiling) {
        // NaN or infinity are refused by the tenant's own validation (or here).
        (Some(v), Some(c)) if v > c || v.is_nan() => Err(exceeds(field, v, c)),
        _ => Ok(()),
    }
}

/// A rate and its burst held within their ceilings. A rate left out is its ceiling,
/// with its burst (or the burst's ceiling); a burst left out beside a rate is one
/// window of that rate, at most its ceiling.
fn fill_rate(
    (rate_field, rate): (&str, &mut Option<f64>),
    (burst_field, burst): (&str, &mut Option<f64>),
    max_rate: Option<f64>,
    max_burst: Option<f64>,
) -> Result<(), ConfigError> {
    at_most(rate_field, *rate, max_rate)?;
    at_most(burst_field, *burst, max_burst)?;
    if rate.is_none() && max_rate.is_some() {
        *rate = max_rate;
        *burst = burst.or(max_burst);
    }
    if let (Some(r), None, Some(c)) = (*rate, *burst, max_burst) {
        *burst = Some(r.max(1.0).min(c));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::{Config, RateLimit};
    use crate::identity::TenantIdentifier;
    use crate::metrics::Decision;
    use crate::pipeline::{Gate, Verdict};
    use crate::store::MemoryStore;
    use crate::testkit::{self, Headers, Mint, NOW_S};
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn claim() -> PolicyClaim {
        let raw: RawPolicyClaim = serde_json::from_value(json!({
            "claim": "fairgate",
            "max": {
                "weight": 8, "priority": 1, "requests_per_second": 100,
                "request_burst": 200, "tokens_per_minute": 60000, "max_concurrency": 16
            },
            "clusters": ["gold"]
        }))
        .unwrap();
        PolicyClaim::validate(raw, Mode::Enforce).unwrap()
    }

    fn refusal(value: Value) -> String {
        claim().policy(&value).unwrap_err()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_claim_within_max_gives_the_policy_of_a_configured_tenant() {
        let policy = claim()
            .policy(&json!({
                "weight": 2, "requests_per_second": 5, "request_burst": 2,
                "max_concurrency": 4, "cluster": "gold", "clamp_max_tokens": true
            }))
            .unwrap();
        assert_eq!(policy.weight, 2.0);
        assert_eq!(
            policy.requests,
            Some(RateLimit {
                per_second: 5.0,
                burst: 2.0
            })
        );
        assert_eq!(policy.max_concurrency, Some(4));
        assert_eq!(policy.cluster.as_deref(), Some("gold"));
        assert!(policy.clamp_max_tokens && !policy.shadow);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_limit_the_claim_leaves_out_is_the_max() {
        let policy = claim().policy(&json!({"weight": 1})).unwrap();
        assert_eq!(
            policy.requests,
            Some(RateLimit {
                per_second: 100.0,
                burst: 200.0
            })
        );
        assert_eq!(policy.tokens.map(|t| t.per_second), Some(1000.0));
        assert_eq!(policy.max_concurrency, Some(16));
        // A rate alone: its burst is one second of it, within the max burst.
        let policy = claim()
            .policy(&json!({"weight": 1, "requests_per_second": 3}))
            .unwrap();
        assert_eq!(policy.requests.map(|r| r.burst), Some(3.0));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_value_over_its_max_is_refused_naming_the_field() {
        assert_eq!(
            refusal(json!({"weight": 1, "requests_per_second": 500})),
            "policy claim \"fairgate\": requests_per_second: 500 exceeds max 100"
        );
        assert_eq!(
            refusal(json!({"weight": 9})),
            "policy claim \"fairgate\": weight: 9 exceeds max 8"
        );
        assert_eq!(
            refusal(json!({"weight": 1, "priority": 2})),
            "policy claim \"fairgate\": priority: 2 exceeds max 1"
        );
        assert_eq!(
            refusal(json!({"weight": 1, "max_concurrency": 17})),
            "policy claim \"fairgate\": max_concurrency: 17 exceeds max 16"
        );
        assert_eq!(
            refusal(json!({"weight": 1, "models": {"gpt-4o": {"tokens_per_minute": 90000}}})),
            "policy claim \"fairgate\": models.gpt-4o.tokens_per_minute: 90000 exceeds max 60000"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_claim_is_validated_by_the_rules_of_the_config() {
        assert_eq!(
            refusal(json!({"weight": 0})),
            "policy claim \"fairgate\": weight: must be > 0"
        );
        assert_eq!(
            refusal(json!({"weight": 1, "request_burst": 0.5})),
            "policy claim \"fairgate\": request_burst: must be >= 1"
        );
        let unknown = refusal(json!({"weight": 1, "burst": 3}));
        assert!(
            unknown.starts_with("policy claim \"fairgate\": burst: unknown field `burst`"),
            "{unknown}"
        );
        let typed = refusal(json!({"weight": "heavy"}));
        assert!(
            typed.starts_with("policy claim \"fairgate\": weight: invalid type"),
            "{typed}"
        );
        assert_eq!(
            refusal(json!("gold")),
            "policy claim \"fairgate\": must be a JSON object"
        );
        let missing = refusal(json!({}));
        assert!(missing.contains("missing field `weight`"), "{missing}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_claim_may_pin_only_an_allowed_cluster_and_reserve_nothing() {
        assert!(refusal(json!({"weight": 1, "cluster": "platinum"}))
            .starts_with("policy claim \"fairgate\": cluster: \"platinum\" is not one of"));
        assert!(refusal(json!({"weight": 1, "min_concurrency": 1}))
            .starts_with("policy claim \"fairgate\": min_concurrency: is not allowed"));
        let mut no_clusters = claim();
        no_clusters.clusters.clear();
        assert!(no_clusters
            .policy(&json!({"weight": 1, "cluster": "gold"}))
            .is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_claim_may_not_turn_shadow_mode_on_where_the_config_enforces() {
        assert!(refusal(json!({"weight": 1, "mode": "shadow"}))
            .starts_with("policy claim \"fairgate\": mode:"));
        let mut shadow = claim();
        shadow.mode = Mode::Shadow;
        assert!(shadow.policy(&json!({"weight": 1})).unwrap().shadow);
        let enforcing = shadow
            .policy(&json!({"weight": 1, "mode": "enforce"}))
            .unwrap();
        assert!(!enforcing.shadow);
    }

    /// `testkit::config_json` with claims `fairgate` of at most 10 requests/s,
    /// burst 4, and cluster `gold` allowed.
    fn claims_config() -> Value {
        let mut config = testkit::config_json();
        config["identity"]["jwt"]["policy_claim"] = json!({
            "claim": "fairgate",
            "max": {"weight": 4, "requests_per_second": 10, "request_burst": 4},
            "clusters": ["gold"]
        });
        config
    }

    fn config_refusal(policy_claim: Value) -> String {
        let mut config = testkit::config_json();
        config["identity"]["jwt"]["policy_claim"] = policy_claim;
        Config::from_json(config.to_string().as_bytes())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_bad_policy_claim_is_refused_with_its_field_path() {
        assert_eq!(
            config_refusal(json!({"max": {"weight": 0}})),
            "identity.jwt.policy_claim.max.weight: must be > 0"
        );
        assert_eq!(
            config_refusal(json!({"max": {"request_burst": 0.5}})),
            "identity.jwt.policy_claim.max.request_burst: must be >= 1"
        );
        assert_eq!(
            config_refusal(json!({"max": {"max_concurrency": 0}})),
            "identity.jwt.policy_claim.max.max_concurrency: must be >= 1"
        );
        assert!(config_refusal(json!({"max": {"cluster": "gold"}}))
            .starts_with("identity.jwt.policy_claim.max.cluster: unknown field `cluster`"));
        assert!(config_refusal(json!({"maximum": {}}))
            .starts_with("identity.jwt.policy_claim.maximum: unknown field `maximum`"));
        assert_eq!(
            config_refusal(json!({"clusters": ["gold", "gold"]})),
            "identity.jwt.policy_claim.clusters[1]: duplicate cluster \"gold\""
        );
        assert_eq!(
            config_refusal(json!({"claim": "tenant"})),
            "identity.jwt.policy_claim.claim: must differ from identity.jwt.claim (the tenant id)"
        );
        assert!(config_refusal(json!({"label": "acme"}))
            .starts_with("identity.jwt.policy_claim.label: \"acme\" is a configured tenant"));
        assert!(config_refusal(json!({"label": "a.b"}))
            .starts_with("identity.jwt.policy_claim.label: labels are"));
    }

    fn gate() -> Gate {
        Gate::new(
            testkit::config(&claims_config()),
            "fairgate:claims:",
            [9; 16],
        )
    }

    /// A request of `tenant` whose token carries `claim` (none: no policy claim).
    fn request(tenant: &str, claim: Option<Value>) -> Headers {
        let mut mint = Mint::new("HS256", tenant);
        if let Some(claim) = claim {
            mint.custom.insert("fairgate".into(), claim);
        }
        Headers::bearer(&mint.sign())
    }

    fn decide(gate: &mut Gate, store: &MemoryStore, headers: &Headers) -> Verdict {
        gate.on_request_headers(headers, store, &ManualClock::at(NOW_S * 1000))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn each_claim_tenant_is_held_to_its_own_bucket_under_the_claims_label() {
        let (mut gate, store) = (gate(), MemoryStore::new());
        let claim = json!({"weight": 1, "requests_per_second": 1, "request_burst": 2});
        for tenant in ["t-1", "t-2", "t-3"] {
            let headers = request(tenant, Some(claim.clone()));
            for _ in 0..2 {
                match decide(&mut gate, &store, &headers) {
                    Verdict::Forward {
                        tenant: t,
                        label,
                        policy,
                        ..
                    } => {
                        assert_eq!((&*t, &*label), (tenant, "claims"));
                        assert_eq!(policy.requests.map(|r| r.burst), Some(2.0));
                    }
                    other => panic!("{tenant} refused: {other:?}"),
                }
            }
            match decide(&mut gate, &store, &headers) {
                Verdict::Reject { reply, label, .. } => {
                    assert_eq!(reply.status, 429, "{tenant}: {}", reply.body);
                    assert_eq!(label.as_deref(), Some("claims"));
                }
                other => panic!("{tenant}'s third request passed: {other:?}"),
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_claim_out_of_bounds_is_answered_401_naming_the_field() {
        let (mut gate, store) = (gate(), MemoryStore::new());
        let headers = request(
            "t-1",
            Some(json!({"weight": 1, "requests_per_second": 500})),
        );
        match decide(&mut gate, &store, &headers) {
            Verdict::Reject {
                reply, decision, ..
            } => {
                assert_eq!((reply.status, reply.code), (401, "invalid_tenant_token"));
                assert!(
                    reply.body.contains(
                        "policy claim \\\"fairgate\\\": requests_per_second: 500 exceeds max 10"
                    ),
                    "{}",
                    reply.body
                );
                assert_eq!(decision, Decision::Unauthenticated);
            }
            other => panic!("passed: {other:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_without_the_claim_falls_back_to_the_default_and_a_listed_one_ignores_it() {
        let (mut gate, store) = (gate(), MemoryStore::new());
        let label = |verdict: Verdict| match verdict {
            Verdict::Forward { label, .. } => label.to_string(),
            other => panic!("refused: {other:?}"),
        };
        assert_eq!(
            label(decide(&mut gate, &store, &request("t-1", None))),
            "free"
        );
        // Listed: its own policy, even with a claim that would be refused.
        let loud = json!({"weight": 100});
        assert_eq!(
            label(decide(&mut gate, &store, &request("acme", Some(loud)))),
            "acme"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_repeated_token_reuses_its_parsed_policy() {
        let config = testkit::config(&claims_config());
        let mut identifier = TenantIdentifier::new(config.identity, &config.tenants, [1; 16]);
        let headers = request("t-1", Some(json!({"weight": 2, "cluster": "gold"})));
        let first = identifier.identify(&headers, NOW_S).unwrap();
        let again = identifier.identify(&headers, NOW_S + 1).unwrap();
        let (Some(first), Some(again)) = (first.claimed, again.claimed) else {
            panic!("no claimed policy");
        };
        assert!(Rc::ptr_eq(&first, &again), "parsed once, then cached");
        assert_eq!(first.cluster.as_deref(), Some("gold"));
        assert_eq!(config.tenants.scheduled_as("t-1", "claims"), "t-1");
        assert_eq!(config.tenants.scheduled_as("zeta", "free"), "free");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn without_max_every_value_is_accepted() {
        let raw: RawPolicyClaim = serde_json::from_value(json!({})).unwrap();
        let open = PolicyClaim::validate(raw, Mode::Enforce).unwrap();
        assert_eq!(open.claim, "fairgate");
        assert_eq!(&*open.label, "claims");
        let policy = open
            .policy(&json!({"weight": 1000, "requests_per_second": 1e6}))
            .unwrap();
        assert_eq!(policy.requests.map(|r| r.per_second), Some(1e6));
        assert_eq!(policy.max_concurrency, None);
    }
}
