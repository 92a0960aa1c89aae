//! Sidecar configuration: the TOML file, parsed and validated in one step.
//!
//! Parsing is strict (`deny_unknown_fields`) and goes through `serde_path_to_error`, so
//! a syntax or type error names the field path (and the line). A second pass checks
//! what types cannot: periods in range, capacities consistent, cluster names usable as
//! Envoy cluster names, endpoint URLs, sim curves, and — where the GPUs are known, as
//! with `sim` — that every GPU a cluster names exists ([`check_gpu_refs`] does the same
//! for NVML's GPUs at start-up). Every error reads `<field.path>: <reason>`.
//!
//! The command-line flags (`--listen`, `--source`) override the file before the checks,
//! so `--source sim` with no `[sim]` section is refused like the file saying it.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::fleet::config::{FleetConfig, RawFleet};
use crate::gpu::GpuStat;
use crate::headroom::Policy;
use crate::sim::{Curve, CurvePoint, SimGpu};

pub use fairgate_wire::ConfigError;

/// Where GPU readings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The NVIDIA driver, through NVML.
    Nvml,
    /// GPUs described in the config's `[sim]` section.
    Sim,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Nvml => "nvml",
            SourceKind::Sim => "sim",
        }
    }
}

/// A GPU as a cluster names it: by index (`0`) or by UUID (`"GPU-…"`, `"MIG-…"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GpuRef {
    Index(u32),
    Uuid(String),
}

impl GpuRef {
    /// Whether `gpu` is the device this names. An index names the physical GPU only;
    /// a MIG instance is named by its UUID.
    pub fn matches(&self, gpu: &GpuStat) -> bool {
        match self {
            GpuRef::Index(i) => gpu.index == *i && gpu.mig_index.is_none(),
            GpuRef::Uuid(u) => gpu.uuid == *u,
        }
    }
}

