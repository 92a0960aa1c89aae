//! Model-server load: scrape a vLLM server's Prometheus `/metrics` and read the series
//! the Gateway API Inference Extension's endpoint picker reads.
//!
//! - `vllm:num_requests_waiting`, `vllm:num_requests_running`: summed over the page's
//!   series (one per served model);
//! - `vllm:kv_cache_usage_perc` (0..1 despite its name; `vllm:gpu_cache_usage_perc`
//!   before vLLM 0.10): the highest of its series.
//!
//! NaN and infinite values are ignored. A page with none of these series, an HTTP
//! error, a timeout or a body over [`MAX_BODY_BYTES`] is a failed scrape: the caller
//! counts it and leaves the signal out of headroom; it never stops the sidecar.

use std::time::Duration;

use crate::headroom::ServerLoad;
use crate::promtext;

/// A `/metrics` page larger than this is refused (vLLM's is some tens of KiB).
pub const MAX_BODY_BYTES: usize = 4 << 20;

const WAITING: &str = "vllm:num_requests_waiting";
const RUNNING: &str = "vllm:num_requests_running";
const KV_CACHE: [&str; 2] = ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"];

/// Why a scrape gave no signal.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("body over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("no vLLM series on the page")]
    NoSignals,
}

/// Reads the vLLM signals from a `/metrics` page; `None` when it has none of them.
pub fn load_from_text(text: &str) -> Option<ServerLoad> {
    let mut load = ServerLoad::default();
    for sample in promtext::samples(text) {
        if !sample.value.is_finite() {
            continue;
        }
        let v = sample.value;
        match sample.name {
            WAITING => load.waiting = Some(load.waiting.unwrap_or(0.0) + v.max(0.0)),
            RUNNING => load.running = Some(load.running.unwrap_or(0.0) + v.max(0.0)),
            name if KV_CACHE.contains(&name) => {
                let v = v.clamp(0.0, 1.0);
                load.kv_cache_usage = Some(load.kv_cache_usage.map_or(v, |kv| kv.max(v)));
            }
            _ => {}
        }
    }
    (load != ServerLoad::default()).then_some(load)
}

/// Scrapes model servers over plain HTTP.
#[derive(Clone)]
pub struct Scraper {
    client: reqwest::Client,
}

impl Scraper {
    /// A scraper whose every request (connect to last byte) ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .build()?;
        Ok(Self { client })
    }

    /// One scrape of `url`.
    pub async fn scrape(&self, url: &reqwest::Url) -> Result<ServerLoad, ScrapeError> {
        let mut response = self.client.get(url.clone()).send().await?;
        if !response.status().is_success() {
            return Err(ScrapeError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(ScrapeError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ScrapeError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        load_from_text(&String::from_utf8_lossy(&body)).ok_or(ScrapeError::NoSignals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM_PAGE: &str = include_str!("../testdata/vllm_metrics.txt");

    #[test]
    fn vllm_signals_are_summed_or_maxed_over_series() {
        let load = load_from_text(VLLM_PAGE).unwrap();
        assert_eq!(load.running, Some(10.0));
        assert_eq!(load.waiting, Some(6.0), "NaN series ignored");
        assert_eq!(load.kv_cache_usage, Some(0.35));
    }

    #[test]
    fn the_pre_0_10_kv_cache_name_is_read() {
        let load = load_from_text("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.3\n").unwrap();
        assert_eq!(load.kv_cache_usage, Some(0.3));
        assert_eq!(load.waiting, None);
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let load =
            load_from_text("vllm:kv_cache_usage_perc 1.7\nvllm:num_requests_waiting -3\n").unwrap();
        assert_eq!(load.kv_cache_usage, Some(1.0));
        assert_eq!(load.waiting, Some(0.0));
    }

    #[tokio::test]
    async fn the_mock_model_servers_page_is_read_like_vllms() {
        let mock = fairgate_mock::spawn(Default::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let url = reqwest::Url::parse(&mock.url("/metrics")).unwrap();
        let scraper = Scraper::new(Duration::from_secs(5)).unwrap();
        let load = scraper.scrape(&url).await.unwrap();
        let idle = ServerLoad {
            waiting: Some(0.0),
            running: Some(0.0),
            kv_cache_usage: Some(0.0),
        };
        assert_eq!(load, idle);
    }

    #[test]
    fn a_page_without_vllm_series_gives_no_signal() {
        assert_eq!(
            load_from_text("up 1\n# vllm:num_requests_waiting 3\n"),
            None
        );
        assert_eq!(load_from_text("vllm:num_requests_waiting NaN\n"), None);
    }
}
