//! Start-up and serving: read and check the config, open the GPU source (none for a
//! sidecar without clusters), take a first snapshot (so the server never answers
//! without one), open the fleet's Redis where fleet mode is on, then serve while the
//! poller (and the fleet's heartbeat) runs in the background, until SIGINT or
//! SIGTERM. On the way out the fleet's leases are left to expire, then what they hold
//! goes back to Redis.
//!
//! Exit codes: 0 after a clean stop (or a good `--check`), 1 for a bad config or a
//! failed start-up, 2 where the `nvml` source finds no NVIDIA driver.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{check_gpu_refs, Config, Overrides, SourceKind};
use crate::fleet::clock::SystemClock;
use crate::fleet::redis::RedisStore;
use crate::fleet::{FleetManager, FleetSettings};
use crate::gpu::{GpuSource, NoGpus};
use crate::metrics::Metrics;
use crate::model_server::Scraper;
use crate::nvml::NvmlSource;
use crate::poller::Poller;
use crate::server::{self, AppState};
use crate::sim::SimSource;

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub overrides: Overrides,
    /// Check the config and exit.
    pub check: bool,
}

/// Why the sidecar stopped or did not start.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error("{0}")]
    Config(String),
    #[error("NVML is unavailable ({0}): is the NVIDIA driver installed? Use --source sim to run without a GPU")]
    NvmlUnavailable(String),
    #[error("{0}")]
    Startup(String),
}

impl Fatal {
    pub fn exit_code(&self) -> u8 {
        match self {
            Fatal::NvmlUnavailable(_) => 2,
            Fatal::Config(_) | Fatal::Startup(_) => 1,
        }
    }
}

pub async fn run(options: Options) -> Result<(), Fatal> {
    let path = options.config.display().to_string();
    let text = std::fs::read_to_string(&options.config)
        .map_err(|e| Fatal::Config(format!("cannot read {path}: {e}")))?;
    let config = Config::parse(&text, options.overrides)
        .map_err(|e| Fatal::Config(format!("{path}: {e}")))?;
    if options.check {
        let fleet = match &config.fleet {
            Some(fleet) => format!(", fleet on {}", fleet.redacted_url()),
            None => String::new(),
        };
        println!(
            "{path}: ok ({} clusters, source {}{fleet})",
            config.clusters.len(),
            config.source.as_str()
        );
        return Ok(());
    }

    let source: Arc<dyn GpuSource> = match config.source {
        _ if config.clusters.is_empty() => Arc::new(NoGpus),
        SourceKind::Nvml => Arc::new(
            NvmlSource::open()
                .map_err(|e| Fatal::NvmlUnavailable(e.to_string().replace('\n', " ")))?,
        ),
        SourceKind::Sim => Arc::new(SimSource::new(config.sim.clone().unwrap_or_default())),
    };
    let scraper = Scraper::new(config.scrape_timeout)
        .map_err(|e| Fatal::Startup(format!("cannot build the HTTP client: {e}")))?;
    let metrics = Arc::new(Metrics::new());
    let mut poller = Poller::new(
        source.clone(),
        scraper,
        config.clusters.clone(),
        metrics.clone(),
    );
    let first = poller
        .poll()
        .await
        .map_err(|e| Fatal::Startup(format!("the first GPU read failed: {e}")))?;
    check_gpu_refs(&config.clusters, &first.snapshot.gpus, source.kind())
        .map_err(|e| Fatal::Config(format!("{path}: {e}")))?;

    let fleet = match &config.fleet {
        Some(fleet) => {
            let ca_pem = match &fleet.tls_ca_file {
                Some(file) => Some(std::fs::read(file).map_err(|e| {
                    Fatal::Config(format!("{path}: fleet.tls_ca_file: {file}: {e}"))
                })?),
                None => None,
            };
            let store = RedisStore::open_with_ca(
                &fleet.redis_url,
                fleet.cluster,
                &fleet.key_prefix,
                fleet.timeout,
                ca_pem,
            )
            .map_err(|e| Fatal::Config(format!("{path}: fleet.redis_url: {e}")))?;
            let settings = FleetSettings {
                sidecar: fleet.replica.clone(),
                timeout: fleet.timeout,
                envoy_ttl: config.stale,
                silent_claim: fleet.silent_claim,
            };
            let manager = Arc::new(FleetManager::new(
                store,
                Arc::new(SystemClock::default()),
                settings,
                metrics.fleet(),
            ));
            // Learn N, and whether Redis answers, before the first poll.
            manager.tick().await;
            Some(manager)
        }
        None => None,
    };

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Fatal::Startup(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Fatal::Startup(format!("cannot read the bound address: {e}")))?;
    println!(
        "fairgate-sidecar: listening on {addr} (source {}, {} clusters, poll every {} ms)",
        source.kind(),
        config.clusters.len(),
        config.poll.as_millis()
    );
    if let (Some(manager), Some(fleet)) = (&fleet, &config.fleet) {
        println!(
            "fairgate-sidecar: fleet mode on {} as {:?} (Redis {}, {} replicas live)",
            fleet.redacted_url(),
            fleet.replica,
            if manager.store_up() { "up" } else { "down" },
            manager.replicas()
        );
        tokio::spawn(heartbeat(manager.clone(), config.poll));
    }

    let (tx, latest) = watch::channel(first);
    tokio::spawn(poller.run(config.poll, tx));
    let state = AppState {
        latest,
        metrics,
        stale: config.stale,
        fleet: fleet.clone(),
    };
    let served = axum::serve(listener, server::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Fatal::Startup(format!("server error: {e}")));
    if let Some(manager) = fleet {
        // The filters can spend what they hold until their leases expire; after that
        // it all goes back.
        let wait = manager.drain().await;
        tokio::time::sleep(wait.min(MAX_DRAIN)).await;
        manager.shutdown().await;
    }
    served
}

/// The longest a stopping sidecar waits for its leases to expire.
const MAX_DRAIN: Duration = Duration::from_secs(5);

/// The fleet's background step, every `period`.
async fn heartbeat(manager: Arc<FleetManager<RedisStore>>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        manager.tick().await;
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
