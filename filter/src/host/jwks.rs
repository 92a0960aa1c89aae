//! Glue for keys fetched from the identity provider (`identity.jwt.jwks`, SPEC 11):
//! one VM per Envoy, elected as for the sidecar poll, fetches the JWKS through the
//! configured cluster every `refresh_s` and stores the document in shared data; every
//! VM reads it on its tick when it changed and verifies with its keys. A VM that saw
//! a token name an unknown `kid` brings the next fetch forward, to `min_refetch_s`
//! after the last one. A failed, oversized or garbage answer keeps the last good keys.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use super::{call_answer, log, log_at, HostStore};
use fairgate_core::config::JwksConfig;
use fairgate_core::headroom::PollClaim;
use fairgate_core::host::Turns;
use fairgate_core::jwks::{self, MAX_JWKS_BYTES};
use fairgate_core::jwt::KeySet;
use fairgate_core::store::{cas_update, SharedStore, Update};

pub struct JwksFetch {
    config: JwksConfig,
    claim_key: String,
    doc_key: String,
    vm: u32,
    /// The call in flight, if this VM is fetching now.
    pending: Option<u32>,
    /// The version of the stored document this VM's keys come from.
    doc_cas: Option<u32>,
    /// A token named an unknown `kid` since the last tick.
    wish: bool,
    /// This VM's fetches' failures and recoveries (to log the turns).
    turns: Turns,
}

/// What a fetch or a tick leaves for the caller: fetch outcomes to count, and new keys.
#[derive(Default)]
pub struct Fetched {
    pub ok: u64,
    pub failed: u64,
    pub keys: Option<KeySet>,
}

impl JwksFetch {
    pub fn new(prefix: &str, config: JwksConfig, vm: u32) -> Self {
        Self {
            config,
            claim_key: format!("{prefix}jwks.claim"),
            doc_key: format!("{prefix}jwks.doc"),
            vm,
            pending: None,
            doc_cas: None,
            wish: false,
            turns: Turns::default(),
        }
    }

    fn refresh_ms(&self) -> u64 {
        self.config.refresh_s.saturating_mul(1000)
    }

    /// A token named a `kid` no key has.
    pub fn wish_refetch(&mut self) {
        self.wish = true;
    }

    /// On the tick: brings the fetch forward where wished, fetches when this VM wins
    /// the due fetch, and returns the keys of a stored document that changed.
    pub fn tick(&mut self, now_ms: u64) -> Fetched {
        let mut out = Fetched::default();
        let unclaimed = PollClaim::UNCLAIMED.encode();
        let (refresh_ms, min_ms) = (self.refresh_ms(), self.config.min_refetch_s * 1000);
        if std::mem::take(&mut self.wish) {
            let _ = cas_update(
                &HostStore,
                &self.claim_key,
                &unclaimed,
                |v| match PollClaim::decode(v)
                    .and_then(|c| jwks::hasten(c, now_ms, refresh_ms, min_ms))
                {
                    Some(c) => Update::Write(c.encode().to_vec(), ()),
                    None => Update::Keep(()),
                },
            );
        }
        if self.pending.is_none() {
            let vm = self.vm;
            let claimed =
                cas_update(
                    &HostStore,
                    &self.claim_key,
                    &unclaimed,
                    |v| match PollClaim::claim(PollClaim::decode(v), vm, now_ms, refresh_ms) {
                        Some(c) => Update::Write(c.encode().to_vec(), true),
                        None => Update::Keep(false),
                    },
                );
            if matches!(claimed, Ok(true)) {
                self.fetch(&mut out);
            }
        }
        out.keys = self.stored_keys();
        out
    }

    fn fetch(&mut self, out: &mut Fetched) {
        let headers = vec![
            (":method", "GET"),
            (":path", self.config.path.as_str()),
            (":authority", "fairgate-jwks"),
        ];
        let timeout = Duration::from_secs(5);
        match hostcalls::dispatch_http_call(&self.config.cluster, headers, None, vec![], timeout) {
            Ok(token) => self.pending = Some(token),
            Err(status) => {
                out.failed += 1;
                self.result(Err(format!(
                    "cannot call cluster {}: {status:?}",
                    self.config.cluster
                )));
            }
        }
    }

    /// The answer to this VM's fetch `token`, if it is one: stored when it holds keys.
    pub fn on_response(&mut self, token: u32, body_size: usize) -> Option<Fetched> {
        if self.pending != Some(token) {
            return None;
        }
        self.pending = None;
        let result = call_answer(body_size, MAX_JWKS_BYTES).and_then(|body| {
            let parsed = jwks::parse(&body)?;
            if !parsed.skipped.is_empty() {
                log(
                    LogLevel::Warn,
                    &format!("fairgate: JWKS keys skipped: {}", parsed.skipped.join("; ")),
                );
            }
            HostStore
                .set(&self.doc_key, &body, None)
                .map_err(|e| e.to_string())
        });
        let ok = result.is_ok();
        self.result(result);
        Some(Fetched {
            ok: u64::from(ok),
            failed: u64::from(!ok),
            keys: None,
        })
    }

    /// The keys of the stored document, where it changed since this VM last read it.
    fn stored_keys(&mut self) -> Option<KeySet> {
        let (bytes, cas) = HostStore.get(&self.doc_key).ok().flatten()?;
        if self.doc_cas == Some(cas) {
            return None;
        }
        self.doc_cas = Some(cas);
        match jwks::parse(&bytes) {
            Ok(parsed) => Some(KeySet::new(parsed.keys)),
            Err(e) => {
                log(LogLevel::Warn, &format!("fairgate: stored JWKS: {e}"));
                None
            }
        }
    }

    fn result(&mut self, result: Result<(), String>) {
        let what = format!("JWKS fetch from {}", self.config.cluster);
        if let Some((level, line)) = self.turns.line(&what, "keys", &result) {
            log_at(level, &line);
        }
    }
}
