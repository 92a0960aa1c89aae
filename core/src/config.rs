//! Plugin configuration: the JSON of SPEC section 2, parsed and validated in one step.
//!
//! Parsing is strict (`deny_unknown_fields`) and goes through `serde_path_to_error`,
//! so a syntax or type error names the field path. A second pass (`TryFrom`) checks
//! what types cannot: weights > 0, bursts ≥ 1, known `default_tenant`, unique key ids,
//! parsable keys. Every error reads `<field.path>: <reason>`; the glue prefixes
//! `fairgate: ` and refuses the whole configuration.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;

use crate::jwt::{KeySet, VerifyingKey};
use crate::policy_claim::{PolicyClaim, RawPolicyClaim};

pub use fairgate_wire::fleet::OutageMode;
pub use fairgate_wire::ConfigError;

use crate::fleet::FleetMode;

/// The longest tenant id accepted, from a token claim, a header or the config.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// Tenant ids become metric tag values and header values, so they are kept to
/// `[A-Za-z0-9_-]`, 1 to 64 characters: no dots (the stats tag separator), no spaces.
pub fn is_valid_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TENANT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

// ---- raw shapes, exactly as written by the operator ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    identity: RawIdentity,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
    #[serde(default)]
    default_tenant: Option<String>,
    #[serde(default)]
    pool: Option<RawPool>,
    #[serde(default)]
    routing: RawRouting,
    #[serde(default)]
    sidecar: Option<RawSidecar>,
    #[serde(default)]
    tokens: Option<RawTokens>,
    /// SPEC 12: `enforce` (the default) or `shadow`, for every tenant without its own.
    #[serde(default)]
    mode: Option<Mode>,
    /// SPEC 9: fleet mode.
    #[serde(default)]
    fleet: Option<RawFleet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    #[serde(default)]
    outage: OutageMode,
}

/// Whether decisions are enforced or only computed, counted and marked (SPEC 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Shadow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    #[serde(default = "default_max_tokens")]
    default_max_tokens: u64,
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: usize,
    #[serde(default = "default_input_cost")]
    input_cost: f64,
    #[serde(default = "default_output_cost")]
    output_cost: f64,
    #[serde(default = "default_min_clamp_tokens")]
    min_clamp_tokens: u64,
}

fn default_max_tokens() -> u64 {
    1024
}
fn default_max_body_bytes() -> usize {
    1_000_000
}
fn default_input_cost() -> f64 {
    1.0
}
fn default_output_cost() -> f64 {
    2.0
}
fn default_min_clamp_tokens() -> u64 {
    16
}

impl Default for RawTokens {
    fn default() -> Self {
        Self {
            default_max_tokens: default_max_tokens(),
            max_body_bytes: default_max_body_bytes(),
            input_cost: default_input_cost(),
            output_cost: default_output_cost(),
            min_clamp_tokens: default_min_clamp_tokens(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default)]
    jwt: Option<RawJwt>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    trust_header: bool,
    #[serde(default = "default_forward_header")]
    forward_header: String,
}

fn default_forward_header() -> String {
    "x-fairgate-tenant".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwks {
    cluster: String,
    #[serde(default = "default_jwks_path")]
    path: String,
    #[serde(default = "default_jwks_refresh_s")]
    refresh_s: u64,
    #[serde(default = "default_jwks_min_refetch_s")]
    min_refetch_s: u64,
}

fn default_jwks_path() -> String {
    "/.well-known/jwks.json".to_string()
}
fn default_jwks_refresh_s() -> u64 {
    300
}
fn default_jwks_min_refetch_s() -> u64 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default = "default_claim")]
    claim: String,
    #[serde(default = "default_leeway")]
    leeway_s: u64,
    #[serde(default)]
    keys: Vec<RawKey>,
    #[serde(default)]
    jwks: Option<RawJwks>,
    #[serde(default = "default_require_exp")]
    require_exp: bool,
    #[serde(default = "default_cache_size")]
    cache_size: usize,
    #[serde(default = "default_max_token_bytes")]
    max_token_bytes: usize,
    #[serde(default)]
    policy_claim: Option<RawPolicyClaim>,
}

fn default_claim() -> String {
    "tenant".to_string()
}
fn default_leeway() -> u64 {
    60
}
fn default_require_exp() -> bool {
    true
}
fn default_cache_size() -> usize {
    4096
}
fn default_max_token_bytes() -> usize {
    16 * 1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(default)]
    kid: Option<String>,
    alg: String,
    #[serde(default)]
    secret_base64: Option<String>,
    #[serde(default)]
    pem: Option<String>,
}

/// `tenants.<id>` as written, and a policy claim's object (`policy_claim`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    pub(crate) weight: f64,
    #[serde(default)]
    pub(crate) priority: i32,
    #[serde(default)]
    pub(crate) requests_per_second: Option<f64>,
    #[serde(default)]
    pub(crate) request_burst: Option<f64>,
    #[serde(default)]
    pub(crate) tokens_per_minute: Option<f64>,
    #[serde(default)]
    pub(crate) token_burst: Option<f64>,
    #[serde(default)]
    pub(crate) max_concurrency: Option<u32>,
    #[serde(default)]
    pub(crate) min_concurrency: Option<u32>,
    #[serde(default)]
    pub(crate) cluster: Option<String>,
    #[serde(default)]
    clamp_max_tokens: bool,
    #[serde(default)]
    pub(crate) mode: Option<Mode>,
    /// Token budgets per model, beside the tenant's own.
    #[serde(default)]
    pub(crate) models: BTreeMap<String, RawModelBudget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModelBudget {
    pub(crate) tokens_per_minute: f64,
    #[serde(default)]
    pub(crate) token_burst: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    #[serde(default = "default_pool_max_concurrency")]
    max_concurrency: u32,
    #[serde(default = "default_queue_timeout_ms")]
    queue_timeout_ms: u64,
    #[serde(default = "default_max_queue_per_tenant")]
    max_queue_per_tenant: u32,
    #[serde(default)]
    scheduler: Scheduler,
}

/// How a saturated pool picks the next request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Weighted-fair (VTC), priority bands first.
    #[default]
    Fair,
    /// First come, first served across tenants: the baseline fairgate replaces,
    /// for comparison (benchmarks) only.
    Fifo,
}

fn default_pool_max_concurrency() -> u32 {
    64
}
fn default_queue_timeout_ms() -> u64 {
    30_000
}
fn default_max_queue_per_tenant() -> u32 {
    256
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    #[serde(default = "default_routing_header")]
    header: String,
    #[serde(default)]
    shared_clusters: Vec<String>,
}

