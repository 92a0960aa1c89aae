//! Start-up and serving: read and check the config, open the GPU source, take a first
//! snapshot (so the server never answers without one), then serve while the poller
//! runs in the background, until SIGINT or SIGTERM.
//!
//! Exit codes: 0 after a clean stop (or a good `--check`), 1 for a bad config or a
//! failed start-up, 2 where the `nvml` source finds no NVIDIA driver.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{check_gpu_refs, Config, Overrides, SourceKind};
use crate::gpu::GpuSource;
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
        println!(
            "{path}: ok ({} clusters, source {})",
            config.clusters.len(),
            config.source.as_str()
        );
        return Ok(());
    }

    let source: Arc<dyn GpuSource> = match config.source {
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

    let (tx, latest) = watch::channel(first);
    tokio::spawn(poller.run(config.poll, tx));
    let state = AppState {
        latest,
        metrics,
        stale: config.stale,
    };
    axum::serve(listener, server::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Fatal::Startup(format!("server error: {e}")))
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
