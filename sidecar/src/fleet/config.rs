//! The `[fleet]` section of the sidecar's TOML: where the fleet's Redis is and what
//! this sidecar is called. Present (or `--redis-url` given): fleet mode is on, and
//! the file may then have no `[clusters]` at all (a sidecar for fleet leases only).

use std::time::Duration;

use redis::IntoConnectionInfo;
use serde::Deserialize;

use fairgate_wire::ConfigError;

const DEFAULT_KEY_PREFIX: &str = "fairgate";
const DEFAULT_TIMEOUT_MS: u64 = 250;
const DEFAULT_SILENT_CLAIM_MS: u64 = 30_000;

/// As written by the operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    #[serde(default)]
    redis_url: Option<String>,
    #[serde(default)]
    replica: Option<String>,
    #[serde(default)]
    cluster: bool,
    #[serde(default)]
    key_prefix: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    tls_ca_file: Option<String>,
    #[serde(default)]
    silent_claim_ms: Option<u64>,
}

/// The validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// `redis://`, `rediss://`, with `user:password@` and `/db` as needed; with
    /// `cluster`, seed nodes separated by commas.
    pub redis_url: String,
    /// This sidecar's name in logs and metrics.
    pub replica: String,
    /// `redis_url` names a Redis Cluster's nodes.
    pub cluster: bool,
    /// Prefix of every key (`<prefix>:{tenant}:requests`, ...).
    pub key_prefix: String,
    /// A Redis call slower than this is an outage.
    pub timeout: Duration,
    /// `rediss://`: the CA certificates (PEM) that sign Redis's certificate, in place
    /// of the system's roots (a platform's private CA).
    pub tls_ca_file: Option<String>,
    /// How long a pool claim that lapsed (its Envoy stopped polling) still counts as
    /// held at the Envoy's outage share: an Envoy cut off from its sidecar runs under
    /// that share, and the others must leave it room. An Envoy gone for good costs the
    /// fleet that share for as long.
    pub silent_claim: Duration,
}

impl FleetConfig {
    /// `redis_url` without its password, for logs.
    pub fn redacted_url(&self) -> String {
        self.redis_url
            .split(',')
            .map(|seed| match reqwest::Url::parse(seed.trim()) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    url.to_string()
                }
                Err(_) => "(unparsable URL)".to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Checks the section; `redis_url` is the flag's where given.
pub fn validate(raw: RawFleet, redis_url: Option<String>) -> Result<FleetConfig, ConfigError> {
    let redis_url = redis_url.or(raw.redis_url).ok_or_else(|| {
        ConfigError::new("fleet.redis_url", "required in fleet mode (or --redis-url)")
    })?;
    for seed in redis_url.split(',') {
        seed.trim().into_connection_info().map_err(|e| {
            ConfigError::new(
                "fleet.redis_url",
                format!("not a Redis URL (redis://, rediss://): {e}"),
            )
        })?;
    }
    if !raw.cluster && redis_url.contains(',') {
        return Err(ConfigError::new(
            "fleet.redis_url",
            "several URLs are a cluster's seeds: set fleet.cluster = true",
        ));
    }
    let replica = raw.replica.unwrap_or_else(default_replica);
    if replica.trim().is_empty() {
        return Err(ConfigError::new("fleet.replica", "must not be empty"));
    }
    let key_prefix = raw
        .key_prefix
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string());
    if key_prefix.is_empty() || key_prefix.contains(['{', '}']) {
        return Err(ConfigError::new(
            "fleet.key_prefix",
            "must be non-empty, without { or } (they make Redis Cluster hash tags)",
        ));
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        return Err(ConfigError::new("fleet.timeout_ms", "must be >= 1"));
    }
    Ok(FleetConfig {
        redis_url,
        replica,
        cluster: raw.cluster,
        key_prefix,
        timeout: Duration::from_millis(timeout_ms),
        tls_ca_file: raw.tls_ca_file,
        silent_claim: Duration::from_millis(raw.silent_claim_ms.unwrap_or(DEFAULT_SILENT_CLAIM_MS)),
    })
}

/// The host name and the process id: unique per sidecar on a fleet.
fn default_replica() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "sidecar".to_string());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawFleet {
        fairgate_wire::from_toml(text).unwrap()
    }

    #[test]
    fn defaults_and_the_flag_override() {
        let config = validate(raw("redis_url = \"redis://127.0.0.1:6379/0\""), None).unwrap();
        assert_eq!(config.key_prefix, "fairgate");
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.silent_claim, Duration::from_secs(30));
        assert!(config
            .replica
            .ends_with(&format!("-{}", std::process::id())));
        let config = validate(
            raw("redis_url = \"redis://a:1\""),
            Some("rediss://user:secret@b:6380/2".into()),
        )
        .unwrap();
        assert_eq!(config.redis_url, "rediss://user:secret@b:6380/2");
        assert_eq!(config.redacted_url(), "rediss://user:***@b:6380/2");
    }

    #[test]
    fn bad_sections_are_refused_with_the_field() {
        for (text, path, reason) in [
            ("replica = \"a\"", "fleet.redis_url", "required"),
            (
                "redis_url = \"http://x\"",
                "fleet.redis_url",
                "not a Redis URL",
            ),
            (
                "redis_url = \"redis://a,redis://b\"",
                "fleet.redis_url",
                "cluster = true",
            ),
            (
                "redis_url = \"redis://a\"\nkey_prefix = \"x{y}\"",
                "fleet.key_prefix",
                "hash tags",
            ),
            (
                "redis_url = \"redis://a\"\ntimeout_ms = 0",
                "fleet.timeout_ms",
                ">= 1",
            ),
        ] {
            let err = validate(raw(text), None).unwrap_err();
            assert_eq!(err.path, path, "{text}: {err}");
            assert!(err.reason.contains(reason), "{text}: {err}");
        }
        let config = validate(
            raw("redis_url = \"redis://a:7000, redis://b:7001\"\ncluster = true"),
            None,
        )
        .unwrap();
        assert!(config.cluster);
    }
}