fn default_routing_header() -> String {
    "x-fairgate-cluster".to_string()
}

impl Default for RawRouting {
    fn default() -> Self {
        Self {
            header: default_routing_header(),
            shared_clusters: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSidecar {
    cluster: String,
    #[serde(default = "default_sidecar_path")]
    path: String,
    #[serde(default = "default_poll_ms")]
    poll_ms: u64,
    #[serde(default = "default_stale_ms")]
    stale_ms: u64,
}

fn default_sidecar_path() -> String {
    "/v1/headroom".to_string()
}
fn default_poll_ms() -> u64 {
    500
}
fn default_stale_ms() -> u64 {
    3000
}

// ---- validated configuration ----

/// The whole validated plugin configuration.
#[derive(Debug)]
pub struct Config {
    pub identity: IdentityConfig,
    pub tenants: Tenants,
    /// Fair admission to the upstream pools; none: no concurrency control.
    pub pool: Option<PoolConfig>,
    pub routing: RoutingConfig,
    pub sidecar: Option<SidecarConfig>,
    pub tokens: TokensConfig,
    /// Fleet mode (SPEC 9): every budget held for the fleet through the sidecar.
    pub fleet: Option<FleetConfig>,
}

/// The `fleet` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetConfig {
    pub outage: OutageMode,
}

impl Config {
    /// The fleet settings, where fleet mode is on (it needs the sidecar).
    pub fn fleet_mode(&self) -> Option<FleetMode> {
        let (fleet, sidecar) = (self.fleet.as_ref()?, self.sidecar.as_ref()?);
        Some(FleetMode {
            outage: fleet.outage,
            poll_ms: sidecar.poll_ms,
            stale_ms: sidecar.stale_ms,
        })
    }
}

/// How the tenant of a request is established.
#[derive(Debug)]
pub struct IdentityConfig {
    pub jwt: Option<JwtConfig>,
    /// Lower-cased header name carrying the tenant id.
    pub header: Option<String>,
    pub trust_header: bool,
    /// Lower-cased header the verified tenant is written to for the upstream.
    pub forward_header: String,
}

/// Where the signing keys are fetched from (`identity.jwt.jwks`, SPEC 11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksConfig {
    /// The Envoy cluster of the identity provider.
    pub cluster: String,
    pub path: String,
    /// How often the keys are fetched again.
    pub refresh_s: u64,
    /// The least time between two fetches, an early one for an unknown `kid` included.
    pub min_refetch_s: u64,
}

/// JWT verification settings, with the keys already parsed.
#[derive(Debug)]
pub struct JwtConfig {
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub claim: String,
    pub leeway_s: u64,
    /// The keys in the config (`keys`), beside any fetched from `jwks`.
    pub keys: KeySet,
    pub jwks: Option<JwksConfig>,
    pub require_exp: bool,
    pub cache_size: usize,
    pub max_token_bytes: usize,
    /// Policy of unlisted tenants from their token (`policy_claim`, SPEC 11).
    pub policy_claim: Option<PolicyClaim>,
}

impl JwtConfig {
    /// The checks applied to every token besides its signature.
    pub fn expectations(&self) -> crate::jwt::Expectations {
        crate::jwt::Expectations {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            claim: self.claim.clone(),
            leeway_s: self.leeway_s,
            require_exp: self.require_exp,
            max_token_bytes: self.max_token_bytes,
            policy_claim: self.policy_claim.as_ref().map(|p| p.claim.clone()),
        }
    }
}

/// One tenant's limits. An absent limit is no limit.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantPolicy {
    pub weight: f64,
    pub priority: i32,
    pub requests: Option<RateLimit>,
    pub tokens: Option<RateLimit>,
    pub max_concurrency: Option<u32>,
    pub min_concurrency: Option<u32>,
    pub cluster: Option<String>,
    /// Where the token bucket holds less than a request's `max_tokens` but at least
    /// `tokens.min_clamp_tokens` of answer, lower `max_tokens` instead of refusing.
    pub clamp_max_tokens: bool,
    /// Token budgets per model (`tenants.<id>.models.<model>`), each held beside the
    /// tenant's own: a request for that model takes from both.
    pub models: BTreeMap<String, RateLimit>,
    /// SPEC 12 shadow mode (its own `mode`, else the top-level one): every decision is
    /// computed and counted (`shadow_<decision>`) but none enforced: nothing is
    /// refused, queued or clamped.
    pub shadow: bool,
}

/// A token-bucket limit: `per_second` refill, `burst` capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub max_concurrency: u32,
    pub queue_timeout_ms: u64,
    pub max_queue_per_tenant: u32,
    pub scheduler: Scheduler,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingConfig {
    pub header: String,
    pub shared_clusters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarConfig {
    pub cluster: String,
    pub path: String,
    pub poll_ms: u64,
    pub stale_ms: u64,
}

/// LLM token accounting (the `tokens` section): how OpenAI-compatible request
/// bodies are read and what a token costs the fair scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct TokensConfig {
    /// Whether the section was given: it turns accounting on for every tenant (it is
    /// on anyway for tenants with a token budget and whenever `pool` is set).
    pub configured: bool,
    /// The output reserved for a request that names no `max_tokens`.
    pub default_max_tokens: u64,
    /// Request bodies over this size are refused with 413.
    pub max_body_bytes: usize,
    /// Fair-scheduler cost of one input and one output token.
    pub input_cost: f64,
    pub output_cost: f64,
    /// The least answer a clamped `max_tokens` may leave.
    pub min_clamp_tokens: u64,
}

impl TokensConfig {
    /// The fair-scheduler cost of `input` and `output` tokens.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        self.input_cost * input as f64 + self.output_cost * output as f64
    }
}

/// Where a request's budgets and metrics come from: the tenant's own policy, the
/// policy its token carries (`policy_claim`), or the `default_tenant` policy for an
/// authenticated tenant the config does not list.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedTenant<'a> {
    pub policy: &'a Rc<TenantPolicy>,
    /// The name metrics are labelled with: the tenant itself when it is configured,
    /// the claim label for a policy from the token, else the default policy's name
    /// (so unlisted tenants cannot grow the stats). Shared with the config, so that
    /// a request's label costs no allocation.
    pub label: &'a Rc<str>,
}

/// The configured tenants and the policy for authenticated tenants not listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenants {
    pub by_name: BTreeMap<Rc<str>, Rc<TenantPolicy>>,
    /// Names an entry of `by_name` (checked at load).
    pub default_tenant: Option<String>,
    /// The metrics label of tenants whose policy comes from their token, where
    /// `identity.jwt.policy_claim` is set.
    pub claim_label: Option<Rc<str>>,
    /// The clusters a policy claim may pin its tenant to.
    pub claim_clusters: Vec<String>,
}

