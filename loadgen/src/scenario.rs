//! The scenario file (TOML): how long to run, how tokens are signed, and per tenant
//! its weight and priority (for the share figures: the filter's config holds the
//! policy that is enforced), its load shape and its request mix.
//!
//! Parsing is strict (`deny_unknown_fields`) and goes through `serde_path_to_error`,
//! so a syntax or type error names the field path and the line; a second pass checks
//! what types cannot (ranges, names, keys that exist and parse). Every error reads
//! `<field.path>: <reason>`, like the filter's and the sidecar's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{Signer, TokenClaims};

pub use fairgate_wire::ConfigError;

/// Which OpenAI API the requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `POST /v1/chat/completions` with `messages`.
    Chat,
    /// `POST /v1/completions` with `prompt`.
    Completions,
}

impl Api {
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        }
    }
}

/// What a tenant's share of the shared pools is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareBy {
    /// Successful requests.
    Requests,
    /// The fair scheduler's cost of successful requests: prompt + 2 × completion tokens.
    Tokens,
}

/// The validated scenario.
#[derive(Debug)]
pub struct Scenario {
    pub duration: Duration,
    /// Excluded from the figures: the queues fill and connections open.
    pub warmup: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub model: String,
    pub api: Api,
    pub share_by: ShareBy,
    /// Signs every tenant's tokens; `None` when no tenant sends one.
    pub auth: Option<Auth>,
    /// In file order.
    pub tenants: Vec<Tenant>,
}

/// How tokens are signed.
#[derive(Debug)]
pub struct Auth {
    pub claims: TokenClaims,
    /// In file order; the first is the default.
    pub keys: Vec<Signer>,
}

/// One tenant of the scenario.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub weight: f64,
    pub priority: i32,
    /// The dedicated cluster the filter pins it to (outside the shared pools' shares).
    pub cluster: Option<String>,
    /// The tenant that floods: not one of the well-behaved ones the checks look at.
    pub noisy: bool,
    /// Offers more than its fair share of the shared pools (the default): only such
    /// tenants' shares are compared with their weights. A light tenant (false) asks
    /// for less; its latency shows whether it is isolated from the flood.
    pub backlogged: bool,
    /// Its tokens' signing key (an index into `Auth::keys`) and the tenant ids they
    /// name, in turn; `None`: no token.
    pub token: Option<TokenPlan>,
    /// Closed loop: this many clients, each sending its next request when the last ends.
    pub concurrency: u32,
    /// Open loop: requests started per second, whatever the answers.
    pub rate: f64,
    /// Open loop: at most this many of its requests in flight; more are dropped.
    pub max_in_flight: u32,
    /// A closed-loop client waits this long after a refusal (non-2xx) or an error.
    pub refusal_pause: Duration,
    pub mix: RequestMix,
}

#[derive(Debug, Clone)]
pub struct TokenPlan {
    pub key: usize,
    pub subjects: Vec<String>,
}

/// What each request of a tenant asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMix {
    pub max_tokens: u32,
    /// Words in the prompt.
    pub prompt_words: u32,
    /// Fraction of requests sent with `stream: true`, 0..1.
    pub stream: f64,
    /// Sent as `x-mock-completion-tokens`: the mock model server's answer length.
    pub completion_tokens: Option<u32>,
}

impl Tenant {
    /// Neither pinned to a cluster of its own nor sheddable.
    pub fn on_shared_pools(&self) -> bool {
        self.cluster.is_none() && self.priority >= 0
    }
}

impl Scenario {
    /// Reads and validates a scenario file; key files are relative to it.
    pub fn load(path: &Path) -> Result<Scenario, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(&text, base)
    }

    /// Parses and validates the TOML text of a scenario; `base` is the folder that
    /// relative key paths start from.
    pub fn parse(text: &str, base: &Path) -> Result<Scenario, ConfigError> {
        let raw: RawScenario = fairgate_wire::from_toml(text)?;
        validate(raw, base)
    }

    /// The tenants whose shares of the shared pools are compared with their weight
    /// shares: backlogged, on the shared pools, in the highest priority band there.
    pub fn share_group(&self) -> Vec<usize> {
        let member = |t: &Tenant| t.on_shared_pools() && t.backlogged;
        let top = self
            .tenants
            .iter()
            .filter(|t| member(t))
            .map(|t| t.priority)
            .max();
        self.tenants
            .iter()
            .enumerate()
            .filter(|(_, t)| member(t) && Some(t.priority) == top)
            .map(|(i, _)| i)
            .collect()
    }

    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }
}