impl fmt::Display for GpuRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuRef::Index(i) => write!(f, "index {i}"),
            GpuRef::Uuid(u) => write!(f, "UUID {u:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for GpuRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl Visitor<'_> for RefVisitor {
            type Value = GpuRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a GPU index (an integer) or UUID (a string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GpuRef, E> {
                u32::try_from(v)
                    .map(GpuRef::Index)
                    .map_err(|_| E::custom(format!("GPU index {v} is out of range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GpuRef, E> {
                u32::try_from(v)
                    .map(GpuRef::Index)
                    .map_err(|_| E::custom(format!("GPU index {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GpuRef, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("a GPU UUID must not be empty"));
                }
                Ok(GpuRef::Uuid(v.to_string()))
            }
        }
        deserializer.deserialize_any(RefVisitor)
    }
}

/// One Envoy cluster: the GPUs and model servers behind it, and its capacity policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub gpus: Vec<GpuRef>,
    /// Prometheus `/metrics` URLs of the cluster's model servers.
    pub endpoints: Vec<reqwest::Url>,
    pub policy: Policy,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub source: SourceKind,
    pub poll: Duration,
    /// `/healthz` answers 503 once the last successful poll is older than this.
    pub stale: Duration,
    pub scrape_timeout: Duration,
    /// The simulated GPUs (present whenever `source` is `sim`).
    pub sim: Option<Vec<SimGpu>>,
    /// In name order; empty for a sidecar that serves fleet leases only.
    pub clusters: Vec<Cluster>,
    /// Fleet mode (SPEC section 9), where `[fleet]` or `--redis-url` turns it on.
    pub fleet: Option<FleetConfig>,
}

/// What the command line overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub source: Option<SourceKind>,
    pub redis_url: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9090";
pub const DEFAULT_POLL_MS: u64 = 500;
const MIN_POLL_MS: u64 = 10;
const MAX_CLUSTER_NAME_LEN: usize = 255;

// ---- raw shapes, exactly as written by the operator ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: Option<SocketAddr>,
    #[serde(default)]
    source: Option<SourceKind>,
    #[serde(default = "default_poll_ms")]
    poll_ms: u64,
    #[serde(default)]
    stale_ms: Option<u64>,
    #[serde(default)]
    scrape_timeout_ms: Option<u64>,
    #[serde(default)]
    sim: Option<RawSim>,
    #[serde(default)]
    clusters: BTreeMap<String, RawCluster>,
    #[serde(default)]
    fleet: Option<RawFleet>,
}

fn default_poll_ms() -> u64 {
    DEFAULT_POLL_MS
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSim {
    gpus: Vec<RawSimGpu>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimGpu {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    name: Option<String>,
    memory_total_gib: f64,
    #[serde(default = "default_true")]
    healthy: bool,
    curve: Vec<CurvePoint>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    #[serde(default)]
    gpus: Vec<GpuRef>,
    #[serde(default)]
    endpoints: Vec<String>,
    base_capacity: u32,
    #[serde(default = "default_min_capacity")]
    min_capacity: u32,
    #[serde(default = "default_queue_limit")]
    queue_limit: u32,
}

fn default_min_capacity() -> u32 {
    1
}
fn default_queue_limit() -> u32 {
    8
}

impl Config {
    /// Parses and validates the TOML text of a config file, with the flags applied.
    pub fn parse(text: &str, overrides: Overrides) -> Result<Config, ConfigError> {
        let raw: RawConfig = fairgate_wire::from_toml(text)?;
        validate(raw, overrides)
    }
}

fn validate(raw: RawConfig, overrides: Overrides) -> Result<Config, ConfigError> {
    let listen = match overrides.listen.or(raw.listen) {
        Some(addr) => addr,
        None => DEFAULT_LISTEN
            .parse()
            .map_err(|_| ConfigError::new("listen", "bad built-in default"))?,
    };
    let source = overrides.source.or(raw.source).unwrap_or(SourceKind::Nvml);

    if raw.poll_ms < MIN_POLL_MS {
        return Err(ConfigError::new(
            "poll_ms",
            format!("must be >= {MIN_POLL_MS}"),
        ));
    }
    let stale_ms = raw.stale_ms.unwrap_or((3 * raw.poll_ms).max(3000));
    if stale_ms <= raw.poll_ms {
        return Err(ConfigError::new(
            "stale_ms",
            format!("must be > poll_ms ({})", raw.poll_ms),
        ));
    }
    let scrape_timeout_ms = raw.scrape_timeout_ms.unwrap_or(raw.poll_ms.min(1000));
    if scrape_timeout_ms == 0 {
        return Err(ConfigError::new("scrape_timeout_ms", "must be > 0"));
    }

    // A fleet-only sidecar (no clusters) opens no GPU source, simulated or not.
    let fleet_only =
        raw.clusters.is_empty() && (raw.fleet.is_some() || overrides.redis_url.is_some());
    let sim = match (source, raw.sim) {
        (SourceKind::Sim, None) if fleet_only => None,
        (SourceKind::Sim, None) => {
            return Err(ConfigError::new(
                "sim",
                "required when the source is sim (describe the simulated GPUs)",
            ))
        }
        (_, Some(sim)) => Some(validate_sim(sim)?),
        (SourceKind::Nvml, None) => None,
    };

    let fleet = match (raw.fleet, overrides.redis_url) {
        (None, None) => None,
        (section, flag) => Some(crate::fleet::config::validate(
            section.unwrap_or_default(),
            flag,
        )?),
    };
    if raw.clusters.is_empty() && fleet.is_none() {
        return Err(ConfigError::new(
            "clusters",
            "at least one cluster is needed (or a [fleet] section, for fleet leases only)",
        ));
    }
    let clusters = raw
        .clusters
        .into_iter()
        .map(|(name, cluster)| validate_cluster(name, cluster))
        .collect::<Result<Vec<_>, _>>()?;

    // The simulated GPUs are known now; NVML's only once the driver answers.
    if let (SourceKind::Sim, Some(gpus)) = (source, &sim) {
        let stats = crate::sim::stats_at(gpus, 0.0);
        check_gpu_refs(&clusters, &stats, "sim")?;
    }

    Ok(Config {
        listen,
        source,
        poll: Duration::from_millis(raw.poll_ms),
        stale: Duration::from_millis(stale_ms),
        scrape_timeout: Duration::from_millis(scrape_timeout_ms),
        sim: sim.filter(|_| source == SourceKind::Sim),
        clusters,
        fleet,
    })
}

fn validate_sim(raw: RawSim) -> Result<Vec<SimGpu>, ConfigError> {
    if raw.gpus.is_empty() {
        return Err(ConfigError::new("sim.gpus", "at least one GPU is needed"));
    }
    let mut uuids = HashSet::new();
    let mut gpus = Vec::with_capacity(raw.gpus.len());
    for (i, gpu) in raw.gpus.into_iter().enumerate() {
        let path = format!("sim.gpus[{i}]");
        let uuid = gpu.uuid.unwrap_or_else(|| format!("GPU-sim-{i}"));
        if uuid.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{path}.uuid"),
                "must not be empty",
            ));
        }
        if !uuids.insert(uuid.clone()) {
            return Err(ConfigError::new(
                format!("{path}.uuid"),
                format!("{uuid:?} is used by another GPU"),
            ));
        }
        // At least one byte once in bytes: a smaller size would read as no memory.
        let memory_total_bytes = (gpu.memory_total_gib * (1u64 << 30) as f64).round();
        if !(gpu.memory_total_gib.is_finite() && memory_total_bytes >= 1.0) {
            return Err(ConfigError::new(
                format!("{path}.memory_total_gib"),
                "must be > 0 (at least one byte)",
            ));
        }
        let curve = Curve::new(gpu.curve).map_err(|e| match e.point {
            Some(p) => ConfigError::new(format!("{path}.curve[{p}]"), e.reason),
            None => ConfigError::new(format!("{path}.curve"), e.reason),
        })?;
        gpus.push(SimGpu {
            uuid,
            name: gpu
                .name
                .unwrap_or_else(|| "fairgate simulated GPU".to_string()),
            memory_total_bytes: memory_total_bytes as u64,
            healthy: gpu.healthy,
            curve,
        });
    }
    Ok(gpus)
}

fn validate_cluster(name: String, raw: RawCluster) -> Result<Cluster, ConfigError> {
    let path = format!("clusters.{name}");
    if name.is_empty()
        || name.len() > MAX_CLUSTER_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(ConfigError::new(
            path,
            "a cluster name is 1 to 255 visible ASCII characters, without quotes or backslashes",
        ));
    }
    if raw.gpus.is_empty() && raw.endpoints.is_empty() {
        return Err(ConfigError::new(
            path,
            "needs at least one of gpus, endpoints (nothing to measure)",
        ));
    }
    let mut seen = HashSet::new();
    for (i, gpu) in raw.gpus.iter().enumerate() {
        if !seen.insert(gpu) {
            return Err(ConfigError::new(
                format!("{path}.gpus[{i}]"),
                format!("GPU {gpu} is listed twice"),
            ));
        }
    }
    let mut endpoints: Vec<reqwest::Url> = Vec::with_capacity(raw.endpoints.len());
    for (i, endpoint) in raw.endpoints.iter().enumerate() {
        let at = format!("{path}.endpoints[{i}]");
        let url = reqwest::Url::parse(endpoint)
            .map_err(|e| ConfigError::new(&at, format!("not an http:// URL: {e}")))?;
        if url.scheme() != "http" || url.host().is_none() {
            return Err(ConfigError::new(
                at,
                "must be an http:// URL with a host (the model server's /metrics)",
            ));
        }
        if endpoints.contains(&url) {
            return Err(ConfigError::new(at, "is listed twice"));
        }
        endpoints.push(url);
    }
    if raw.base_capacity == 0 {
        return Err(ConfigError::new(
            format!("{path}.base_capacity"),
            "must be >= 1",
        ));
    }
    if raw.min_capacity > raw.base_capacity {
        return Err(ConfigError::new(
            format!("{path}.min_capacity"),
            format!("must be <= base_capacity ({})", raw.base_capacity),
        ));
    }
    if raw.queue_limit == 0 {
        return Err(ConfigError::new(
            format!("{path}.queue_limit"),
            "must be >= 1",
        ));
    }
    Ok(Cluster {
        name,
        gpus: raw.gpus,
        endpoints,
        policy: Policy {
            base_capacity: raw.base_capacity,
            min_capacity: raw.min_capacity,
            queue_limit: raw.queue_limit,
        },
    })
}