impl Config {
    /// Parses and validates the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ConfigError::new(path, strip_position(&e.into_inner().to_string()))
        })?;
        Config::try_from(raw)
    }
}

impl Tenants {
    /// The policy that applies to an authenticated tenant, or `None` (403) when the
    /// tenant is unknown and there is no default.
    pub fn resolve_tenant(&self, tenant: &str) -> Option<ResolvedTenant<'_>> {
        self.resolve(tenant, None)
    }

    /// The policy that applies to an authenticated tenant whose token carried
    /// `claimed` (see `policy_claim`): its own when it is configured, else the
    /// claimed one, else the default one; `None` (403) when there is none.
    pub fn resolve<'a>(
        &'a self,
        tenant: &str,
        claimed: Option<&'a Rc<TenantPolicy>>,
    ) -> Option<ResolvedTenant<'a>> {
        if let Some((name, policy)) = self.by_name.get_key_value(tenant) {
            return Some(ResolvedTenant {
                policy,
                label: name,
            });
        }
        if let (Some(policy), Some(label)) = (claimed, &self.claim_label) {
            return Some(ResolvedTenant { policy, label });
        }
        let name = self.default_tenant.as_deref()?;
        let (label, policy) = self.by_name.get_key_value(name)?;
        Some(ResolvedTenant { policy, label })
    }

    /// Every label requests are counted under: the configured tenants and the claim
    /// label.
    pub fn labels(&self) -> impl Iterator<Item = &Rc<str>> {
        self.by_name.keys().chain(self.claim_label.as_ref())
    }

    /// The name a request is scheduled under in the pools: its label (a configured
    /// tenant, or the default policy all unlisted tenants share), but a claim
    /// tenant's own id, since each claim tenant has a policy of its own (the pools
    /// bound how many tenants they track, `fair_queue::MAX_TENANTS`).
    pub fn scheduled_as<'a>(&self, tenant: &'a str, label: &'a str) -> &'a str {
        match &self.claim_label {
            Some(claims) if **claims == *label => tenant,
            _ => label,
        }
    }

    /// Whether some tenant may be pinned to a cluster of its own.
    pub fn pins_clusters(&self) -> bool {
        !self.claim_clusters.is_empty() || self.by_name.values().any(|p| p.cluster.is_some())
    }
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let mode = raw.mode.unwrap_or(Mode::Enforce);
        let identity = validate_identity(raw.identity, mode)?;
        let mut tenants = BTreeMap::new();
        for (name, tenant) in raw.tenants {
            let path = format!("tenants.{name}");
            if !is_valid_tenant_id(&name) {
                return Err(ConfigError::new(
                    path,
                    "tenant ids are 1 to 64 characters of [A-Za-z0-9_-]",
                ));
            }
            let policy = validate_tenant(&path, tenant, mode)?;
            tenants.insert(Rc::from(name), Rc::new(policy));
        }
        if let Some(default) = &raw.default_tenant {
            if !tenants.contains_key(default.as_str()) {
                return Err(ConfigError::new(
                    "default_tenant",
                    format!("names no tenant in `tenants`: {default:?}"),
                ));
            }
        }
        let claim = identity.jwt.as_ref().and_then(|j| j.policy_claim.as_ref());
        if let Some(claim) = claim {
            if tenants.contains_key(&claim.label) {
                return Err(ConfigError::new(
                    "identity.jwt.policy_claim.label",
                    format!(
                        "{:?} is a configured tenant: claim tenants need a label of their own",
                        claim.label
                    ),
                ));
            }
        }
        let (claim_label, claim_clusters) = claim
            .map(|c| (Some(c.label.clone()), c.clusters.clone()))
            .unwrap_or_default();
        let pool = raw.pool.map(validate_pool).transpose()?;
        let routing = validate_routing(raw.routing)?;
        let sidecar = raw.sidecar.map(validate_sidecar).transpose()?;
        let tokens = validate_tokens(raw.tokens)?;
        let fleet = match (raw.fleet, &sidecar) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "fleet",
                    "needs `sidecar`: the fleet's leases come through its poll",
                ))
            }
            (fleet, _) => fleet.map(|f| FleetConfig { outage: f.outage }),
        };
        Ok(Config {
            identity,
            tenants: Tenants {
                by_name: tenants,
                default_tenant: raw.default_tenant,
                claim_label,
                claim_clusters,
            },
            pool,
            routing,
            sidecar,
            tokens,
            fleet,
        })
    }
}

fn validate_header_name(path: &str, name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && !name.starts_with(':')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ConfigError::new(path, "must be a valid HTTP header name"))
    }
}

fn validate_identity(raw: RawIdentity, mode: Mode) -> Result<IdentityConfig, ConfigError> {
    if raw.jwt.is_none() && raw.header.is_none() {
        return Err(ConfigError::new(
            "identity",
            "needs `jwt`, `header`, or both",
        ));
    }
    if raw.trust_header && raw.header.is_none() {
        return Err(ConfigError::new(
            "identity.trust_header",
            "is true but no `identity.header` is set",
        ));
    }
    let header = raw
        .header
        .map(|h| validate_header_name("identity.header", &h))
        .transpose()?;
    let forward_header = validate_header_name("identity.forward_header", &raw.forward_header)?;
    if forward_header == "authorization" || Some(&forward_header) == header.as_ref() {
        return Err(ConfigError::new(
            "identity.forward_header",
            "must differ from the headers the identity is read from",
        ));
    }
    let jwt = raw.jwt.map(|jwt| validate_jwt(jwt, mode)).transpose()?;
    Ok(IdentityConfig {
        jwt,
        header,
        trust_header: raw.trust_header,
        forward_header,
    })
}

