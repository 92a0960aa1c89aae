//! The background poll: every `poll_ms`, read the GPUs and scrape every model server
//! at once, assess the clusters, and publish the snapshot, pre-serialised, for the
//! HTTP handlers to hand out. The handlers never wait on NVML or on a scrape.
//!
//! A poll whose GPU read fails publishes nothing: the last snapshot stays (its
//! `generated_at_ms` ages, so readers see it go stale) and `/healthz` turns 503 after
//! `stale_ms`. Failures are logged when they start and when they end, not every poll.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Cluster;
use crate::gpu::{GpuSource, GpuStat, SourceError};
use crate::headroom::ServerLoad;
use crate::metrics::Metrics;
use crate::model_server::Scraper;
use crate::snapshot::Snapshot;

/// The latest snapshot, as the handlers see it.
#[derive(Debug)]
pub struct Published {
    pub snapshot: Snapshot,
    /// The `/v1/headroom` body.
    pub body: Bytes,
    /// When the poll that made it finished.
    pub at: Instant,
}

pub struct Poller {
    source: Arc<dyn GpuSource>,
    scraper: Scraper,
    clusters: Arc<[Cluster]>,
    metrics: Arc<Metrics>,
    version: u64,
    source_failing: bool,
    /// What is currently logged as failing: endpoint URLs and GPU labels.
    failing: HashSet<String>,
}

impl Poller {
    pub fn new(
        source: Arc<dyn GpuSource>,
        scraper: Scraper,
        clusters: Vec<Cluster>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            source,
            scraper,
            clusters: clusters.into(),
            metrics,
            version: 0,
            source_failing: false,
            failing: HashSet::new(),
        }
    }

    /// One poll: a new snapshot (also recorded in the metrics), or why the GPUs could
    /// not be read.
    pub async fn poll(&mut self) -> Result<Arc<Published>, SourceError> {
        let source = self.source.clone();
        let read = tokio::task::spawn_blocking(move || source.read());
        let (gpus, scrapes) = tokio::join!(read, self.scrape_all());
        let gpus = match gpus {
            Ok(Ok(gpus)) => gpus,
            Ok(Err(e)) => return Err(self.poll_failed(e)),
            Err(e) => return Err(self.poll_failed(SourceError(format!("GPU read task: {e}")))),
        };
        if std::mem::take(&mut self.source_failing) {
            log("GPU source readable again");
        }
        self.log_transitions(&gpus, &scrapes);
        self.version += 1;
        let snapshot = Snapshot::build(
            self.version,
            now_ms(),
            self.source.kind(),
            &self.clusters,
            gpus,
            scrapes,
        );
        self.metrics.record(&snapshot);
        let body = serde_json::to_vec(&snapshot.to_wire())
            .map_err(|e| SourceError(format!("encoding the snapshot: {e}")))?;
        Ok(Arc::new(Published {
            snapshot,
            body: Bytes::from(body),
            at: Instant::now(),
        }))
    }

    /// Polls every `period` forever, publishing each new snapshot.
    pub async fn run(mut self, period: Duration, tx: watch::Sender<Arc<Published>>) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Ok(published) = self.poll().await {
                tx.send_replace(published);
            }
        }
    }

    fn poll_failed(&mut self, error: SourceError) -> SourceError {
        self.metrics.poll_failed();
        if !self.source_failing {
            self.source_failing = true;
            log(&format!(
                "GPU read failed, keeping the last snapshot: {error}"
            ));
        }
        error
    }

    async fn scrape_all(&self) -> Vec<Vec<Result<ServerLoad, String>>> {
        let mut results: Vec<Vec<Result<ServerLoad, String>>> = self
            .clusters
            .iter()
            .map(|c| vec![Err("not scraped".to_string()); c.endpoints.len()])
            .collect();
        let mut tasks = JoinSet::new();
        for (ci, cluster) in self.clusters.iter().enumerate() {
            for (ei, url) in cluster.endpoints.iter().enumerate() {
                let (scraper, url) = (self.scraper.clone(), url.clone());
                tasks.spawn(async move {
                    let load = scraper.scrape(&url).await.map_err(|e| e.to_string());
                    (ci, ei, load)
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((ci, ei, load)) = done {
                if let Some(slot) = results.get_mut(ci).and_then(|r| r.get_mut(ei)) {
                    *slot = load;
                }
            }
        }
        results
    }

    fn log_transitions(&mut self, gpus: &[GpuStat], scrapes: &[Vec<Result<ServerLoad, String>>]) {
        let gpu_states = gpus
            .iter()
            .map(|g| (format!("GPU {}", g.label()), g.error.as_deref()));
        let endpoint_states = self
            .clusters
            .iter()
            .zip(scrapes)
            .flat_map(|(c, results)| c.endpoints.iter().zip(results))
            .map(|(url, load)| {
                (
                    format!("model server {url}"),
                    load.as_ref().err().map(String::as_str),
                )
            });
        for (what, error) in gpu_states.chain(endpoint_states) {
            match error {
                Some(error) if !self.failing.contains(&what) => {
                    log(&format!("{what} is failing: {error}"));
                    self.failing.insert(what);
                }
                None if self.failing.remove(&what) => log(&format!("{what} is back")),
                _ => {}
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One log line on stderr.
pub fn log(message: &str) {
    eprintln!("fairgate-sidecar: {message}");
}
