//! Keys fetched from the identity provider (`identity.jwt.jwks`, SPEC 11): the main
//! thread fetches the JWKS through the configuration's HTTP callout every
//! `refresh_s` (one fetch per Envoy), and sooner, `min_refetch_s` after the last,
//! when a worker saw a token name an unknown `kid`. Each worker reads the last good
//! document when it changed. A failed, oversized or garbage answer keeps the last
//! good keys.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use envoy_proxy_dynamic_modules_rust_sdk::abi::envoy_dynamic_module_type_http_callout_result as CalloutResult;
use envoy_proxy_dynamic_modules_rust_sdk::{EnvoyBuffer, EnvoyHttpFilterConfig};
use fairgate_core::config::JwksConfig;
use fairgate_core::host::{Level, Turns};
use fairgate_core::jwks::{self, MAX_JWKS_BYTES};
use fairgate_core::jwt::KeySet;

use crate::log;

pub struct Jwks {
    config: JwksConfig,
    /// The last good document, and its version (0: none yet).
    doc: RwLock<Option<Arc<Vec<u8>>>>,
    version: AtomicU64,
    /// A worker saw an unknown `kid`.
    wish: AtomicBool,
    /// How many keys the last good document holds.
    pub keys: AtomicU64,
    fetch: Mutex<Fetch>,
}

#[derive(Default)]
struct Fetch {
    pending: Option<u64>,
    last_sent_ms: Option<u64>,
    turns: Turns,
}

/// What the last fetch did: counted by the caller.
pub enum Outcome {
    Fetched,
    Failed,
}

impl Jwks {
    pub fn new(config: JwksConfig) -> Self {
        Self {
            config,
            doc: RwLock::new(None),
            version: AtomicU64::new(0),
            wish: AtomicBool::new(false),
            keys: AtomicU64::new(0),
            fetch: Mutex::new(Fetch::default()),
        }
    }

    /// A token named a `kid` no key has (any worker).
    pub fn wish_refetch(&self) {
        self.wish.store(true, Ordering::Relaxed);
    }

    /// The version of the last good document.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The keys of the last good document, and its version.
    pub fn keys(&self) -> Option<(u64, KeySet)> {
        let doc = self
            .doc
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let parsed = jwks::parse(&doc).ok()?;
        Some((self.version(), KeySet::new(parsed.keys)))
    }

    /// On the main thread's tick: fetches when a fetch is due. Returns a failure to
    /// start one.
    pub fn tick(&self, envoy: &mut impl EnvoyHttpFilterConfig, now_ms: u64) -> Option<Outcome> {
        let mut fetch = self.fetch.lock().unwrap_or_else(PoisonError::into_inner);
        let timeout_ms = 5_000;
        let stuck = fetch
            .last_sent_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > 2 * timeout_ms);
        if fetch.pending.is_some() && !stuck {
            return None;
        }
        let wish = self.wish.load(Ordering::Relaxed);
        let refresh_ms = self.config.refresh_s.saturating_mul(1000);
        let min_ms = self.config.min_refetch_s.saturating_mul(1000);
        if !jwks::due(fetch.last_sent_ms, now_ms, refresh_ms, min_ms, wish) {
            return None;
        }
        self.wish.store(false, Ordering::Relaxed);
        fetch.last_sent_ms = Some(now_ms);
        let (cluster, path) = (&self.config.cluster, &self.config.path);
        match crate::callout::get(envoy, cluster, path, "fairgate-jwks", timeout_ms) {
            Ok(id) => {
                fetch.pending = Some(id);
                None
            }
            Err(error) => {
                fetch.pending = None;
                self.result(&mut fetch, Err(error));
                Some(Outcome::Failed)
            }
        }
    }

    /// The answer to the callout `id`, if it is this fetch's.
    pub fn on_answer(
        &self,
        id: u64,
        result: CalloutResult,
        headers: Option<&[(EnvoyBuffer, EnvoyBuffer)]>,
        body: Option<&[EnvoyBuffer]>,
    ) -> Option<Outcome> {
        let mut fetch = self.fetch.lock().unwrap_or_else(PoisonError::into_inner);
        if fetch.pending != Some(id) {
            return None;
        }
        fetch.pending = None;
        let outcome = self.read(result, headers, body);
        let ok = outcome.is_ok();
        self.result(&mut fetch, outcome);
        Some(if ok {
            Outcome::Fetched
        } else {
            Outcome::Failed
        })
    }

    fn read(
        &self,
        result: CalloutResult,
        headers: Option<&[(EnvoyBuffer, EnvoyBuffer)]>,
        body: Option<&[EnvoyBuffer]>,
    ) -> Result<(), String> {
        let bytes = crate::callout::body_of(result, headers, body, MAX_JWKS_BYTES)?;
        let parsed = jwks::parse(&bytes)?;
        if !parsed.skipped.is_empty() {
            log(
                Level::Warn,
                &format!("fairgate: JWKS keys skipped: {}", parsed.skipped.join("; ")),
            );
        }
        self.keys.store(parsed.keys.len() as u64, Ordering::Relaxed);
        *self.doc.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(bytes));
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn result(&self, fetch: &mut Fetch, result: Result<(), String>) {
        let what = format!("JWKS fetch from {}", self.config.cluster);
        if let Some((level, line)) = fetch.turns.line(&what, "keys", &result) {
            log(level, &line);
        }
    }
}