fn validate_jwt(raw: RawJwt, mode: Mode) -> Result<JwtConfig, ConfigError> {
    if raw.keys.is_empty() && raw.jwks.is_none() {
        return Err(ConfigError::new(
            "identity.jwt.keys",
            "needs at least one key, or `jwks`",
        ));
    }
    let jwks = raw.jwks.map(validate_jwks).transpose()?;
    if raw.claim.is_empty() {
        return Err(ConfigError::new("identity.jwt.claim", "must not be empty"));
    }
    if let Some(auds) = &raw.audiences {
        if auds.is_empty() {
            return Err(ConfigError::new(
                "identity.jwt.audiences",
                "must list at least one audience, or be left out",
            ));
        }
    }
    if raw.max_token_bytes < 64 {
        return Err(ConfigError::new(
            "identity.jwt.max_token_bytes",
            "must be at least 64",
        ));
    }
    let policy_claim = raw
        .policy_claim
        .map(|p| PolicyClaim::validate(p, mode))
        .transpose()?;
    if policy_claim.as_ref().is_some_and(|p| p.claim == raw.claim) {
        return Err(ConfigError::new(
            "identity.jwt.policy_claim.claim",
            "must differ from identity.jwt.claim (the tenant id)",
        ));
    }
    let single = raw.keys.len() == 1;
    let mut keys = Vec::with_capacity(raw.keys.len());
    for (i, key) in raw.keys.into_iter().enumerate() {
        let path = format!("identity.jwt.keys[{i}]");
        if !single && key.kid.is_none() {
            return Err(ConfigError::new(
                format!("{path}.kid"),
                "is required when more than one key is configured",
            ));
        }
        if let Some(kid) = &key.kid {
            if keys
                .iter()
                .any(|(k, _): &(Option<String>, _)| k.as_ref() == Some(kid))
            {
                return Err(ConfigError::new(
                    format!("{path}.kid"),
                    format!("duplicate key id {kid:?}"),
                ));
            }
        }
        let verifying = parse_key(&path, &key)?;
        keys.push((key.kid, verifying));
    }
    Ok(JwtConfig {
        issuer: raw.issuer,
        audiences: raw.audiences,
        claim: raw.claim,
        leeway_s: raw.leeway_s,
        keys: KeySet::new(keys),
        jwks,
        require_exp: raw.require_exp,
        cache_size: raw.cache_size,
        max_token_bytes: raw.max_token_bytes,
        policy_claim,
    })
}

fn validate_jwks(raw: RawJwks) -> Result<JwksConfig, ConfigError> {
    if raw.cluster.is_empty() {
        return Err(ConfigError::new(
            "identity.jwt.jwks.cluster",
            "must not be empty",
        ));
    }
    if !raw.path.starts_with('/') {
        return Err(ConfigError::new(
            "identity.jwt.jwks.path",
            "must start with /",
        ));
    }
    if raw.refresh_s == 0 {
        return Err(ConfigError::new(
            "identity.jwt.jwks.refresh_s",
            "must be >= 1",
        ));
    }
    if raw.min_refetch_s > raw.refresh_s {
        return Err(ConfigError::new(
            "identity.jwt.jwks.min_refetch_s",
            format!("must be <= refresh_s ({})", raw.refresh_s),
        ));
    }
    Ok(JwksConfig {
        cluster: raw.cluster,
        path: raw.path,
        refresh_s: raw.refresh_s,
        min_refetch_s: raw.min_refetch_s,
    })
}

fn parse_key(path: &str, key: &RawKey) -> Result<VerifyingKey, ConfigError> {
    if !crate::jwt::is_supported_alg(&key.alg) {
        return Err(ConfigError::new(
            format!("{path}.alg"),
            format!(
                "unsupported alg {:?} (supported: {})",
                key.alg,
                crate::jwt::SUPPORTED
            ),
        ));
    }
    let is_hmac = key.alg.starts_with("HS");
    match (is_hmac, &key.secret_base64, &key.pem) {
        (true, Some(secret), None) => {
            let bytes = decode_base64(secret).ok_or_else(|| {
                ConfigError::new(format!("{path}.secret_base64"), "is not valid base64")
            })?;
            if bytes.len() < 16 {
                return Err(ConfigError::new(
                    format!("{path}.secret_base64"),
                    "an HMAC secret must be at least 16 bytes",
                ));
            }
            VerifyingKey::hmac(&key.alg, &bytes)
                .map_err(|reason| ConfigError::new(format!("{path}.alg"), reason))
        }
        (false, None, Some(pem)) => VerifyingKey::public(&key.alg, pem).map_err(|e| match e {
            crate::jwt::KeyError::UnknownAlg(reason) => {
                ConfigError::new(format!("{path}.alg"), reason)
            }
            crate::jwt::KeyError::BadKey(reason) => ConfigError::new(format!("{path}.pem"), reason),
        }),
        (true, _, _) => Err(ConfigError::new(
            path,
            format!("alg {} needs `secret_base64` and no `pem`", key.alg),
        )),
        (false, _, _) => Err(ConfigError::new(
            path,
            format!("alg {} needs `pem` and no `secret_base64`", key.alg),
        )),
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let s = s.trim();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .ok()
}

fn positive(path: String, value: f64) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ConfigError::new(path, "must be > 0"))
    }
}

/// A rate and its burst: the burst defaults to one second (or minute) of rate, and
/// must hold at least one unit, or nothing could ever pass.
fn rate_limit(
    path: &str,
    rate_field: &str,
    rate: Option<f64>,
    burst_field: &str,
    burst: Option<f64>,
    rate_window_s: f64,
) -> Result<Option<RateLimit>, ConfigError> {
    let Some(rate) = rate else {
        if burst.is_some() {
            return Err(ConfigError::new(
                format!("{path}.{burst_field}"),
                format!("is set but `{rate_field}` is not"),
            ));
        }
        return Ok(None);
    };
    let rate = positive(format!("{path}.{rate_field}"), rate)?;
    let burst = match burst {
        Some(b) if b.is_finite() && b >= 1.0 => b,
        Some(_) => {
            return Err(ConfigError::new(
                format!("{path}.{burst_field}"),
                "must be >= 1",
            ))
        }
        None => rate.max(1.0),
    };
    Ok(Some(RateLimit {
        per_second: rate / rate_window_s,
        burst,
    }))
}

