//! Waking paused requests from whichever worker thread frees their slot, and the
//! periodic events that keep queues and the sidecar moving.
//!
//! A request that waits for a slot registers its stream's scheduler here under
//! (worker, context). Whoever frees the slot, on any thread, takes the scheduler out
//! and commits a wake-up to it; Envoy then calls the stream's `on_scheduled` on its
//! own worker, which resumes it. If the slot comes before the waiter has registered
//! (another thread freed it in between), the wake-up waits here for it and the
//! waiter goes on at once.
//!
//! Envoy gives a filter no timers. One process-wide thread, started with the first
//! configuration that needs it, commits every `TICK_MS`: a tick to one waiting
//! stream of each worker that has waiters (its worker then expires waiters past the
//! queue timeout), and a tick to each filter configuration (on the main thread: the
//! sidecar poll and the pools' gauges). It only commits: every decision runs on
//! Envoy's threads.

use std::collections::HashMap;
use std::sync::{Mutex, Once, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use envoy_proxy_dynamic_modules_rust_sdk::{
    EnvoyHttpFilterConfigScheduler, EnvoyHttpFilterScheduler,
};

/// How often waiters' workers and the configurations are ticked.
pub const TICK_MS: u64 = 100;

/// Event ids of a stream: its worker's tick; its queue timeout; its shedding (a
/// sheddable request the fleet had no slot for in time); from `WAKE` up, a
/// wake-up, the id being when it was sent (ns since the epoch).
pub const TICK: u64 = 0;
pub const TIMEOUT: u64 = 1;
pub const SHED: u64 = 2;
pub const WAKE: u64 = 3;

enum Entry {
    Waiting(Box<dyn EnvoyHttpFilterScheduler>),
    /// Woken before it registered: when the wake-up was sent.
    Woken(u64),
}

#[derive(Default)]
struct Registry {
    waiters: HashMap<(u32, u32), Entry>,
    configs: HashMap<u64, Box<dyn EnvoyHttpFilterConfigScheduler>>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
static TICKER: Once = Once::new();

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    // A lock poisoned by a panic while it was held still guards consistent data:
    // each operation here is a single map insert or remove.
    let mut guard = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(Registry::default))
}

/// Wall-clock nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Registers the stream `context` of worker `vm`, which waits for a slot. Returns
/// when its wake-up was sent if it came already (the stream then goes on at once).
pub fn register(
    vm: u32,
    context: u32,
    scheduler: Box<dyn EnvoyHttpFilterScheduler>,
) -> Option<u64> {
    with_registry(|r| match r.waiters.remove(&(vm, context)) {
        Some(Entry::Woken(sent_ns)) => Some(sent_ns),
        _ => {
            r.waiters.insert((vm, context), Entry::Waiting(scheduler));
            None
        }
    })
}

/// Wakes the stream `context` of worker `vm`: it holds a slot now.
pub fn wake(vm: u32, context: u32) -> bool {
    let sent_ns = now_ns().max(WAKE);
    let scheduler = with_registry(|r| match r.waiters.remove(&(vm, context)) {
        Some(Entry::Waiting(s)) => Some(s),
        _ => {
            r.waiters.insert((vm, context), Entry::Woken(sent_ns));
            None
        }
    });
    if let Some(s) = scheduler {
        s.commit(sent_ns);
    }
    true
}

/// Tells the waiting stream `context` of worker `vm` that it timed out (`shed`: as a
/// sheddable request the fleet had no slot for).
pub fn time_out(vm: u32, context: u32, shed: bool) {
    with_registry(|r| {
        if let Some(Entry::Waiting(s)) = r.waiters.get(&(vm, context)) {
            s.commit(if shed { SHED } else { TIMEOUT });
        }
    });
}

/// Forgets the stream `context` of worker `vm` (it ended).
pub fn forget(vm: u32, context: u32) {
    with_registry(|r| r.waiters.remove(&(vm, context)));
}

/// Ticks the filter configuration `id` on the main thread every `TICK_MS`, until
/// `stop_ticking`.
pub fn tick_config(id: u64, scheduler: Box<dyn EnvoyHttpFilterConfigScheduler>) {
    with_registry(|r| r.configs.insert(id, scheduler));
    start_ticker();
}

/// Stops ticking the configuration `id` (it is being destroyed).
pub fn stop_ticking(id: u64) {
    with_registry(|r| r.configs.remove(&id));
}

/// Starts the ticking thread, once per process.
pub fn start_ticker() {
    TICKER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("fairgate-tick".to_string())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(TICK_MS));
                tick();
            });
        if let Err(e) = started {
            envoy_proxy_dynamic_modules_rust_sdk::envoy_log_critical!(
                "fairgate: no ticking thread ({e}): queue timeouts and the sidecar poll \
                 run only as requests arrive"
            );
        }
    });
}

fn tick() {
    with_registry(|r| {
        let mut ticked: Vec<u32> = Vec::new();
        for ((vm, _), entry) in &r.waiters {
            if let Entry::Waiting(s) = entry {
                if !ticked.contains(vm) {
                    ticked.push(*vm);
                    s.commit(TICK);
                }
            }
        }
        for scheduler in r.configs.values() {
            scheduler.commit(TICK);
        }
    });
}