// ---- raw shapes, exactly as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default = "default_duration_s")]
    duration_s: f64,
    #[serde(default)]
    warmup_s: Option<f64>,
    #[serde(default = "default_timeout_s")]
    timeout_s: f64,
    #[serde(default = "default_model")]
    model: String,
    #[serde(default = "default_api")]
    api: Api,
    #[serde(default = "default_share_by")]
    share_by: ShareBy,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    defaults: RawMix,
    tenants: Vec<RawTenant>,
}

fn default_duration_s() -> f64 {
    30.0
}
fn default_timeout_s() -> f64 {
    60.0
}
fn default_model() -> String {
    "fairgate-mock-1".to_string()
}
fn default_api() -> Api {
    Api::Chat
}
fn default_share_by() -> ShareBy {
    ShareBy::Requests
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default = "default_claim")]
    claim: String,
    #[serde(default = "default_expires_in_s")]
    expires_in_s: u64,
    keys: Vec<RawKey>,
}

fn default_claim() -> String {
    "tenant".to_string()
}
fn default_expires_in_s() -> u64 {
    86_400
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
    pem_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMix {
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    prompt_words: Option<u32>,
    #[serde(default)]
    stream: Option<f64>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    name: String,
    weight: f64,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    noisy: bool,
    #[serde(default = "default_true")]
    backlogged: bool,
    /// Default: true where `[auth]` is present.
    #[serde(default)]
    token: Option<bool>,
    /// The `kid` of the signing key; default: the first key.
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    token_tenants: Option<Vec<String>>,
    #[serde(default)]
    concurrency: u32,
    #[serde(default)]
    rate: f64,
    #[serde(default = "default_max_in_flight")]
    max_in_flight: u32,
    #[serde(default = "default_refusal_pause_ms")]
    refusal_pause_ms: u64,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    prompt_words: Option<u32>,
    #[serde(default)]
    stream: Option<f64>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

fn default_true() -> bool {
    true
}
fn default_max_in_flight() -> u32 {
    256
}
fn default_refusal_pause_ms() -> u64 {
    250
}

const MAX_TENANT_ID_LEN: usize = 64;

/// The filter's rule for tenant ids: 1–64 characters of `[A-Za-z0-9_-]`.
fn is_valid_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TENANT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn positive_seconds(path: &str, value: f64) -> Result<Duration, ConfigError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(ConfigError::new(path, "must be > 0"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn validate(raw: RawScenario, base: &Path) -> Result<Scenario, ConfigError> {
    let duration = positive_seconds("duration_s", raw.duration_s)?;
    let warmup_s = raw.warmup_s.unwrap_or((raw.duration_s / 5.0).min(2.0));
    if !(warmup_s.is_finite() && warmup_s >= 0.0 && warmup_s < raw.duration_s) {
        return Err(ConfigError::new(
            "warmup_s",
            format!("must be >= 0 and < duration_s ({})", raw.duration_s),
        ));
    }
    let timeout = positive_seconds("timeout_s", raw.timeout_s)?;
    if raw.model.trim().is_empty() {
        return Err(ConfigError::new("model", "must not be empty"));
    }
    let auth = raw.auth.map(|a| validate_auth(a, base)).transpose()?;
    let defaults = RequestMix {
        max_tokens: raw.defaults.max_tokens.unwrap_or(64),
        prompt_words: raw.defaults.prompt_words.unwrap_or(16),
        stream: raw.defaults.stream.unwrap_or(0.0),
        completion_tokens: raw.defaults.completion_tokens,
    };
    check_mix("defaults", &defaults)?;

    if raw.tenants.is_empty() {
        return Err(ConfigError::new("tenants", "at least one tenant is needed"));
    }
    let mut names = HashSet::new();
    let mut tenants = Vec::with_capacity(raw.tenants.len());
    for (i, t) in raw.tenants.into_iter().enumerate() {
        let path = format!("tenants[{i}]");
        if !names.insert(t.name.clone()) {
            return Err(ConfigError::new(
                format!("{path}.name"),
                format!("{:?} is used by another tenant", t.name),
            ));
        }
        tenants.push(validate_tenant(&path, t, auth.as_ref(), &defaults)?);
    }
    Ok(Scenario {
        duration,
        warmup: Duration::from_secs_f64(warmup_s),
        timeout,
        model: raw.model,
        api: raw.api,
        share_by: raw.share_by,
        auth,
        tenants,
    })
}

fn validate_auth(raw: RawAuth, base: &Path) -> Result<Auth, ConfigError> {
    if raw.keys.is_empty() {
        return Err(ConfigError::new("auth.keys", "at least one key is needed"));
    }
    if raw.claim.is_empty() {
        return Err(ConfigError::new("auth.claim", "must not be empty"));
    }
    if raw.expires_in_s == 0 {
        return Err(ConfigError::new("auth.expires_in_s", "must be > 0"));
    }
    let mut kids = HashSet::new();
    let mut keys = Vec::with_capacity(raw.keys.len());
    for (i, key) in raw.keys.into_iter().enumerate() {
        let path = format!("auth.keys[{i}]");
        if let Some(kid) = &key.kid {
            if !kids.insert(kid.clone()) {
                return Err(ConfigError::new(
                    format!("{path}.kid"),
                    format!("{kid:?} is used by another key"),
                ));
            }
        }
        let material =
            match (&key.secret_base64, &key.pem_file) {
                (Some(secret), None) => crate::auth::KeyMaterial::Secret(secret.clone()),
                (None, Some(file)) => {
                    let file = base.join(file);
                    let pem = std::fs::read_to_string(&file).map_err(|e| {
                        ConfigError::new(
                            format!("{path}.pem_file"),
                            format!("cannot read {}: {e}", file.display()),
                        )
                    })?;
                    crate::auth::KeyMaterial::Pem(pem)
                }
                _ => return Err(ConfigError::new(
                    path,
                    "needs exactly one of secret_base64 (HS256/384/512), pem_file (a private key)",
                )),
            };
        let signer = Signer::new(&key.alg, key.kid, material)
            .map_err(|(field, reason)| ConfigError::new(format!("{path}.{field}"), reason))?;
        keys.push(signer);
    }
    Ok(Auth {
        claims: TokenClaims {
            issuer: raw.issuer,
            audience: raw.audience,
            claim: raw.claim,
            expires_in: Duration::from_secs(raw.expires_in_s),
        },
        keys,
    })
}

fn check_mix(path: &str, mix: &RequestMix) -> Result<(), ConfigError> {
    if mix.max_tokens == 0 {
        return Err(ConfigError::new(
            format!("{path}.max_tokens"),
            "must be >= 1",
        ));
    }
    if !(mix.stream.is_finite() && (0.0..=1.0).contains(&mix.stream)) {
        return Err(ConfigError::new(
            format!("{path}.stream"),
            "is the fraction of streamed requests, 0 to 1",
        ));
    }
    Ok(())
}

fn validate_tenant(
    path: &str,
    t: RawTenant,
    auth: Option<&Auth>,
    defaults: &RequestMix,
) -> Result<Tenant, ConfigError> {
    if !is_valid_tenant_id(&t.name) {
        return Err(ConfigError::new(
            format!("{path}.name"),
            "a tenant id is 1 to 64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    if !(t.weight.is_finite() && t.weight > 0.0) {
        return Err(ConfigError::new(format!("{path}.weight"), "must be > 0"));
    }
    if let Some(cluster) = &t.cluster {
        if cluster.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.cluster"),
                "must not be empty",
            ));
        }
    }
    if !(t.rate.is_finite() && t.rate >= 0.0) {
        return Err(ConfigError::new(format!("{path}.rate"), "must be >= 0"));
    }
    if t.concurrency == 0 && t.rate == 0.0 {
        return Err(ConfigError::new(
            path,
            "sends nothing: set concurrency (closed loop), rate (open loop, req/s) or both",
        ));
    }
    if t.rate > 0.0 && t.max_in_flight == 0 {
        return Err(ConfigError::new(
            format!("{path}.max_in_flight"),
            "must be >= 1",
        ));
    }
    let names_token = t.key.is_some() || t.token_tenants.is_some();
    let token = match t.token.unwrap_or(auth.is_some()) {
        false => None,
        true => {
            let Some(auth) = auth else {
                return Err(ConfigError::new(
                    format!("{path}.token"),
                    "needs an [auth] section to sign tokens with",
                ));
            };
            let key = match &t.key {
                None => 0,
                Some(kid) => auth
                    .keys
                    .iter()
                    .position(|k| k.kid() == Some(kid.as_str()))
                    .ok_or_else(|| {
                        ConfigError::new(
                            format!("{path}.key"),
                            format!("no key with kid {kid:?} in auth.keys"),
                        )
                    })?,
            };
            let subjects = t.token_tenants.unwrap_or_else(|| vec![t.name.clone()]);
            if subjects.is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.token_tenants"),
                    "must name at least one tenant id",
                ));
            }
            for (j, s) in subjects.iter().enumerate() {
                if !is_valid_tenant_id(s) {
                    return Err(ConfigError::new(
                        format!("{path}.token_tenants[{j}]"),
                        "a tenant id is 1 to 64 characters of A-Z a-z 0-9 _ -",
                    ));
                }
            }
            Some(TokenPlan { key, subjects })
        }
    };
    if token.is_none() && names_token {
        return Err(ConfigError::new(
            path,
            "key and token_tenants need token = true",
        ));
    }
    let mix = RequestMix {
        max_tokens: t.max_tokens.unwrap_or(defaults.max_tokens),
        prompt_words: t.prompt_words.unwrap_or(defaults.prompt_words),
        stream: t.stream.unwrap_or(defaults.stream),
        completion_tokens: t.completion_tokens.or(defaults.completion_tokens),
    };
    check_mix(path, &mix)?;
    Ok(Tenant {
        name: t.name,
        weight: t.weight,
        priority: t.priority,
        cluster: t.cluster,
        noisy: t.noisy,
        backlogged: t.backlogged,
        token,
        concurrency: t.concurrency,
        rate: t.rate,
        max_in_flight: t.max_in_flight,
        refusal_pause: Duration::from_millis(t.refusal_pause_ms),
        mix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HS: &str = r#"
[auth]
issuer = "https://auth.example.com"
audience = "llm-gateway"
[[auth.keys]]
kid = "hs-1"
alg = "HS256"
secret_base64 = "ZmFpcmdhdGUtZGVtby1zZWNyZXQtZG8tbm90LXVzZSE="
"#;

    fn parse(text: &str) -> Result<Scenario, ConfigError> {
        Scenario::parse(text, Path::new("."))
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_full_scenario_parses_with_defaults_filled_in() {
        let s = parse(&format!(
            "duration_s = 12\n{HS}\n[defaults]\nmax_tokens = 32\nstream = 0.5\n\
             [[tenants]]\nname = \"acme\"\nweight = 4\ncluster = \"acme_dedicated\"\nconcurrency = 4\n\
             [[tenants]]\nname = \"globex\"\nweight = 3\nconcurrency = 8\nmax_tokens = 16\n\
             [[tenants]]\nname = \"free\"\nweight = 1\npriority = -1\nrate = 2.5\n\
             token_tenants = [\"trial-1\", \"trial-2\"]\n\
             [[tenants]]\nname = \"anonymous\"\nweight = 1\ntoken = false\nrate = 1\n"
        ))
        .unwrap();
        assert_eq!(s.duration, Duration::from_secs(12));
        assert_eq!(s.warmup, Duration::from_secs(2));
        assert_eq!(s.api, Api::Chat);
        assert_eq!(s.tenants.len(), 4);
        assert_eq!(s.tenants[0].cluster.as_deref(), Some("acme_dedicated"));
        assert_eq!(s.tenants[1].mix.max_tokens, 16);
        assert_eq!(s.tenants[1].mix.stream, 0.5);
        assert_eq!(s.tenants[0].mix.max_tokens, 32);
        let free = s.tenant("free").unwrap().token.as_ref().unwrap();
        assert_eq!(free.subjects, ["trial-1", "trial-2"]);
        assert!(s.tenant("anonymous").unwrap().token.is_none());
        assert_eq!(
            s.tenant("globex").unwrap().token.as_ref().unwrap().subjects,
            ["globex"]
        );
    }

    #[test]
    fn the_share_group_is_the_top_band_of_unpinned_unsheddable_tenants() {
        let s = parse(
            "[[tenants]]\nname = \"acme\"\nweight = 4\ncluster = \"acme_dedicated\"\nconcurrency = 1\n\
             [[tenants]]\nname = \"globex\"\nweight = 3\nconcurrency = 1\n\
             [[tenants]]\nname = \"hooli\"\nweight = 1\nconcurrency = 1\nnoisy = true\n\
             [[tenants]]\nname = \"free\"\nweight = 1\npriority = -1\nconcurrency = 1\n\
             [[tenants]]\nname = \"light\"\nweight = 1\nrate = 1\nbacklogged = false\n",
        )
        .unwrap();
        assert_eq!(s.share_group(), [1, 2]);
    }

    #[test]
    fn the_demo_scenario_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/scenario.toml");
        let s = Scenario::load(&path).unwrap();
        let group: Vec<&str> = s
            .share_group()
            .into_iter()
            .map(|i| s.tenants[i].name.as_str())
            .collect();
        assert_eq!(group, ["globex", "initech", "hooli"]);
        assert!(s.tenant("hooli").unwrap().noisy);
        assert!(!s.tenant("umbrella").unwrap().backlogged);
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_field_path() {
        let t = "[[tenants]]\nname = \"a\"\nweight = 1\nconcurrency = 1\n";
        let cases = [
            (format!("duration_s = 0\n{t}"), "duration_s: must be > 0"),
            (format!("duration_s = 5\nwarmup_s = 5\n{t}"), "warmup_s: must be >= 0 and < duration_s"),
            (format!("bogus = 1\n{t}"), "unknown field `bogus`"),
            ("tenants = []".to_string(), "tenants: at least one tenant is needed"),
            (format!("{t}{t}"), "tenants[1].name: \"a\" is used by another tenant"),
            (
                "[[tenants]]\nname = \"a b\"\nweight = 1\nconcurrency = 1\n".to_string(),
                "tenants[0].name: a tenant id is",
            ),
            (
                "[[tenants]]\nname = \"a\"\nweight = 0\nconcurrency = 1\n".to_string(),
                "tenants[0].weight: must be > 0",
            ),
            (
                "[[tenants]]\nname = \"a\"\nweight = 1\n".to_string(),
                "tenants[0]: sends nothing",
            ),
            (
                "[[tenants]]\nname = \"a\"\nweight = 1\nrate = -1\n".to_string(),
                "tenants[0].rate: must be >= 0",
            ),
            (
                "[[tenants]]\nname = \"a\"\nweight = 1\nconcurrency = 1\nstream = 2\n".to_string(),
                "tenants[0].stream: is the fraction",
            ),
            (
                "[[tenants]]\nname = \"a\"\nweight = \"x\"\nconcurrency = 1\n".to_string(),
                "tenants[0].weight: invalid type",
            ),
            (
                "[[tenants]]\nname = \"a\"\nweight = 1\nconcurrency = 1\ntoken = true\n".to_string(),
                "tenants[0].token: needs an [auth] section",
            ),
            (
                format!("{HS}[[tenants]]\nname = \"a\"\nweight = 1\nconcurrency = 1\nkey = \"rs-9\"\n"),
                "tenants[0].key: no key with kid \"rs-9\"",
            ),
            (
                format!("{HS}[[tenants]]\nname = \"a\"\nweight = 1\nconcurrency = 1\ntoken_tenants = [\"x y\"]\n"),
                "tenants[0].token_tenants[0]: a tenant id is",
            ),
            (
                format!("{}{t}", HS.replace("HS256", "XS999")),
                "auth.keys[0].alg: unsupported",
            ),
            (
                format!("{}{t}", HS.replace("ZmFp", "!!!!")),
                "auth.keys[0].secret_base64: not base64",
            ),
            (
                format!("{HS}[[auth.keys]]\nkid = \"hs-1\"\nalg = \"HS256\"\nsecret_base64 = \"YQ==\"\n{t}"),
                "auth.keys[1].kid: \"hs-1\" is used by another key",
            ),
            (
                format!("[auth]\n[[auth.keys]]\nalg = \"RS256\"\npem_file = \"/nonexistent.pem\"\n{t}"),
                "auth.keys[0].pem_file: cannot read /nonexistent.pem",
            ),
        ];
        for (text, expected) in cases {
            let e = error(&text);
            assert!(
                e.contains(expected),
                "{expected:?} not in {e:?} for\n{text}"
            );
        }
    }

    #[test]
    fn a_type_error_names_its_line() {
        let e = error("duration_s = 5\n[[tenants]]\nname = \"a\"\nweight = 1\nconcurrency = -3\n");
        assert!(e.starts_with("tenants[0].concurrency: "), "{e}");
        assert!(e.contains("(line 5)"), "{e}");
    }
}