/// Checks that every GPU a cluster names is among `gpus` (what `source` found).
pub fn check_gpu_refs(
    clusters: &[Cluster],
    gpus: &[GpuStat],
    source: &str,
) -> Result<(), ConfigError> {
    for cluster in clusters {
        for (i, gpu) in cluster.gpus.iter().enumerate() {
            if !gpus.iter().any(|g| gpu.matches(g)) {
                let found = gpus.iter().filter(|g| g.mig_index.is_none()).count();
                let plural = if found == 1 { "" } else { "s" };
                return Err(ConfigError::new(
                    format!("clusters.{}.gpus[{i}]", cluster.name),
                    format!("no GPU with {gpu} ({source} found {found} GPU{plural})"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{gpu, TWO_SIM_GPUS};

    const EXAMPLE: &str = include_str!("../sidecar.example.toml");

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Overrides::default())
    }

    /// The two fixture GPUs plus `rest`.
    fn sim_with(rest: &str) -> Result<Config, ConfigError> {
        parse(&format!("{TWO_SIM_GPUS}\n{rest}"))
    }

    fn assert_refused(result: Result<Config, ConfigError>, path: &str, reason: &str) {
        let err = result.expect_err("config should be refused");
        assert_eq!(err.path, path, "{err}");
        assert!(err.reason.contains(reason), "{err}");
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = parse(EXAMPLE).unwrap();
        assert_eq!(config.source, SourceKind::Sim);
        assert_eq!(config.listen.to_string(), "127.0.0.1:9090");
        let names: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["acme_dedicated", "pool_a", "pool_b"]);
        assert_eq!(config.sim.as_ref().map(Vec::len), Some(5));
        assert_eq!(
            config.clusters[2].gpus[0],
            GpuRef::Uuid("GPU-sim-pool-b-0".into())
        );
        assert_eq!(config.clusters[0].policy.min_capacity, 2);
    }

    #[test]
    fn defaults_apply_to_what_is_left_out() {
        let config = parse("[clusters.a]\ngpus = [0]\nbase_capacity = 4\n").unwrap();
        assert_eq!(config.source, SourceKind::Nvml);
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.poll, Duration::from_millis(500));
        assert_eq!(config.stale, Duration::from_millis(3000));
        assert_eq!(config.scrape_timeout, Duration::from_millis(500));
        assert_eq!(config.sim, None);
        let policy = config.clusters[0].policy;
        assert_eq!((policy.min_capacity, policy.queue_limit), (1, 8));
    }

    #[test]
    fn flags_override_the_file() {
        let overrides = Overrides {
            listen: "127.0.0.1:0".parse().ok(),
            source: Some(SourceKind::Nvml),
            redis_url: None,
        };
        let config = Config::parse(EXAMPLE, overrides).unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.source, SourceKind::Nvml);
        assert_eq!(config.sim, None, "no simulated GPUs under nvml");
    }

    #[test]
    fn unknown_fields_are_refused_with_path_and_line() {
        assert_refused(
            sim_with("[clusters.a]\ngpus = [0]\nbase_capacity = 4\nmax_capacity = 9\n"),
            "clusters.a.max_capacity",
            "unknown field `max_capacity`",
        );
        let err = parse("pol_ms = 5\n[clusters.a]\ngpus = [0]\nbase_capacity = 4\n").unwrap_err();
        assert_eq!(err.to_string().split(':').next(), Some("pol_ms"));
        assert!(err.reason.ends_with("(line 1)"), "{err}");
    }

    #[test]
    fn wrong_types_are_refused_with_path() {
        assert_refused(
            sim_with("[clusters.a]\ngpus = [0]\nbase_capacity = \"lots\"\n"),
            "clusters.a.base_capacity",
            "invalid type",
        );
        assert_refused(
            sim_with("[clusters.a]\ngpus = [0, 1.5]\nbase_capacity = 4\n"),
            "clusters.a.gpus[1]",
            "a GPU index (an integer) or UUID (a string)",
        );
        assert_refused(
            parse("listen = \"localhost\"\n[clusters.a]\ngpus = [0]\nbase_capacity = 4\n"),
            "listen",
            "invalid socket address",
        );
        assert_refused(
            parse("source = \"cuda\"\n[clusters.a]\ngpus = [0]\nbase_capacity = 4\n"),
            "source",
            "unknown variant `cuda`",
        );
    }

    #[test]
    fn a_duplicate_cluster_is_refused() {
        let text = "[clusters.a]\ngpus = [0]\nbase_capacity = 4\n[clusters.a]\ngpus = [1]\nbase_capacity = 4\n";
        let err = parse(text).unwrap_err();
        assert!(err.reason.contains("duplicate"), "{err}");
        assert!(err.reason.contains("line 4"), "{err}");
    }

    #[test]
    fn periods_are_checked() {
        let cluster = "[clusters.a]\ngpus = [0]\nbase_capacity = 4\n";
        assert_refused(
            parse(&format!("poll_ms = 0\n{cluster}")),
            "poll_ms",
            ">= 10",
        );
        assert_refused(
            parse(&format!("poll_ms = 500\nstale_ms = 500\n{cluster}")),
            "stale_ms",
            "must be > poll_ms (500)",
        );
        assert_refused(
            parse(&format!("scrape_timeout_ms = 0\n{cluster}")),
            "scrape_timeout_ms",
            "> 0",
        );
        let slow = parse(&format!("poll_ms = 5000\n{cluster}")).unwrap();
        assert_eq!(slow.stale, Duration::from_secs(15));
        assert_eq!(slow.scrape_timeout, Duration::from_secs(1));
    }

    #[test]
    fn clusters_are_checked() {
        assert_refused(parse("clusters = {}\n"), "clusters", "at least one");
        assert_refused(
            sim_with("[clusters.\"pool a\"]\ngpus = [0]\nbase_capacity = 4\n"),
            "clusters.pool a",
            "visible ASCII",
        );
        assert_refused(
            sim_with("[clusters.a]\nbase_capacity = 4\n"),
            "clusters.a",
            "at least one of gpus, endpoints",
        );
        assert_refused(
            sim_with("[clusters.a]\ngpus = [1, \"GPU-b\", 1]\nbase_capacity = 4\n"),
            "clusters.a.gpus[2]",
            "listed twice",
        );
        assert_refused(
            sim_with("[clusters.a]\ngpus = [0]\nbase_capacity = 0\n"),
            "clusters.a.base_capacity",
            ">= 1",
        );
        assert_refused(
            sim_with("[clusters.a]\ngpus = [0]\nbase_capacity = 4\nmin_capacity = 5\n"),
            "clusters.a.min_capacity",
            "<= base_capacity (4)",
        );
        assert_refused(
            sim_with("[clusters.a]\ngpus = [0]\nbase_capacity = 4\nqueue_limit = 0\n"),
            "clusters.a.queue_limit",
            ">= 1",
        );
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        let cluster = |endpoints: &str| {
            sim_with(&format!(
                "[clusters.a]\nendpoints = {endpoints}\nbase_capacity = 4\n"
            ))
        };
        assert_refused(
            cluster("[\"10.0.0.1:8000\"]"),
            "clusters.a.endpoints[0]",
            "http://",
        );
        assert_refused(
            cluster("[\"nope\"]"),
            "clusters.a.endpoints[0]",
            "not an http:// URL",
        );
        assert_refused(
            cluster("[\"https://vllm:8000/metrics\"]"),
            "clusters.a.endpoints[0]",
            "http://",
        );
        assert_refused(
            cluster("[\"http://vllm:8000/metrics\", \"http://vllm:8000/metrics\"]"),
            "clusters.a.endpoints[1]",
            "listed twice",
        );
        let config = cluster("[\"http://vllm:8000/metrics\"]").unwrap();
        assert_eq!(
            config.clusters[0].endpoints[0].as_str(),
            "http://vllm:8000/metrics"
        );
    }

    #[test]
    fn a_cluster_naming_an_unknown_sim_gpu_is_refused() {
        assert_refused(
            sim_with("[clusters.a]\ngpus = [0, 2]\nbase_capacity = 4\n"),
            "clusters.a.gpus[1]",
            "no GPU with index 2 (sim found 2 GPUs)",
        );
        assert_refused(
            sim_with("[clusters.a]\ngpus = [\"GPU-c\"]\nbase_capacity = 4\n"),
            "clusters.a.gpus[0]",
            "no GPU with UUID \"GPU-c\"",
        );
    }

    #[test]
    fn gpu_refs_are_checked_against_nvml_only_once_it_answers() {
        let config = parse("[clusters.a]\ngpus = [7, \"MIG-x\"]\nbase_capacity = 4\n").unwrap();
        let found = [gpu(7, None, "GPU-7"), gpu(7, Some(0), "MIG-x")];
        assert_eq!(check_gpu_refs(&config.clusters, &found, "nvml"), Ok(()));
        let err = check_gpu_refs(&config.clusters, &found[..1], "nvml").unwrap_err();
        assert_eq!(err.path, "clusters.a.gpus[1]");
        assert!(err.reason.contains("(nvml found 1 GPU)"), "{err}");
        // An index names the physical GPU, never one of its MIG instances.
        let err = check_gpu_refs(&config.clusters, &found[1..], "nvml").unwrap_err();
        assert_eq!(err.path, "clusters.a.gpus[0]");
    }

    #[test]
    fn the_sim_section_is_checked() {
        let cluster = "[clusters.a]\ngpus = [0]\nbase_capacity = 4\n";
        let no_sim = Config::parse(
            cluster,
            Overrides {
                source: Some(SourceKind::Sim),
                ..Overrides::default()
            },
        );
        assert_refused(no_sim, "sim", "required when the source is sim");
        assert_refused(
            parse(&format!(
                "source = \"sim\"\nsim = {{ gpus = [] }}\n{cluster}"
            )),
            "sim.gpus",
            "at least one GPU",
        );
        let gpu = |fields: &str| {
            parse(&format!(
                "source = \"sim\"\n[[sim.gpus]]\n{fields}\n{cluster}"
            ))
        };
        let curve = "curve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1 }]";
        for size in ["0", "1e-12"] {
            assert_refused(
                gpu(&format!("memory_total_gib = {size}\n{curve}")),
                "sim.gpus[0].memory_total_gib",
                "> 0",
            );
        }
        assert_refused(
            gpu("memory_total_gib = 8\ncurve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1 }, { t_s = 5, utilization = 2, memory_used = 0.1 }]"),
            "sim.gpus[0].curve[1]",
            "utilization must be within 0..1",
        );
        assert_refused(
            gpu("memory_total_gib = 8\ncurve = [{ t_s = 0, utilization = 0.1, memory_used = 0.1, temp = 3 }]"),
            "sim.gpus[0].curve[0].temp",
            "unknown field",
        );
        assert_refused(
            parse(&format!(
                "source = \"sim\"\n[[sim.gpus]]\nuuid = \"GPU-x\"\nmemory_total_gib = 8\n{curve}\n[[sim.gpus]]\nuuid = \"GPU-x\"\nmemory_total_gib = 8\n{curve}\n{cluster}"
            )),
            "sim.gpus[1].uuid",
            "used by another GPU",
        );
        let config = gpu(&format!("memory_total_gib = 1.5\n{curve}")).unwrap();
        let sim = config.sim.unwrap();
        assert_eq!(sim[0].uuid, "GPU-sim-0");
        assert_eq!(sim[0].memory_total_bytes, 3 << 29);
        assert!(sim[0].healthy);
    }

    #[test]
    fn a_fleet_section_without_clusters_is_a_fleet_only_sidecar() {
        let config =
            parse("[fleet]\nredis_url = \"redis://127.0.0.1:6379/0\"\nreplica = \"gw-a\"\n")
                .unwrap();
        assert!(config.clusters.is_empty());
        // It opens no GPU source, so `--source sim` needs no `[sim]`.
        let fleet_only = "[fleet]\nredis_url = \"redis://127.0.0.1:6379/0\"\n";
        let sim = Overrides {
            source: Some(SourceKind::Sim),
            ..Overrides::default()
        };
        assert!(Config::parse(fleet_only, sim).unwrap().sim.is_none());
        let fleet = config.fleet.unwrap();
        assert_eq!(fleet.replica, "gw-a");
        assert!(!fleet.cluster);
        assert_refused(parse("poll_ms = 500\n"), "clusters", "or a [fleet] section");
        assert_refused(
            parse("[fleet]\nreplica = \"a\"\n"),
            "fleet.redis_url",
            "required",
        );
        assert_refused(
            parse("[fleet]\nredis_url = \"redis://a\"\nport = 1\n"),
            "fleet.port",
            "unknown field `port`",
        );
    }

    #[test]
    fn the_redis_url_flag_turns_fleet_mode_on() {
        let config = Config::parse(
            EXAMPLE,
            Overrides {
                redis_url: Some("redis://127.0.0.1:7000".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.clusters.len(), 3);
        assert_eq!(config.fleet.unwrap().redis_url, "redis://127.0.0.1:7000");
    }
}