pub(crate) fn validate_tenant(
    path: &str,
    raw: RawTenant,
    mode: Mode,
) -> Result<TenantPolicy, ConfigError> {
    let weight = positive(format!("{path}.weight"), raw.weight)?;
    let requests = rate_limit(
        path,
        "requests_per_second",
        raw.requests_per_second,
        "request_burst",
        raw.request_burst,
        1.0,
    )?;
    let tokens = rate_limit(
        path,
        "tokens_per_minute",
        raw.tokens_per_minute,
        "token_burst",
        raw.token_burst,
        60.0,
    )?;
    if raw.max_concurrency == Some(0) {
        return Err(ConfigError::new(
            format!("{path}.max_concurrency"),
            "must be >= 1",
        ));
    }
    if let (Some(min), Some(max)) = (raw.min_concurrency, raw.max_concurrency) {
        if min > max {
            return Err(ConfigError::new(
                format!("{path}.min_concurrency"),
                format!("must be <= max_concurrency ({max})"),
            ));
        }
    }
    if let Some(cluster) = &raw.cluster {
        if cluster.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.cluster"),
                "must not be empty",
            ));
        }
    }
    let mut models = BTreeMap::new();
    for (model, budget) in raw.models {
        let model_path = format!("{path}.models.{model}");
        if model.is_empty() || model.len() > 256 || model.chars().any(char::is_control) {
            return Err(ConfigError::new(
                format!("{path}.models"),
                "model names are 1 to 256 printable characters",
            ));
        }
        let limit = rate_limit(
            &model_path,
            "tokens_per_minute",
            Some(budget.tokens_per_minute),
            "token_burst",
            budget.token_burst,
            60.0,
        )?;
        if let Some(limit) = limit {
            models.insert(model, limit);
        }
    }
    Ok(TenantPolicy {
        weight,
        priority: raw.priority,
        requests,
        tokens,
        max_concurrency: raw.max_concurrency,
        min_concurrency: raw.min_concurrency,
        cluster: raw.cluster,
        clamp_max_tokens: raw.clamp_max_tokens,
        shadow: raw.mode.unwrap_or(mode) == Mode::Shadow,
        models,
    })
}

fn validate_tokens(raw: Option<RawTokens>) -> Result<TokensConfig, ConfigError> {
    let configured = raw.is_some();
    let raw = raw.unwrap_or_default();
    if raw.max_body_bytes < 1024 {
        return Err(ConfigError::new("tokens.max_body_bytes", "must be >= 1024"));
    }
    for (field, cost) in [
        ("input_cost", raw.input_cost),
        ("output_cost", raw.output_cost),
    ] {
        if !cost.is_finite() || cost < 0.0 {
            return Err(ConfigError::new(format!("tokens.{field}"), "must be >= 0"));
        }
    }
    if raw.input_cost + raw.output_cost <= 0.0 {
        return Err(ConfigError::new(
            "tokens.output_cost",
            "input_cost and output_cost must not both be 0",
        ));
    }
    if raw.min_clamp_tokens == 0 {
        return Err(ConfigError::new("tokens.min_clamp_tokens", "must be >= 1"));
    }
    Ok(TokensConfig {
        configured,
        default_max_tokens: raw.default_max_tokens,
        max_body_bytes: raw.max_body_bytes,
        input_cost: raw.input_cost,
        output_cost: raw.output_cost,
        min_clamp_tokens: raw.min_clamp_tokens,
    })
}

fn validate_pool(raw: RawPool) -> Result<PoolConfig, ConfigError> {
    if raw.max_concurrency == 0 {
        return Err(ConfigError::new("pool.max_concurrency", "must be >= 1"));
    }
    if raw.queue_timeout_ms == 0 {
        return Err(ConfigError::new("pool.queue_timeout_ms", "must be >= 1"));
    }
    Ok(PoolConfig {
        max_concurrency: raw.max_concurrency,
        queue_timeout_ms: raw.queue_timeout_ms,
        max_queue_per_tenant: raw.max_queue_per_tenant,
        scheduler: raw.scheduler,
    })
}

fn validate_routing(raw: RawRouting) -> Result<RoutingConfig, ConfigError> {
    let header = validate_header_name("routing.header", &raw.header)?;
    for (i, cluster) in raw.shared_clusters.iter().enumerate() {
        if cluster.is_empty() {
            return Err(ConfigError::new(
                format!("routing.shared_clusters[{i}]"),
                "must not be empty",
            ));
        }
        if raw.shared_clusters[..i].contains(cluster) {
            return Err(ConfigError::new(
                format!("routing.shared_clusters[{i}]"),
                format!("duplicate cluster {cluster:?}"),
            ));
        }
    }
    Ok(RoutingConfig {
        header,
        shared_clusters: raw.shared_clusters,
    })
}

