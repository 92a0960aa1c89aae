//! What the core asks of a host: the seam between fairgate's logic and the Envoy that
//! runs it, and what each call costs on each host.
//!
//! | trait | wasm host (`fairgate-filter`) | native host (`fairgate-module`) |
//! |---|---|---|
//! | `clock::Clock` | `get_current_time`: one host call (a VM exit); `recent_ms` reuses the last reading, free | the system clock (a vDSO read, tens of ns) |
//! | `store::SharedStore` | proxy-wasm shared data: a get and a CAS set, two host calls per update, each copying the value across the VM boundary | a process-wide map behind a mutex held for a copy (ns) |
//! | `PoolHost::update_pool` | the pool encoded in one shared-data value (`fair_queue::FairQueue`): decode, update, encode, CAS | the pool's `PoolState` itself behind a mutex: no encoding |
//! | `PoolHost::send_wake` | a message on the waiter's VM's shared queue (two host calls), then `on_queue_ready` on that VM | the waiting stream's scheduler (`commit`, any thread), then `on_scheduled` on its worker |
//! | outbound call (the sidecar poll) | `dispatch_http_call` from the elected VM's tick | the filter config's HTTP callout, on the main thread |
//! | metrics | a counter per name (labels in the name, `stats_tags`), batched and flushed on the tick | labelled counter vectors, incremented in place |
//!
//! Everything else (identity, buckets, fair order, accounting, routing) is plain Rust
//! in the core and costs the same on both.

use crate::fair_queue::{PoolState, Updated};
use crate::store::StoreError;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
    Critical,
}

/// What fair admission (`admission::Pools`) asks of its host.
pub trait PoolHost {
    /// Applies `op` to the state of `pool`, atomically for the whole Envoy process.
    /// `op` may run more than once (each time on a fresh state); only the last run's
    /// result counts, so it must not act on the host itself.
    fn update_pool<T>(
        &self,
        pool: &str,
        op: impl FnMut(&mut PoolState) -> T,
    ) -> Result<Updated<T>, StoreError>;

    /// Tells worker `vm` (another worker than the caller) that its request `context`
    /// holds a slot now; false when the message cannot be delivered.
    fn send_wake(&self, vm: u32, context: u32) -> bool;

    fn log(&self, level: Level, message: &str);
}

/// Logs the turns of something retried in the background (a poll, a fetch): its first
/// failure, then nothing until it works again, then that it does.
#[derive(Debug, Default)]
pub struct Turns {
    failing: bool,
}

impl Turns {
    /// The line to log for `result` of `what`, if this is a turn; `kept` names what
    /// stays in place meanwhile.
    pub fn line(
        &mut self,
        what: &str,
        kept: &str,
        result: &Result<(), String>,
    ) -> Option<(Level, String)> {
        let line = match (result, self.failing) {
            (Err(e), false) => Some((
                Level::Warn,
                format!(
                    "fairgate: {what} failed, last good {kept} kept: {e} \
                     (logged once until it recovers)"
                ),
            )),
            (Ok(()), true) => Some((Level::Info, format!("fairgate: {what} works again"))),
            _ => None,
        };
        self.failing = result.is_err();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_logged_once_and_so_is_the_recovery() {
        let mut turns = Turns::default();
        let failed: Result<(), String> = Err("down".into());
        let first = turns.line("JWKS fetch", "keys", &failed);
        assert!(first.is_some_and(|(_, l)| l.contains("failed, last good keys kept: down")));
        assert!(turns.line("JWKS fetch", "keys", &failed).is_none());
        assert_eq!(
            turns.line("JWKS fetch", "keys", &Ok(())),
            Some((Level::Info, "fairgate: JWKS fetch works again".to_string()))
        );
        assert!(turns.line("JWKS fetch", "keys", &Ok(())).is_none());
    }
}
