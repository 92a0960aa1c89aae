//! What the sidecar and the filter share: the JSON of `GET /v1/headroom` (SPEC
//! section 5), their contract, the fleet poll of fleet mode ([`fleet`], SPEC section
//! 9), and `ConfigError`, the field-path error both report for a bad configuration.
//! Only serde here, so that the wasm filter can use it.
//!
//! Fields beyond the SPEC's (`base_capacity`, `limited_by`, `model_servers`, a GPU's
//! `healthy`, ...) are additions a reader may ignore; none of these types refuses
//! unknown fields, so either side can add one without breaking the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod fleet;

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headroom {
    /// +1 on every new snapshot.
    pub version: u64,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub generated_at_ms: u64,
    /// `nvml` or `sim`.
    pub source: String,
    pub clusters: BTreeMap<String, ClusterHeadroom>,
}

/// One Envoy cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterHeadroom {
    /// 0 (saturated or unhealthy) .. 1 (idle).
    pub headroom: f64,
    /// Suggested concurrency now; 0 when unhealthy.
    pub capacity: u32,
    pub healthy: bool,
    /// The configured concurrency when idle.
    #[serde(default)]
    pub base_capacity: u32,
    /// The signal that set `headroom`: `kv_cache`, `gpu_memory`, `queue` or
    /// `gpu_utilization`; absent when unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<String>,
    #[serde(default)]
    pub gpus: Vec<GpuHeadroom>,
    /// Absent when the cluster has no model-server endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_servers: Option<ModelServers>,
}

/// One GPU (or MIG instance) of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuHeadroom {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_index: Option<u32>,
    pub uuid: String,
    /// The product name (`NVIDIA H100 80GB HBM3`); absent where unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub memory_free_bytes: u64,
    pub memory_total_bytes: u64,
    /// 0..1; 0 where the device does not report it (MIG instances).
    pub utilization: f64,
    pub healthy: bool,
    /// Why the GPU is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a cluster's model servers reported, over those that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelServers {
    pub endpoints: u32,
    pub endpoints_up: u32,
    /// Sum over the servers that reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_waiting: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_running: Option<f64>,
    /// Mean over the servers that reported it, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_usage: Option<f64>,
}

/// A configuration error, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses a TOML config file into `T`; an error names the field path and the line,
/// `path: reason (line N)`, without the source snippet toml would draw.
#[cfg(feature = "toml")]
pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let error = |path: String, e: toml::de::Error| {
        let message = e.message().trim_end();
        match e.span() {
            Some(span) => {
                let line = text
                    .bytes()
                    .take(span.start)
                    .filter(|b| *b == b'\n')
                    .count()
                    + 1;
                ConfigError::new(path, format!("{message} (line {line})"))
            }
            None => ConfigError::new(path, message),
        }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| error(String::new(), e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        error(path, e.into_inner())
    })
}