fn validate_sidecar(raw: RawSidecar) -> Result<SidecarConfig, ConfigError> {
    if raw.cluster.is_empty() {
        return Err(ConfigError::new("sidecar.cluster", "must not be empty"));
    }
    if !raw.path.starts_with('/') {
        return Err(ConfigError::new("sidecar.path", "must start with '/'"));
    }
    if raw.poll_ms < 10 {
        return Err(ConfigError::new("sidecar.poll_ms", "must be >= 10"));
    }
    if raw.stale_ms <= raw.poll_ms {
        return Err(ConfigError::new(
            "sidecar.stale_ms",
            format!("must be > poll_ms ({})", raw.poll_ms),
        ));
    }
    Ok(SidecarConfig {
        cluster: raw.cluster,
        path: raw.path,
        poll_ms: raw.poll_ms,
        stale_ms: raw.stale_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, P256_PUBLIC, RSA_PUBLIC};
    use serde_json::{json, Value};
    use wasm_bindgen_test::wasm_bindgen_test;

    /// SPEC section 2, verbatim but for the elided PEMs, which are the test keys.
    const SPEC_EXAMPLE: &str = r#"{
      "identity": {
        "jwt": {
          "issuer": "https://auth.example.com",
          "audiences": ["llm-gateway"],
          "claim": "tenant",
          "leeway_s": 60,
          "keys": [
            {"kid": "hs-1", "alg": "HS256", "secret_base64": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="},
            {"kid": "rs-1", "alg": "RS256", "pem": RSA_PEM},
            {"kid": "es-1", "alg": "ES256", "pem": ES_PEM}
          ]
        },
        "header": "x-tenant-id",
        "trust_header": false,
        "forward_header": "x-fairgate-tenant"
      },
      "tenants": {
        "acme": {
          "weight": 4,
          "priority": 0,
          "requests_per_second": 20, "request_burst": 40,
          "tokens_per_minute": 120000, "token_burst": 30000,
          "max_concurrency": 8, "min_concurrency": 2,
          "cluster": "acme_dedicated"
        },
        "free": { "weight": 1, "priority": -1, "requests_per_second": 1, "request_burst": 5 }
      },
      "default_tenant": "free",
      "pool": { "max_concurrency": 64, "queue_timeout_ms": 30000, "max_queue_per_tenant": 256 },
      "routing": { "header": "x-fairgate-cluster", "shared_clusters": ["pool_a", "pool_b"] },
      "sidecar": { "cluster": "fairgate_sidecar", "path": "/v1/headroom", "poll_ms": 500, "stale_ms": 3000 }
    }"#;

    fn spec_example() -> String {
        let json_string = |pem: &str| Value::String(pem.to_string()).to_string();
        SPEC_EXAMPLE
            .replace("RSA_PEM", &json_string(RSA_PUBLIC))
            .replace("ES_PEM", &json_string(P256_PUBLIC))
    }

    /// The smallest valid configuration: header identity and one tenant.
    fn minimal() -> Value {
        json!({
            "identity": {"header": "x-tenant-id"},
            "tenants": {"acme": {"weight": 1}}
        })
    }

    /// `config` with the JSON at `pointer` (whose parent must exist) set to `value`.
    fn with(mut config: Value, pointer: &str, value: Value) -> Value {
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        config
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap()
            .insert(field.to_string(), value);
        config
    }

    fn refusal(config: &Value) -> ConfigError {
        match Config::from_json(config.to_string().as_bytes()) {
            Ok(_) => panic!("config accepted: {config}"),
            Err(e) => e,
        }
    }

    /// The refusal of `minimal()` with tenant `acme` replaced by `tenant`.
    fn tenant_refusal(tenant: Value) -> ConfigError {
        refusal(&with(minimal(), "/tenants/acme", tenant))
    }

    /// The refusal of a JWT identity with these `keys`.
    fn keys_refusal(keys: Value) -> ConfigError {
        refusal(&with(minimal(), "/identity/jwt", json!({"keys": keys})))
    }

    fn assert_refused(err: &ConfigError, path: &str, reason_contains: &str) {
        assert_eq!(err.path, path, "wrong path in {err:?}");
        assert!(
            err.reason.contains(reason_contains),
            "reason of {err:?} does not mention {reason_contains:?}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_spec_example_parses_with_every_field_in_place() {
        let config = Config::from_json(spec_example().as_bytes()).unwrap();

        let jwt = config.identity.jwt.as_ref().unwrap();
        assert_eq!(jwt.issuer.as_deref(), Some("https://auth.example.com"));
        assert_eq!(jwt.audiences, Some(vec!["llm-gateway".to_string()]));
        assert_eq!(jwt.claim, "tenant");
        assert_eq!(jwt.leeway_s, 60);
        assert_eq!(
            format!("{:?}", jwt.keys),
            "KeySet { keys: [(Some(\"hs-1\"), VerifyingKey(HS256)), \
             (Some(\"rs-1\"), VerifyingKey(RS256)), (Some(\"es-1\"), VerifyingKey(ES256))] }"
        );
        assert_eq!(config.identity.header.as_deref(), Some("x-tenant-id"));
        assert!(!config.identity.trust_header);
        assert_eq!(config.identity.forward_header, "x-fairgate-tenant");

        let acme = &config.tenants.by_name["acme"];
        assert_eq!(acme.weight, 4.0);
        assert_eq!(acme.priority, 0);
        assert_eq!(
            acme.requests,
            Some(RateLimit {
                per_second: 20.0,
                burst: 40.0
            })
        );
        assert_eq!(
            acme.tokens,
            Some(RateLimit {
                per_second: 2000.0,
                burst: 30000.0
            }),
            "tokens_per_minute is refilled per second"
        );
        assert_eq!(acme.max_concurrency, Some(8));
        assert_eq!(acme.min_concurrency, Some(2));
        assert_eq!(acme.cluster.as_deref(), Some("acme_dedicated"));

        let free = &config.tenants.by_name["free"];
        assert_eq!(free.priority, -1);
        assert_eq!(
            free.requests,
            Some(RateLimit {
                per_second: 1.0,
                burst: 5.0
            })
        );
        assert_eq!(free.tokens, None);
        assert_eq!(config.tenants.default_tenant.as_deref(), Some("free"));

        assert_eq!(
            config.pool,
            Some(PoolConfig {
                max_concurrency: 64,
                queue_timeout_ms: 30000,
                max_queue_per_tenant: 256,
                scheduler: Scheduler::Fair,
            })
        );
        assert_eq!(config.routing.header, "x-fairgate-cluster");
        assert_eq!(config.routing.shared_clusters, ["pool_a", "pool_b"]);
        assert_eq!(
            config.sidecar,
            Some(SidecarConfig {
                cluster: "fairgate_sidecar".into(),
                path: "/v1/headroom".into(),
                poll_ms: 500,
                stale_ms: 3000
            })
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn absent_fields_take_their_defaults() {
        let config = testkit::config(&with(
            minimal(),
            "/identity/jwt",
            json!({"keys": [testkit::key_json("HS256")]}),
        ));
        let jwt = config.identity.jwt.as_ref().unwrap();
        assert_eq!(jwt.issuer, None);
        assert_eq!(jwt.audiences, None);
        assert_eq!(jwt.claim, "tenant");
        assert_eq!(jwt.leeway_s, 60);
        assert!(jwt.require_exp);
        assert_eq!(jwt.cache_size, 4096);
        assert_eq!(jwt.max_token_bytes, 16 * 1024);
        assert!(!config.identity.trust_header);
        assert_eq!(config.identity.forward_header, "x-fairgate-tenant");
        assert_eq!(config.pool, None, "no pool: no concurrency control");
        assert_eq!(
            config.routing,
            RoutingConfig {
                header: "x-fairgate-cluster".into(),
                shared_clusters: Vec::new()
            }
        );
        assert_eq!(config.sidecar, None);
        assert_eq!(config.tenants.default_tenant, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_with_only_a_weight_has_no_limits() {
        let config = testkit::config(&minimal());
        assert_eq!(*config.tenants.by_name["acme"], testkit::weight_only(1.0));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_rate_without_a_burst_bursts_one_window_of_rate() {
        let config = testkit::config(&with(
            minimal(),
            "/tenants/acme",
            json!({"weight": 1, "requests_per_second": 0.5, "tokens_per_minute": 600}),
        ));
        let acme = &config.tenants.by_name["acme"];
        assert_eq!(
            acme.requests,
            Some(RateLimit {
                per_second: 0.5,
                burst: 1.0
            }),
            "a burst below one request could never admit anything"
        );
        assert_eq!(
            acme.tokens,
            Some(RateLimit {
                per_second: 10.0,
                burst: 600.0
            })
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fleet_mode_needs_the_sidecar_and_names_its_outage_mode() {
        let mut json = testkit::config_json();
        json["fleet"] = json!({});
        let err = Config::from_json(json.to_string().as_bytes()).unwrap_err();
        assert_refused(&err, "fleet", "needs `sidecar`");
        json["sidecar"] = json!({"cluster": "fairgate_sidecar", "poll_ms": 200});
        let config = Config::from_json(json.to_string().as_bytes()).unwrap();
        let mode = config.fleet_mode().unwrap();
        assert_eq!(
            (mode.outage, mode.poll_ms, mode.stale_ms),
            (OutageMode::Safe, 200, 3000)
        );
        json["fleet"] = json!({"outage": "closed"});
        let config = Config::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(config.fleet_mode().unwrap().outage, OutageMode::Closed);
        json["fleet"] = json!({"outage": "never"});
        let err = Config::from_json(json.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.path, "fleet.outage");
        json["fleet"] = json!({"redis": "x"});
        let err = Config::from_json(json.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.path, "fleet.redis");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn sidecar_fields_default_when_only_the_cluster_is_given() {
        let config = testkit::config(&with(
            minimal(),
            "/sidecar",
            json!({"cluster": "fairgate_sidecar"}),
        ));
        assert_eq!(
            config.sidecar,
            Some(SidecarConfig {
                cluster: "fairgate_sidecar".into(),
                path: "/v1/headroom".into(),
                poll_ms: 500,
                stale_ms: 3000
            })
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn mode_is_enforce_or_shadow_globally_or_per_tenant() {
        let mut json = crate::testkit::config_json();
        json["mode"] = serde_json::json!("shadow");
        json["tenants"]["free"]["mode"] = serde_json::json!("enforce");
        let config = crate::testkit::config(&json);
        assert!(config.tenants.by_name["acme"].shadow);
        assert!(!config.tenants.by_name["free"].shadow);
        json["tenants"]["free"]["mode"] = serde_json::json!("loud");
        let e = Config::from_json(json.to_string().as_bytes()).map(|_| ());
        let message = e.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.starts_with("tenants.free.mode"), "{message}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn header_names_are_lower_cased() {
        let config = testkit::config(&json!({
            "identity": {"header": "X-Tenant-ID", "forward_header": "X-Verified-Tenant"},
            "routing": {"header": "X-Cluster"}
        }));
        assert_eq!(config.identity.header.as_deref(), Some("x-tenant-id"));
        assert_eq!(config.identity.forward_header, "x-verified-tenant");
        assert_eq!(config.routing.header, "x-cluster");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_refusal_reads_path_colon_reason() {
        let err = tenant_refusal(json!({"weight": 0}));
        assert_eq!(err.to_string(), "tenants.acme.weight: must be > 0");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_json_is_refused_with_a_reason() {
        let err = Config::from_json(b"{\"identity\": ").unwrap_err();
        assert!(!err.reason.is_empty());
        assert!(
            !err.reason.contains(" at line "),
            "the position is dropped: {err:?}"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_top_level_key_is_refused_with_its_name() {
        let err = refusal(&with(minimal(), "/tenant", json!({})));
        assert_refused(&err, "tenant", "unknown field `tenant`");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_nested_key_is_refused_with_its_field_path() {
        let err = tenant_refusal(json!({"wieght": 4}));
        assert_refused(&err, "tenants.acme.wieght", "unknown field `wieght`");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_value_of_the_wrong_type_is_refused_with_its_field_path() {
        let err = tenant_refusal(json!({"weight": "heavy"}));
        assert_refused(&err, "tenants.acme.weight", "invalid type");
        let err = refusal(&with(minimal(), "/identity/trust_header", json!("yes")));
        assert_refused(&err, "identity.trust_header", "invalid type");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_missing_weight_is_refused() {
        let err = tenant_refusal(json!({"priority": 1}));
        assert_refused(&err, "tenants.acme", "missing field `weight`");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_zero_weight_is_refused() {
        let err = tenant_refusal(json!({"weight": 0}));
        assert_refused(&err, "tenants.acme.weight", "must be > 0");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_negative_weight_is_refused() {
        let err = tenant_refusal(json!({"weight": -2}));
        assert_refused(&err, "tenants.acme.weight", "must be > 0");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_zero_rate_is_refused() {
        let err = tenant_refusal(json!({"weight": 1, "requests_per_second": 0}));
        assert_refused(&err, "tenants.acme.requests_per_second", "must be > 0");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_burst_below_one_is_refused() {
        let err = tenant_refusal(json!({
            "weight": 1, "requests_per_second": 5, "request_burst": 0.5
        }));
        assert_refused(&err, "tenants.acme.request_burst", "must be >= 1");
        let err = tenant_refusal(json!({
            "weight": 1, "tokens_per_minute": 600, "token_burst": 0
        }));
        assert_refused(&err, "tenants.acme.token_burst", "must be >= 1");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_burst_without_its_rate_is_refused() {
        let err = tenant_refusal(json!({"weight": 1, "request_burst": 10}));
        assert_refused(
            &err,
            "tenants.acme.request_burst",
            "`requests_per_second` is not",
        );
        let err = tenant_refusal(json!({"weight": 1, "token_burst": 10}));
        assert_refused(
            &err,
            "tenants.acme.token_burst",
            "`tokens_per_minute` is not",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn min_concurrency_above_max_concurrency_is_refused() {
        let err = tenant_refusal(json!({
            "weight": 1, "min_concurrency": 5, "max_concurrency": 4
        }));
        assert_refused(&err, "tenants.acme.min_concurrency", "max_concurrency (4)");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_zero_max_concurrency_is_refused() {
        let err = tenant_refusal(json!({"weight": 1, "max_concurrency": 0}));
        assert_refused(&err, "tenants.acme.max_concurrency", "must be >= 1");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_id_with_a_dot_is_refused() {
        let err = refusal(&with(minimal(), "/tenants/acme.eu", json!({"weight": 1})));
        assert_refused(&err, "tenants.acme.eu", "[A-Za-z0-9_-]");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_default_tenant_is_refused() {
        let err = refusal(&with(minimal(), "/default_tenant", json!("gratis")));
        assert_refused(&err, "default_tenant", "\"gratis\"");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_identity_with_neither_jwt_nor_header_is_refused() {
        let err = refusal(&with(minimal(), "/identity", json!({})));
        assert_refused(&err, "identity", "needs `jwt`, `header`, or both");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn trusting_a_header_that_is_not_configured_is_refused() {
        let config = with(
            minimal(),
            "/identity",
            json!({"jwt": {"keys": [testkit::key_json("HS256")]}, "trust_header": true}),
        );
        let err = refusal(&config);
        assert_refused(&err, "identity.trust_header", "no `identity.header`");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn forwarding_into_the_authorization_header_is_refused() {
        let err = refusal(&with(
            minimal(),
            "/identity/forward_header",
            json!("Authorization"),
        ));
        assert_refused(&err, "identity.forward_header", "must differ");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn forwarding_into_the_identity_header_is_refused() {
        let err = refusal(&with(
            minimal(),
            "/identity/forward_header",
            json!("x-tenant-id"),
        ));
        assert_refused(&err, "identity.forward_header", "must differ");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_invalid_header_name_is_refused() {
        let err = refusal(&with(minimal(), "/identity/header", json!("x tenant")));
        assert_refused(&err, "identity.header", "valid HTTP header name");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_jwt_identity_without_keys_is_refused() {
        let err = keys_refusal(json!([]));
        assert_refused(&err, "identity.jwt.keys", "at least one key");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_duplicate_kid_is_refused() {
        let err = keys_refusal(json!([
            testkit::key_json("HS256"),
            {"kid": "hs256", "alg": "RS256", "pem": RSA_PUBLIC}
        ]));
        assert_refused(
            &err,
            "identity.jwt.keys[1].kid",
            "duplicate key id \"hs256\"",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_missing_kid_is_refused_when_two_keys_are_configured() {
        let err = keys_refusal(json!([
            testkit::key_json("HS256"),
            {"alg": "RS256", "pem": RSA_PUBLIC}
        ]));
        assert_refused(&err, "identity.jwt.keys[1].kid", "more than one key");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_single_key_needs_no_kid() {
        let config = testkit::config(&with(
            minimal(),
            "/identity/jwt",
            json!({"keys": [{"alg": "ES256", "pem": P256_PUBLIC}]}),
        ));
        assert!(config.identity.jwt.is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unparsable_pem_is_refused() {
        let err = keys_refusal(json!([{
            "alg": "RS256",
            "pem": "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
        }]));
        assert_refused(
            &err,
            "identity.jwt.keys[0].pem",
            "not a valid RS256 public key",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_pem_of_another_algorithm_is_refused() {
        let err = keys_refusal(json!([{"alg": "RS256", "pem": P256_PUBLIC}]));
        assert_refused(
            &err,
            "identity.jwt.keys[0].pem",
            "not a valid RS256 public key",
        );
        let err = keys_refusal(json!([{"alg": "ES384", "pem": P256_PUBLIC}]));
        assert_refused(
            &err,
            "identity.jwt.keys[0].pem",
            "not a valid ES384 public key",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_algorithm_is_refused() {
        let err = keys_refusal(json!([{"alg": "RS1024", "pem": RSA_PUBLIC}]));
        assert_refused(
            &err,
            "identity.jwt.keys[0].alg",
            "unsupported alg \"RS1024\"",
        );
        let err = keys_refusal(
            json!([{"alg": "HS1024", "secret_base64": "c2VjcmV0LXNlY3JldC1zZWNyZXQ="}]),
        );
        assert_refused(
            &err,
            "identity.jwt.keys[0].alg",
            "unsupported alg \"HS1024\"",
        );
        let err = keys_refusal(json!([{"alg": "none"}]));
        assert_refused(&err, "identity.jwt.keys[0].alg", "unsupported alg \"none\"");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_hmac_key_given_a_pem_is_refused() {
        let err = keys_refusal(json!([{"alg": "HS256", "pem": RSA_PUBLIC}]));
        assert_refused(
            &err,
            "identity.jwt.keys[0]",
            "needs `secret_base64` and no `pem`",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_public_key_algorithm_given_a_secret_is_refused() {
        let err = keys_refusal(json!([{
            "alg": "RS256", "secret_base64": "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
        }]));
        assert_refused(
            &err,
            "identity.jwt.keys[0]",
            "needs `pem` and no `secret_base64`",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_hmac_secret_shorter_than_16_bytes_is_refused() {
        // "fifteen-bytes!!" is 15 bytes.
        let err = keys_refusal(json!([{"alg": "HS256", "secret_base64": "ZmlmdGVlbi1ieXRlcyEh"}]));
        assert_refused(
            &err,
            "identity.jwt.keys[0].secret_base64",
            "at least 16 bytes",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_secret_that_is_not_base64_is_refused() {
        let err = keys_refusal(json!([{"alg": "HS256", "secret_base64": "not base64 at all!"}]));
        assert_refused(
            &err,
            "identity.jwt.keys[0].secret_base64",
            "not valid base64",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unpadded_url_safe_secret_is_accepted() {
        // 18 bytes with '-' and '_' in their url-safe base64 and no padding.
        let config = testkit::config(&with(
            minimal(),
            "/identity/jwt",
            json!({"keys": [{"alg": "HS256", "secret_base64": "-_-_-_-_-_-_-_-_-_-_-_-_"}]}),
        ));
        assert!(config.identity.jwt.is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_sidecar_stale_time_not_above_its_poll_interval_is_refused() {
        let err = refusal(&with(
            minimal(),
            "/sidecar",
            json!({"cluster": "fairgate_sidecar", "poll_ms": 500, "stale_ms": 500}),
        ));
        assert_refused(&err, "sidecar.stale_ms", "must be > poll_ms (500)");
        let err = refusal(&with(
            minimal(),
            "/sidecar",
            json!({"cluster": "fairgate_sidecar", "poll_ms": 1000, "stale_ms": 900}),
        ));
        assert_refused(&err, "sidecar.stale_ms", "must be > poll_ms (1000)");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_duplicate_shared_cluster_is_refused() {
        let err = refusal(&with(
            minimal(),
            "/routing",
            json!({"shared_clusters": ["pool_a", "pool_b", "pool_a"]}),
        ));
        assert_refused(
            &err,
            "routing.shared_clusters[2]",
            "duplicate cluster \"pool_a\"",
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_zero_pool_capacity_is_refused() {
        let err = refusal(&with(minimal(), "/pool", json!({"max_concurrency": 0})));
        assert_refused(&err, "pool.max_concurrency", "must be >= 1");
    }

    fn tenants() -> Tenants {
        testkit::config(&testkit::config_json()).tenants
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_configured_tenant_resolves_to_its_own_policy_and_label() {
        let tenants = tenants();
        let resolved = tenants.resolve_tenant("acme").unwrap();
        assert_eq!(&**resolved.label, "acme");
        assert_eq!(resolved.policy, &tenants.by_name["acme"]);
        assert_eq!(resolved.policy.weight, 4.0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unlisted_tenant_resolves_to_the_default_policy_under_the_default_label() {
        let tenants = tenants();
        let resolved = tenants.resolve_tenant("zeta").unwrap();
        assert_eq!(&**resolved.label, "free");
        assert_eq!(resolved.policy, &tenants.by_name["free"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unlisted_tenant_without_a_default_resolves_to_nothing() {
        let mut tenants = tenants();
        tenants.default_tenant = None;
        assert!(tenants.resolve_tenant("zeta").is_none());
        assert!(tenants.resolve_tenant("acme").is_some());
    }
}
