//! Plugin configuration: the JSON of SPEC section 2, parsed and validated in one step.
//!
//! Parsing is strict (`deny_unknown_fields`) and goes through `serde_path_to_error`,
//! so a syntax or type error names the field path. A second pass (`TryFrom`) checks
//! what types cannot: weights > 0, bursts ≥ 1, known `default_tenant`, unique key ids,
//! parsable keys. Every error reads `<field.path>: <reason>`; the glue prefixes
//! `fairgate: ` and refuses the whole configuration.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::jwt::{KeySet, VerifyingKey};

/// A configuration error, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

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
    pool: RawPool,
    #[serde(default)]
    routing: RawRouting,
    #[serde(default)]
    sidecar: Option<RawSidecar>,
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
struct RawJwt {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default = "default_claim")]
    claim: String,
    #[serde(default = "default_leeway")]
    leeway_s: u64,
    keys: Vec<RawKey>,
    #[serde(default = "default_require_exp")]
    require_exp: bool,
    #[serde(default = "default_cache_size")]
    cache_size: usize,
    #[serde(default = "default_max_token_bytes")]
    max_token_bytes: usize,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    weight: f64,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    requests_per_second: Option<f64>,
    #[serde(default)]
    request_burst: Option<f64>,
    #[serde(default)]
    tokens_per_minute: Option<f64>,
    #[serde(default)]
    token_burst: Option<f64>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    #[serde(default)]
    min_concurrency: Option<u32>,
    #[serde(default)]
    cluster: Option<String>,
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

impl Default for RawPool {
    fn default() -> Self {
        Self {
            max_concurrency: default_pool_max_concurrency(),
            queue_timeout_ms: default_queue_timeout_ms(),
            max_queue_per_tenant: default_max_queue_per_tenant(),
        }
    }
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
    pub pool: PoolConfig,
    pub routing: RoutingConfig,
    pub sidecar: Option<SidecarConfig>,
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

/// JWT verification settings, with the keys already parsed.
#[derive(Debug)]
pub struct JwtConfig {
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub claim: String,
    pub leeway_s: u64,
    pub keys: KeySet,
    pub require_exp: bool,
    pub cache_size: usize,
    pub max_token_bytes: usize,
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

/// Where a request's budgets and metrics come from: the tenant's own policy, or the
/// `default_tenant` policy for an authenticated tenant the config does not list.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedTenant<'a> {
    pub policy: &'a TenantPolicy,
    /// The name metrics are labelled with: the tenant itself when it is configured,
    /// else the default policy's name (so unlisted tenants cannot grow the stats).
    pub label: &'a str,
}

/// The configured tenants and the policy for authenticated tenants not listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenants {
    pub by_name: BTreeMap<String, TenantPolicy>,
    /// Names an entry of `by_name` (checked at load).
    pub default_tenant: Option<String>,
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
        if let Some((name, policy)) = self.by_name.get_key_value(tenant) {
            return Some(ResolvedTenant {
                policy,
                label: name,
            });
        }
        let name = self.default_tenant.as_deref()?;
        let policy = self.by_name.get(name)?;
        Some(ResolvedTenant {
            policy,
            label: name,
        })
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
        let identity = validate_identity(raw.identity)?;
        let mut tenants = BTreeMap::new();
        for (name, tenant) in raw.tenants {
            let path = format!("tenants.{name}");
            if !is_valid_tenant_id(&name) {
                return Err(ConfigError::new(
                    path,
                    "tenant ids are 1 to 64 characters of [A-Za-z0-9_-]",
                ));
            }
            let policy = validate_tenant(&path, tenant)?;
            tenants.insert(name, policy);
        }
        if let Some(default) = &raw.default_tenant {
            if !tenants.contains_key(default) {
                return Err(ConfigError::new(
                    "default_tenant",
                    format!("names no tenant in `tenants`: {default:?}"),
                ));
            }
        }
        let pool = validate_pool(raw.pool)?;
        let routing = validate_routing(raw.routing)?;
        let sidecar = raw.sidecar.map(validate_sidecar).transpose()?;
        Ok(Config {
            identity,
            tenants: Tenants {
                by_name: tenants,
                default_tenant: raw.default_tenant,
            },
            pool,
            routing,
            sidecar,
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

fn validate_identity(raw: RawIdentity) -> Result<IdentityConfig, ConfigError> {
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
    let jwt = raw.jwt.map(validate_jwt).transpose()?;
    Ok(IdentityConfig {
        jwt,
        header,
        trust_header: raw.trust_header,
        forward_header,
    })
}

fn validate_jwt(raw: RawJwt) -> Result<JwtConfig, ConfigError> {
    if raw.keys.is_empty() {
        return Err(ConfigError::new(
            "identity.jwt.keys",
            "needs at least one key",
        ));
    }
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
        require_exp: raw.require_exp,
        cache_size: raw.cache_size,
        max_token_bytes: raw.max_token_bytes,
    })
}

fn parse_key(path: &str, key: &RawKey) -> Result<VerifyingKey, ConfigError> {
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

fn validate_tenant(path: &str, raw: RawTenant) -> Result<TenantPolicy, ConfigError> {
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
    Ok(TenantPolicy {
        weight,
        priority: raw.priority,
        requests,
        tokens,
        max_concurrency: raw.max_concurrency,
        min_concurrency: raw.min_concurrency,
        cluster: raw.cluster,
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
