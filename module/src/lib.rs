//! fairgate as a native Envoy dynamic module: `libfairgate.so`, loaded by Envoy's
//! `envoy.filters.http.dynamic_modules` filter (SPEC section 10), with the same plugin
//! JSON, responses, headers and metric names as the wasm filter.
//!
//! Only glue lives here: `fairgate-core` decides, this crate reads and writes what
//! Envoy holds. What differs from the wasm host:
//!
//! - No VM: Envoy calls straight into Rust, and state shared by the workers is a
//!   process-wide static (`store::ProcessStore`), not proxy-wasm shared data reached
//!   through host calls. Each worker thread keeps its own `Gate` (token cache,
//!   request-token leases), as each wasm VM does.
//! - The headers of a request whose body is read are always held until the body is
//!   complete (`StopIteration`, then `StopIterationAndBuffer`): a refused request never
//!   reaches the upstream, and `content-length` is kept (rewritten with the body).
//! - Metrics carry real labels (`envoy_dynamicmodulescustom_fg_requests{tenant,
//!   decision}` in `/stats/prometheus`), defined once per filter configuration.
//! - Fair admission keeps each pool's state in process-wide memory
//!   (`store::ProcessPools`); a request that waits is resumed through its stream's
//!   scheduler from whichever thread frees its slot (`wake`).
//! - The GPU sidecar is polled from the main thread through the configuration's HTTP
//!   callout (`sidecar`); every worker reads the last good snapshot.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use envoy_proxy_dynamic_modules_rust_sdk::abi::envoy_dynamic_module_type_http_callout_result as CalloutResult;
use envoy_proxy_dynamic_modules_rust_sdk::abi::{
    envoy_dynamic_module_type_on_http_filter_request_body_status as BodyStatus,
    envoy_dynamic_module_type_on_http_filter_request_headers_status as HeadersStatus,
    envoy_dynamic_module_type_on_http_filter_request_trailers_status as TrailersStatus,
    envoy_dynamic_module_type_on_http_filter_response_body_status as ResponseBodyStatus,
    envoy_dynamic_module_type_on_http_filter_response_headers_status as ResponseHeadersStatus,
};
use envoy_proxy_dynamic_modules_rust_sdk::{
    declare_init_functions, envoy_log_critical, envoy_log_error, envoy_log_info, envoy_log_warn,
    EnvoyBuffer, EnvoyCounterId, EnvoyCounterVecId, EnvoyGaugeId, EnvoyGaugeVecId,
    EnvoyHistogramId, EnvoyHistogramVecId, EnvoyHttpFilter, EnvoyHttpFilterConfig,
    EnvoyHttpFilterConfigImpl, HttpFilter, HttpFilterConfig,
};
use fairgate_core::clock::Clock;
use fairgate_core::config::{Config, TenantPolicy};
use fairgate_core::fair_queue::SHARED_POOL;
use fairgate_core::fleet::{self, FleetBooks, FleetMode, FleetPoller, FleetWatch};
use fairgate_core::flow::{BodyChunk, BodyDone, Flow, CLAMPED_HEADER};
use fairgate_core::headroom;
use fairgate_core::identity::RequestHeaders;
use fairgate_core::llm::Endpoint;
use fairgate_core::metrics::Decision;
use fairgate_core::pipeline::{Gate, Verdict};
use fairgate_core::response::{self, LocalReply};

mod callout;
mod counters;
mod jwks;
mod sidecar;
mod store;
mod wake;

use counters::{Counted, Counters};
use fairgate_core::admission::{Action, Admission, Pools, REQUEST_COST};
use fairgate_core::host::Level;
use fairgate_core::metrics::{
    tag_value, FLEET_REPLICAS_GAUGE, FLEET_STATE_GAUGE, JWKS_FETCHED_COUNTER,
    JWKS_FETCH_ERRORS_COUNTER, JWKS_KEYS_GAUGE, SHADOW_HEADER,
};
use jwks::{Jwks, Outcome};
use sidecar::Sidecar;
use store::{ProcessPools, ProcessStore, SystemClock};

declare_init_functions!(init, new_filter_config);

fn init() -> bool {
    true
}

/// Gives each filter configuration its own gates on every worker.
static CONFIGS: AtomicU64 = AtomicU64::new(1);

/// The configurations alive now, and how many were destroyed so far: a worker that
/// sees the count change drops its state of the configurations gone (an update
/// replaces a configuration; its workers' state must not pile up).
static LIVE: Mutex<Vec<u64>> = Mutex::new(Vec::new());
static DESTROYED: AtomicU64 = AtomicU64::new(0);

fn new_filter_config<EC: EnvoyHttpFilterConfig, EHF: EnvoyHttpFilter>(
    envoy: &mut EC,
    name: &str,
    plugin_config: &[u8],
) -> Option<Box<dyn HttpFilterConfig<EHF>>> {
    match FairgateConfig::new(envoy, name, plugin_config) {
        Ok(config) => Some(Box::new(config)),
        Err(e) => {
            envoy_log_error!("fairgate: {e}");
            None
        }
    }
}

/// What every stream of one filter configuration shares, on every worker.
struct Shared {
    id: u64,
    /// The plugin JSON, validated; each worker builds its own `Gate` from it.
    plugin_config: Vec<u8>,
    prefix: String,
    /// `identity.forward_header`: where the verified tenant goes.
    forward_header: String,
    routing_header: String,
    shared_clusters: Vec<String>,
    /// Whether `routing_header` is written (a tenant is pinned or shared clusters set).
    routing: bool,
    /// Breaks ties between shared clusters in turn.
    turn: AtomicUsize,
    /// Fair admission is on (`pool`): the pools' state, process-wide.
    pools: Option<ProcessPools>,
    /// The pools as the main thread reports them (gauges), where fair admission is on.
    reporter: Option<Mutex<Pools>>,
    sidecar: Option<Sidecar>,
    /// Signing keys from the identity provider, where `identity.jwt.jwks` is set.
    jwks: Option<Jwks>,
    metrics: Metrics,
    /// The per-request counters, flushed on the main thread's tick.
    counters: Counters,
}

struct Metrics {
    requests: EnvoyCounterVecId,
    /// `fg_requests` of requests without a tenant: `decision` alone, as from the wasm
    /// module.
    untenanted: EnvoyCounterVecId,
    tokens: EnvoyCounterVecId,
    tokens_reserved: EnvoyCounterVecId,
    estimate_error: EnvoyHistogramVecId,
    routed: EnvoyCounterVecId,
    queue_wait: EnvoyHistogramVecId,
    wakeup: EnvoyHistogramId,
    pool_in_flight: EnvoyGaugeVecId,
    pool_capacity: EnvoyGaugeVecId,
    queued: EnvoyGaugeVecId,
    sidecar_fresh: EnvoyGaugeId,
    snapshot_age: EnvoyGaugeId,
    headroom: EnvoyGaugeVecId,
    sidecar_capacity: EnvoyGaugeVecId,
    jwks_fetched: EnvoyCounterId,
    jwks_errors: EnvoyCounterId,
    jwks_keys: EnvoyGaugeId,
    fleet_state: EnvoyGaugeId,
    fleet_replicas: EnvoyGaugeId,
}

impl Metrics {
    fn define<EC: EnvoyHttpFilterConfig>(envoy: &mut EC) -> Result<Self, String> {
        let metric = |e| format!("defining metrics: {e:?}");
        Ok(Metrics {
            requests: envoy
                .define_counter_vec("fg_requests", &["tenant", "decision"])
                .map_err(metric)?,
            untenanted: envoy
                .define_counter_vec("fg_requests", &["decision"])
                .map_err(metric)?,
            tokens: envoy
                .define_counter_vec("fg_tokens", &["tenant", "kind"])
                .map_err(metric)?,
            tokens_reserved: envoy
                .define_counter_vec("fg_tokens_reserved", &["tenant"])
                .map_err(metric)?,
            estimate_error: envoy
                .define_histogram_vec("fg_prompt_estimate_error_pct", &["tenant"])
                .map_err(metric)?,
            routed: envoy
                .define_counter_vec("fg_routed", &["cluster"])
                .map_err(metric)?,
            queue_wait: envoy
                .define_histogram_vec("fg_queue_wait_ms", &["tenant"])
                .map_err(metric)?,
            wakeup: envoy.define_histogram("fg_wakeup_us").map_err(metric)?,
            pool_in_flight: envoy
                .define_gauge_vec("fg_pool_in_flight", &["cluster"])
                .map_err(metric)?,
            pool_capacity: envoy
                .define_gauge_vec("fg_pool_capacity", &["cluster"])
                .map_err(metric)?,
            queued: envoy
                .define_gauge_vec("fg_queued", &["tenant"])
                .map_err(metric)?,
            sidecar_fresh: envoy.define_gauge("fg_sidecar_fresh").map_err(metric)?,
            snapshot_age: envoy
                .define_gauge("fg_sidecar_snapshot_age_ms")
                .map_err(metric)?,
            headroom: envoy
                .define_gauge_vec("fg_headroom_pct", &["cluster"])
                .map_err(metric)?,
            sidecar_capacity: envoy
                .define_gauge_vec("fg_sidecar_capacity", &["cluster"])
                .map_err(metric)?,
            jwks_fetched: envoy.define_counter(JWKS_FETCHED_COUNTER).map_err(metric)?,
            jwks_errors: envoy
                .define_counter(JWKS_FETCH_ERRORS_COUNTER)
                .map_err(metric)?,
            jwks_keys: envoy.define_gauge(JWKS_KEYS_GAUGE).map_err(metric)?,
            fleet_state: envoy.define_gauge(FLEET_STATE_GAUGE).map_err(metric)?,
            fleet_replicas: envoy.define_gauge(FLEET_REPLICAS_GAUGE).map_err(metric)?,
        })
    }
}

struct FairgateConfig {
    shared: Arc<Shared>,
}

/// Numbers the workers of every configuration (0 is the main thread's reporter).
static WORKER_SEQ: AtomicU32 = AtomicU32::new(1);

impl FairgateConfig {
    fn new<EC: EnvoyHttpFilterConfig>(
        envoy: &mut EC,
        name: &str,
        plugin_config: &[u8],
    ) -> Result<Self, String> {
        let config = Config::from_json(plugin_config).map_err(|e| e.to_string())?;
        let metrics = Metrics::define(envoy)?;
        if let Ok(weights) = envoy.define_gauge_vec("fg_tenant_weight", &["tenant"]) {
            for (tenant, policy) in &config.tenants.by_name {
                let thousandths = (policy.weight * 1000.0).round() as u64;
                let _ = envoy.set_gauge_vec(weights, &[tenant], thousandths);
            }
        }
        let name = if name.is_empty() { "fairgate" } else { name };
        let prefix = format!("fairgate:{name}:");
        let reporter = config.pool.clone().map(|pool| {
            let pools = Pools::new(0, pool, &config.tenants, &config.routing.shared_clusters);
            Mutex::new(with_fleet(pools.with_lease_ms(u64::MAX), &config))
        });
        let tenants: Vec<String> = config.tenants.labels().map(|t| t.to_string()).collect();
        let mut clusters = config.routing.shared_clusters.clone();
        let pinned = config
            .tenants
            .by_name
            .values()
            .filter_map(|p| p.cluster.as_ref());
        for c in pinned.chain(&config.tenants.claim_clusters) {
            if !clusters.contains(c) {
                clusters.push(c.clone());
            }
        }
        let shared = Shared {
            id: CONFIGS.fetch_add(1, Ordering::Relaxed),
            plugin_config: plugin_config.to_vec(),
            prefix: prefix.clone(),
            forward_header: config.identity.forward_header.clone(),
            routing_header: config.routing.header.clone(),
            routing: !config.routing.shared_clusters.is_empty() || config.tenants.pins_clusters(),
            shared_clusters: config.routing.shared_clusters.clone(),
            turn: AtomicUsize::new(0),
            pools: config.pool.as_ref().map(|_| ProcessPools::new(&prefix)),
            reporter,
            sidecar: config
                .sidecar
                .clone()
                .map(|c| Sidecar::new(c, fleet_poller(&prefix, config.fleet_mode()))),
            jwks: config
                .identity
                .jwt
                .as_ref()
                .and_then(|j| j.jwks.clone())
                .map(Jwks::new),
            metrics,
            counters: Counters::new(tenants, clusters),
        };
        let gate = Gate::new(config, &shared.prefix, cache_seed());
        if let Err(e) = gate.prepare_budgets(&ProcessStore, SystemClock.now_ms()) {
            envoy_log_warn!("fairgate: preparing budgets: {e}");
        }
        wake::tick_config(shared.id, envoy.new_scheduler());
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shared.id);
        envoy_log_info!("fairgate: configured");
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The main thread's tick: the batched counters, the sidecar poll, and the gauges
    /// of pools and sidecar.
    fn tick(&self, envoy: &mut EnvoyHttpFilterConfigImpl) {
        let shared = &self.shared;
        let metrics = &shared.metrics;
        shared.counters.flush(envoy, metrics);
        if let Some(jwks) = &shared.jwks {
            if let Some(outcome) = jwks.tick(envoy, SystemClock.now_ms()) {
                self.count_fetch(envoy, outcome);
            }
            let keys = jwks.keys.load(Ordering::Relaxed);
            let _ = envoy.set_gauge(metrics.jwks_keys, keys);
        }
        let now_ms = SystemClock.now_ms();
        let fresh = shared.sidecar.as_ref().and_then(|s| s.fresh(now_ms));
        if let Some(sidecar) = &shared.sidecar {
            let reports = || match (&shared.pools, &shared.reporter) {
                (Some(host), Some(reporter)) => reporter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .fleet_reports(host),
                _ => Default::default(),
            };
            sidecar.tick(envoy, now_ms, reports);
            let _ = envoy.set_gauge(metrics.sidecar_fresh, u64::from(fresh.is_some()));
            if let Some((state, replicas)) = sidecar.fleet_state(now_ms) {
                let _ = envoy.set_gauge(metrics.fleet_state, fleet::state_gauge(state));
                let _ = envoy.set_gauge(metrics.fleet_replicas, u64::from(replicas));
            }
            if let Some(snapshot) = sidecar.last() {
                let _ = envoy.set_gauge(metrics.snapshot_age, snapshot.age_ms(now_ms));
                for (cluster, view) in &snapshot.clusters {
                    let label = tag_value(cluster);
                    let pct = (view.headroom * 100.0).round() as u64;
                    let _ = envoy.set_gauge_vec(metrics.headroom, &[&label], pct);
                    let capacity = u64::from(view.capacity);
                    let _ = envoy.set_gauge_vec(metrics.sidecar_capacity, &[&label], capacity);
                }
            }
        }
        let (Some(host), Some(reporter)) = (&shared.pools, &shared.reporter) else {
            return;
        };
        let gauges = {
            let mut reporter = reporter.lock().unwrap_or_else(PoisonError::into_inner);
            reporter.set_live(fresh.as_deref(), now_ms);
            reporter.gauges(host)
        };
        for (pool, in_flight, capacity) in &gauges.pools {
            let label = tag_value(pool);
            let _ = envoy.set_gauge_vec(metrics.pool_in_flight, &[&label], *in_flight);
            let _ = envoy.set_gauge_vec(metrics.pool_capacity, &[&label], *capacity);
        }
        for (tenant, queued) in &gauges.queued {
            let _ = envoy.set_gauge_vec(metrics.queued, &[tenant], *queued);
        }
    }
}

impl FairgateConfig {
    fn count_fetch(&self, envoy: &impl EnvoyHttpFilterConfig, outcome: Outcome) {
        let metrics = &self.shared.metrics;
        let id = match outcome {
            Outcome::Fetched => metrics.jwks_fetched,
            Outcome::Failed => metrics.jwks_errors,
        };
        let _ = envoy.increment_counter(id, 1);
    }
}

impl Drop for FairgateConfig {
    fn drop(&mut self) {
        wake::stop_ticking(self.shared.id);
        self.shared.counters.leave();
        let id = self.shared.id;
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|live| *live != id);
        DESTROYED.fetch_add(1, Ordering::Release);
    }
}

impl<EHF: EnvoyHttpFilter> HttpFilterConfig<EHF> for FairgateConfig {
    fn new_http_filter(&self, _envoy: &mut EHF) -> Box<dyn HttpFilter<EHF>> {
        Box::new(FairgateFilter {
            shared: self.shared.clone(),
            flow: None,
            slot: None,
            waiting: None,
            waited: false,
            actual_cost: None,
            shadow: None,
            panicked: false,
        })
    }

    fn on_scheduled_with_config(&self, envoy: &mut EnvoyHttpFilterConfigImpl, _event_id: u64) {
        self.tick(envoy);
    }

    fn on_http_callout_done(
        &self,
        envoy: &mut EnvoyHttpFilterConfigImpl,
        callout_id: u64,
        result: CalloutResult,
        headers: Option<&[(EnvoyBuffer, EnvoyBuffer)]>,
        body: Option<&[EnvoyBuffer]>,
    ) {
        if let Some(jwks) = &self.shared.jwks {
            if let Some(outcome) = jwks.on_answer(callout_id, result, headers, body) {
                self.count_fetch(envoy, outcome);
                return;
            }
        }
        if let Some(sidecar) = &self.shared.sidecar {
            sidecar.on_answer(callout_id, result, headers, body, SystemClock.now_ms());
        }
    }
}

/// Writes a log line of the core's at its level.
pub(crate) fn log(level: Level, message: &str) {
    match level {
        Level::Info => envoy_log_info!("{message}"),
        Level::Warn => envoy_log_warn!("{message}"),
        Level::Error => envoy_log_error!("{message}"),
        Level::Critical => envoy_log_critical!("{message}"),
    }
}

/// Fleet mode's poll parts: this Envoy's name and boot id, drawn once per process
/// (the module's shared store lives as long as the process).
fn fleet_poller(prefix: &str, mode: Option<FleetMode>) -> Option<(FleetPoller, FleetWatch)> {
    let mode = mode?;
    let seed = cache_seed();
    let seed = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default());
    let boot = match FleetPoller::boot_id(&ProcessStore, prefix, seed) {
        Ok(boot) => boot,
        Err(e) => {
            envoy_log_warn!("fairgate: fleet boot id: {e}; drawing one for this config");
            format!("{seed:016x}")
        }
    };
    let books = FleetBooks::new(prefix, mode);
    let envoy = format!("envoy-{boot}");
    let now_ms = SystemClock.now_ms();
    Some((
        FleetPoller::new(books, envoy, boot),
        FleetWatch::new(mode, now_ms),
    ))
}

fn cache_seed() -> [u8; 16] {
    let mut seed = [0u8; 16];
    if getrandom::fill(&mut seed).is_err() {
        seed[..8].copy_from_slice(&SystemClock.now_ms().to_le_bytes());
    }
    seed
}

/// One worker's state of one filter configuration.
struct Worker {
    gate: Gate,
    /// When it last gave back the request tokens its expired leases did not use.
    leases_returned_at: u64,
    /// Its part in the pools, where fair admission is on.
    pools: Option<Pools>,
    /// The next number for a request that enters a pool.
    next_context: u32,
    /// When its pools were last ticked.
    ticked_at: u64,
    /// The version of the fetched keys its gate verifies with.
    jwks_version: u64,
}

impl Worker {
    /// A number for a request of this worker's that enters a pool.
    fn context(&mut self) -> u32 {
        self.next_context = self.next_context.wrapping_add(1);
        self.next_context
    }

    /// Ticks its pools when a tick is due (or `force`d): expires waiters past the
    /// queue timeout and applies the sidecar's live capacities.
    fn tick(&mut self, shared: &Shared, now_ms: u64, force: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        if !force && now_ms < self.ticked_at + wake::TICK_MS {
            return actions;
        }
        self.ticked_at = now_ms;
        if let (Some(pools), Some(host)) = (self.pools.as_mut(), &shared.pools) {
            let fresh = shared.sidecar.as_ref().and_then(|s| s.fresh(now_ms));
            pools.set_live(fresh.as_deref(), now_ms);
            pools.tick(host, now_ms, &mut actions);
        }
        actions
    }
}

/// This worker's state of each filter configuration (a handful: a list).
struct Workers {
    list: Vec<(u64, Worker)>,
    /// `DESTROYED` when the list was last pruned.
    pruned_at: u64,
}

thread_local! {
    static WORKERS: RefCell<Workers> = const {
        RefCell::new(Workers { list: Vec::new(), pruned_at: 0 })
    };
}

impl Shared {
    /// Runs `f` on this worker's state (made on its first request).
    fn with_worker<T>(&self, f: impl FnOnce(&mut Worker) -> T) -> Option<T> {
        WORKERS
            .try_with(|workers| {
                let mut workers = workers.try_borrow_mut().ok()?;
                let destroyed = DESTROYED.load(Ordering::Acquire);
                if destroyed != workers.pruned_at {
                    let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
                    workers.list.retain(|(id, _)| live.contains(id));
                    workers.pruned_at = destroyed;
                }
                let workers = &mut workers.list;
                let at = match workers.iter().position(|(id, _)| *id == self.id) {
                    Some(at) => at,
                    None => {
                        let config = Config::from_json(&self.plugin_config).ok()?;
                        let pools = config.pool.clone().map(|pool| {
                            let vm = WORKER_SEQ.fetch_add(1, Ordering::Relaxed);
                            let shared = &config.routing.shared_clusters;
                            // Native workers end only with the process: nobody's
                            // slots are ever reclaimed.
                            let pools = Pools::new(vm, pool, &config.tenants, shared);
                            with_fleet(pools.with_lease_ms(u64::MAX), &config)
                        });
                        let worker = Worker {
                            gate: Gate::new(config, &self.prefix, cache_seed()),
                            leases_returned_at: 0,
                            pools,
                            next_context: 0,
                            ticked_at: 0,
                            jwks_version: 0,
                        };
                        workers.push((self.id, worker));
                        workers.len() - 1
                    }
                };
                let (_, worker) = workers.get_mut(at)?;
                Some(f(worker))
            })
            .ok()
            .flatten()
    }

    /// Runs `f` on this worker's gate.
    fn with_gate<T>(&self, f: impl FnOnce(&mut Gate) -> T) -> Option<T> {
        self.with_worker(|worker| f(&mut worker.gate))
    }

    fn count<EHF: EnvoyHttpFilter>(&self, envoy: &EHF, tenant: Option<&str>, decision: Decision) {
        if let Counted::Batched = self.counters.request(tenant, decision) {
            return;
        }
        let _ = match tenant {
            Some(t) => {
                envoy.increment_counter_vec(self.metrics.requests, &[t, decision.as_str()], 1)
            }
            None => envoy.increment_counter_vec(self.metrics.untenanted, &[decision.as_str()], 1),
        };
    }

    /// Chooses the request's cluster and writes it into the routing header (or
    /// removes the client's copy), so that the route reads fairgate's choice; returns
    /// the pool the request belongs to.
    fn route<EHF: EnvoyHttpFilter>(&self, envoy: &mut EHF, policy: &TenantPolicy) -> Rc<str> {
        if !self.routing {
            return SHARED_POOL.into();
        }
        let cluster = match &policy.cluster {
            Some(pinned) => Some(pinned.clone()),
            None => {
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                let now_ms = SystemClock.now_ms();
                let snapshot = self.sidecar.as_ref().and_then(|s| s.fresh(now_ms));
                let choose = |has_free_slot: &dyn Fn(&str) -> bool| {
                    let snapshot = snapshot.as_deref();
                    headroom::choose_shared(&self.shared_clusters, snapshot, has_free_slot, turn)
                        .map(str::to_string)
                };
                // Where this worker last saw a free slot (unknown: free).
                self.with_worker(|w| {
                    choose(&|c: &str| w.pools.as_ref().is_none_or(|p| p.had_free_slot(c)))
                })
                .unwrap_or_else(|| choose(&|_: &str| true))
            }
        };
        match &cluster {
            Some(c) => {
                envoy.set_request_header(&self.routing_header, c.as_bytes());
                if let Counted::Direct = self.counters.routed(c) {
                    let label = tag_value(c);
                    let _ = envoy.increment_counter_vec(self.metrics.routed, &[&label], 1);
                }
            }
            None => {
                envoy.remove_request_header(&self.routing_header);
            }
        }
        envoy.clear_route_cache();
        cluster.map_or_else(|| SHARED_POOL.into(), Rc::from)
    }
}

fn send<EHF: EnvoyHttpFilter>(envoy: &mut EHF, reply: &LocalReply) {
    let headers: Vec<(&str, &[u8])> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_bytes()))
        .collect();
    envoy.send_response(
        reply.status,
        &headers,
        Some(reply.body.as_bytes()),
        Some(reply.code),
    );
}

/// A clock stopped at one reading, for one request's decision.
struct At(u64);

impl Clock for At {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// How often a worker gives back the request tokens its leases did not use.
const LEASE_CHECK_MS: u64 = 50;

/// A request's headers, as the core reads them.
struct Headers<'a, EHF>(&'a EHF);

impl<EHF: EnvoyHttpFilter> RequestHeaders for Headers<'_, EHF> {
    fn header(&self, name: &str) -> Option<String> {
        self.0
            .get_request_header_value(name)
            .map(|v| match std::str::from_utf8(v.as_slice()) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(v.as_slice()).into_owned(),
            })
    }
}

struct FairgateFilter {
    shared: Arc<Shared>,
    /// A request whose body is read and whose tokens are accounted.
    flow: Option<Flow>,
    /// Its place in a pool: (worker, context), from admission to its end.
    slot: Option<(u32, u32)>,
    /// It waits for a slot, paused.
    waiting: Option<Waiting>,
    /// It waited (its scheduler was registered for a wake-up) at some point.
    waited: bool,
    /// What it really cost the fair scheduler, once settled.
    actual_cost: Option<f64>,
    /// Shadow mode: what enforcing would have decided (`x-fairgate-shadow`).
    shadow: Option<&'static str>,
    /// A callback of this stream panicked: the others do nothing.
    panicked: bool,
}

/// A request paused in a pool's queue.
struct Waiting {
    label: String,
    since_ms: u64,
}

/// What becomes of a request that asks a pool for a slot.
enum Admitted {
    /// It goes on (counted).
    Go,
    /// It waits, paused, for its wake-up.
    Wait,
    /// It was answered (refused, counted).
    Answered,
}

/// What becomes of an accounted request once its body is read.
enum Body {
    Go,
    Wait,
    Answered,
}

/// Takes pool actions for streams other than the one running: each is told through
/// its scheduler, on its own worker.
fn run(vm: u32, actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::Resume { context, .. } => {
                wake::wake(vm, context);
            }
            Action::TimedOut { context, shed, .. } => wake::time_out(vm, context, shed),
        }
    }
}

impl FairgateFilter {
    /// Admits the request to `pool`, queues it (paused, its scheduler registered for
    /// the wake-up) or refuses it. Without fair admission it goes on.
    #[allow(clippy::too_many_arguments)]
    /// Counts a request that goes on, decided `decision`; a shadow decision also
    /// marks its answer (`x-fairgate-shadow`).
    fn forwarded<EHF: EnvoyHttpFilter>(&mut self, envoy: &EHF, label: &str, decision: Decision) {
        self.shared.count(envoy, Some(label), decision);
        self.shadow = decision.shadowed();
    }

    #[allow(clippy::too_many_arguments)]
    fn admit<EHF: EnvoyHttpFilter>(
        &mut self,
        envoy: &mut EHF,
        tenant: &str,
        label: &str,
        policy: &TenantPolicy,
        pool: &str,
        decision: Decision,
        cost: f64,
    ) -> Admitted {
        let shared = self.shared.clone();
        let Some(host) = &shared.pools else {
            self.forwarded(envoy, label, decision);
            return Admitted::Go;
        };
        let now_ms = SystemClock.now_ms();
        let mut actions = Vec::new();
        let admitted = shared.with_worker(|worker| {
            let context = worker.context();
            let scheduled = worker.gate.tenants().scheduled_as(tenant, label);
            let pools = worker.pools.as_mut()?;
            let admission = pools.admit(
                host,
                context,
                scheduled,
                policy,
                pool,
                cost,
                now_ms,
                &mut actions,
            );
            Some((admission, (pools.vm(), context)))
        });
        let Some(Some((admission, slot))) = admitted else {
            // No pool state on this worker: the host's fault, not the tenant's.
            self.forwarded(envoy, label, decision);
            return Admitted::Go;
        };
        run(slot.0, actions);
        let refusal = match admission {
            Admission::Forward => {
                self.slot = Some(slot);
                self.forwarded(envoy, label, decision);
                return Admitted::Go;
            }
            Admission::Shadow(shadow) => {
                // Its end gives back whatever the pool still holds of it.
                self.slot = Some(slot);
                self.forwarded(envoy, label, decision.then_shadow(shadow));
                return Admitted::Go;
            }
            Admission::Wait => {
                self.slot = Some(slot);
                self.waited = true;
                self.waiting = Some(Waiting {
                    label: label.to_string(),
                    since_ms: now_ms,
                });
                let scheduler = Box::new(envoy.new_scheduler());
                return match wake::register(slot.0, slot.1, scheduler) {
                    // Its slot came while it was being queued.
                    Some(sent_ns) => match self.woken(envoy, sent_ns) {
                        true => Admitted::Go,
                        false => Admitted::Wait,
                    },
                    None => Admitted::Wait,
                };
            }
            refused => refused.refusal(),
        };
        let Some(refusal) = refusal else {
            return Admitted::Go;
        };
        if let Some(flow) = self.flow.as_mut() {
            flow.answered_locally();
        }
        shared.count(envoy, Some(label), refusal.0);
        send(envoy, &refusal.1);
        Admitted::Answered
    }

    /// A wake-up sent at `sent_ns` reached this waiting request: whether it holds its
    /// slot now (it is then counted and goes on; the caller resumes it).
    fn woken<EHF: EnvoyHttpFilter>(&mut self, envoy: &mut EHF, sent_ns: u64) -> bool {
        let Some((_, context)) = self.slot else {
            return false;
        };
        let shared = self.shared.clone();
        let holds = shared.with_worker(|worker| {
            let pools = worker.pools.as_mut()?;
            let mut actions = Vec::new();
            pools.woken(context, Some(sent_ns), &mut actions);
            pools.holds_slot(context)
        });
        if holds.flatten() != Some(true) {
            return false;
        }
        let Some(waiting) = self.waiting.take() else {
            return false;
        };
        let metrics = &shared.metrics;
        shared.count(envoy, Some(&waiting.label), Decision::Admitted);
        let waited_ms = SystemClock.now_ms().saturating_sub(waiting.since_ms);
        let _ = envoy.record_histogram_value_vec(metrics.queue_wait, &[&waiting.label], waited_ms);
        let waited_us = wake::now_ns().saturating_sub(sent_ns) / 1000;
        let _ = envoy.record_histogram_value(metrics.wakeup, waited_us);
        true
    }

    /// An event committed to this stream's scheduler (`wake`).
    fn scheduled<EHF: EnvoyHttpFilter>(&mut self, envoy: &mut EHF, event: u64) {
        let Some((vm, context)) = self.slot else {
            return;
        };
        match event {
            wake::TICK => {
                let shared = self.shared.clone();
                let now_ms = SystemClock.now_ms();
                if let Some(actions) = shared.with_worker(|w| w.tick(&shared, now_ms, true)) {
                    run(vm, actions);
                }
            }
            wake::TIMEOUT | wake::SHED => {
                let Some(waiting) = self.waiting.take() else {
                    return;
                };
                wake::forget(vm, context);
                if let Some(flow) = self.flow.as_mut() {
                    flow.answered_locally();
                }
                let (decision, reply) = Action::timed_out_reply(event == wake::SHED);
                self.shared.count(envoy, Some(&waiting.label), decision);
                send(envoy, &reply);
            }
            sent_ns => {
                if self.waiting.is_some() && self.woken(envoy, sent_ns) {
                    envoy.continue_decoding();
                }
            }
        }
    }

    /// The body of an accounted request is complete: reserve its tokens (the body
    /// rewritten where the core says), then admit it, or refuse it.
    fn on_body<EHF: EnvoyHttpFilter>(&mut self, envoy: &mut EHF) -> Body {
        let Some(flow) = self.flow.as_mut() else {
            return Body::Go;
        };
        let body = request_body(envoy);
        let now_ms = SystemClock.now_ms();
        let done = self
            .shared
            .with_gate(|gate| flow.on_body(gate.accountant(), &body, &ProcessStore, now_ms));
        let cost = match done {
            None => return Body::Go,
            Some(BodyDone::Refuse { reply, decision }) => {
                self.shared.count(envoy, Some(&flow.label), decision);
                send(envoy, &reply);
                return Body::Answered;
            }
            Some(BodyDone::Forward {
                rewritten,
                store_error,
                cost,
                ..
            }) => {
                if let Some(e) = store_error {
                    envoy_log_warn!(
                        "fairgate: token budget of {} not enforced: {e}",
                        flow.tenant
                    );
                }
                if let Some(new_body) = rewritten {
                    replace_request_body(envoy, &new_body);
                    envoy.set_request_header(
                        "content-length",
                        new_body.len().to_string().as_bytes(),
                    );
                }
                cost
            }
        };
        // The headers waited for the body: the request is admitted now.
        let (tenant, label, policy, pool, decision) = (
            flow.tenant.clone(),
            flow.label.clone(),
            flow.policy.clone(),
            flow.pool.clone(),
            flow.decision,
        );
        match self.admit(envoy, &tenant, &label, &policy, &pool, decision, cost) {
            Admitted::Go => Body::Go,
            Admitted::Wait => Body::Wait,
            Admitted::Answered => Body::Answered,
        }
    }

    fn settle(&mut self, envoy: &mut impl EnvoyHttpFilter) {
        let Some(flow) = self.flow.take() else {
            return;
        };
        let (tenant, label) = (flow.tenant.clone(), flow.label.clone());
        let now_ms = SystemClock.now_ms();
        let holds_slot = match (self.slot, self.waiting.is_some()) {
            (None, _) => None,
            (Some(_), waiting) => Some(!waiting),
        };
        let settled = self
            .shared
            .with_gate(|gate| flow.settle(gate.accountant(), holds_slot, &ProcessStore, now_ms))
            .flatten();
        let Some(settled) = settled else {
            return;
        };
        self.actual_cost = Some(settled.cost);
        if let Some(e) = &settled.store_error {
            envoy_log_warn!("fairgate: settling the tokens of {tenant}: {e}");
        }
        let metrics = &self.shared.metrics;
        let counters = &self.shared.counters;
        for (kind, n) in settled.charged {
            if let Counted::Direct = counters.tokens(&label, kind, n) {
                let _ = envoy.increment_counter_vec(metrics.tokens, &[&label, kind.as_str()], n);
            }
        }
        if let Some(n) = settled.reserved {
            if let Counted::Direct = counters.reserved(&label, n) {
                let _ = envoy.increment_counter_vec(metrics.tokens_reserved, &[&label], n);
            }
        }
        if let Some(pct) = settled.estimate_error_pct {
            let _ = envoy.record_histogram_value_vec(metrics.estimate_error, &[&label], pct);
        }
    }

    /// The request ended, however: gives back its slot or its place in the queue
    /// (once; also when a callback panicked, and from `drop`).
    fn release(&mut self) {
        let Some((vm, context)) = self.slot.take() else {
            return;
        };
        self.waiting = None;
        if self.waited {
            wake::forget(vm, context);
        }
        let shared = self.shared.clone();
        let Some(host) = &shared.pools else {
            return;
        };
        let now_ms = SystemClock.now_ms();
        let actual_cost = self.actual_cost;
        let actions = shared.with_worker(|worker| {
            let mut actions = Vec::new();
            if let Some(pools) = worker.pools.as_mut() {
                pools.finish(host, context, now_ms, actual_cost, &mut actions);
            }
            actions
        });
        if let Some(actions) = actions {
            run(vm, actions);
        }
    }
}

impl Drop for FairgateFilter {
    fn drop(&mut self) {
        self.release();
    }
}

/// The whole request body Envoy holds: what it buffered, then the chunk just received.
fn request_body<EHF: EnvoyHttpFilter>(envoy: &mut EHF) -> Vec<u8> {
    let mut body = Vec::new();
    if !envoy.received_buffered_request_body() {
        for chunk in envoy.get_buffered_request_body().unwrap_or_default() {
            body.extend_from_slice(chunk.as_slice());
        }
    }
    for chunk in envoy.get_received_request_body().unwrap_or_default() {
        body.extend_from_slice(chunk.as_slice());
    }
    body
}

fn request_body_size<EHF: EnvoyHttpFilter>(envoy: &mut EHF) -> usize {
    let received = envoy.get_received_request_body_size();
    match envoy.received_buffered_request_body() {
        true => received,
        false => envoy.get_buffered_request_body_size() + received,
    }
}

fn replace_request_body<EHF: EnvoyHttpFilter>(envoy: &mut EHF, body: &[u8]) {
    let buffered = envoy.get_buffered_request_body_size();
    envoy.drain_buffered_request_body(buffered);
    let received = envoy.get_received_request_body_size();
    envoy.drain_received_request_body(received);
    if !envoy.append_received_request_body(body) && !envoy.append_buffered_request_body(body) {
        envoy_log_warn!("fairgate: the request body could not be rewritten");
    }
}

/// The callbacks, unguarded (`HttpFilter` below runs each behind `guarded`).
impl FairgateFilter {
    fn request_headers<EHF: EnvoyHttpFilter>(
        &mut self,
        envoy: &mut EHF,
        end_of_stream: bool,
    ) -> HeadersStatus {
        #[cfg(feature = "test-panic")]
        test_panic(envoy);
        let shared = self.shared.clone();
        // One clock reading serves the whole decision.
        let clock = At(SystemClock.now_ms());
        let fair = shared.pools.is_some();
        let decided = shared.with_worker(|worker| {
            if worker.leases_returned_at + LEASE_CHECK_MS <= clock.0 {
                worker.leases_returned_at = clock.0;
                if let Err(e) = worker.gate.return_leases(&ProcessStore, clock.0) {
                    envoy_log_warn!("fairgate: giving back leased request tokens: {e}");
                }
            }
            let actions = match fair {
                true => worker.tick(&shared, clock.0, false),
                false => Vec::new(),
            };
            let vm = worker.pools.as_ref().map_or(0, Pools::vm);
            if let Some(jwks) = &shared.jwks {
                if jwks.version() != worker.jwks_version {
                    if let Some((version, keys)) = jwks.keys() {
                        worker.gate.identifier().set_fetched_keys(keys);
                        worker.jwks_version = version;
                    }
                }
            }
            let gate = &mut worker.gate;
            let verdict = gate.on_request_headers(&Headers(&*envoy), &ProcessStore, &clock);
            if gate.identifier().take_refetch_wish() {
                if let Some(jwks) = &shared.jwks {
                    jwks.wish_refetch();
                }
            }
            // The tenant's policy, where the request is routed, admitted or its body read.
            let accounted = match &verdict {
                Verdict::Forward { policy, .. } => {
                    let reads_body = !end_of_stream && gate.accountant().reads_bodies(policy, fair);
                    (reads_body || shared.routing || fair).then(|| ((**policy).clone(), reads_body))
                }
                Verdict::Reject { .. } => None,
            };
            let max_bytes = gate.accountant().config().max_body_bytes;
            (verdict, accounted, max_bytes, (vm, actions))
        });
        let Some((verdict, accounted, max_bytes, (vm, actions))) = decided else {
            send(
                envoy,
                &response::overloaded("fairgate: the worker's state is busy"),
            );
            return HeadersStatus::StopIteration;
        };
        run(vm, actions);
        let forward_header = shared.forward_header.as_str();
        match verdict {
            Verdict::Reject {
                reply,
                label,
                decision,
            } => {
                // The client's copy of the tenant header must reach no upstream.
                envoy.remove_request_header(forward_header);
                shared.count(envoy, label.as_deref(), decision);
                send(envoy, &reply);
                HeadersStatus::StopIteration
            }
            Verdict::Forward {
                tenant,
                label,
                decision,
                store_error,
                ..
            } => {
                if let Some(e) = store_error {
                    envoy_log_warn!("fairgate: budget of {tenant} not enforced: {e}");
                }
                envoy.set_request_header(forward_header, tenant.as_bytes());
                let Some((policy, reads_body)) = accounted else {
                    self.forwarded(envoy, &label, decision);
                    return HeadersStatus::Continue;
                };
                let pool = shared.route(envoy, &policy);
                let endpoint = match reads_body {
                    true => Headers(&*envoy)
                        .header(":path")
                        .and_then(|p| Endpoint::from_path(&p)),
                    false => None,
                };
                let Some(endpoint) = endpoint else {
                    let admitted = self.admit(
                        envoy,
                        &tenant,
                        &label,
                        &policy,
                        &pool,
                        decision,
                        REQUEST_COST,
                    );
                    return match admitted {
                        Admitted::Go => HeadersStatus::Continue,
                        Admitted::Wait | Admitted::Answered => HeadersStatus::StopIteration,
                    };
                };
                let body_bytes = Headers(&*envoy)
                    .header("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if body_bytes.is_some_and(|n| n > max_bytes as u64) {
                    shared.count(envoy, Some(&label), Decision::TooLarge);
                    send(envoy, &response::payload_too_large(max_bytes));
                    return HeadersStatus::StopIteration;
                }
                self.flow = Some(Flow::new(
                    tenant, label, policy, endpoint, max_bytes, decision, pool, true,
                ));
                // Nothing leaves until the body is read, its tokens reserved and the
                // request admitted.
                HeadersStatus::StopIteration
            }
        }
    }

    fn request_body<EHF: EnvoyHttpFilter>(
        &mut self,
        envoy: &mut EHF,
        end_of_stream: bool,
    ) -> BodyStatus {
        let Some(flow) = self.flow.as_mut().filter(|f| f.reading_body()) else {
            // A request waiting for a slot keeps its body with its headers.
            return match self.waiting {
                Some(_) => BodyStatus::StopIterationAndBuffer,
                None => BodyStatus::Continue,
            };
        };
        let size = request_body_size(envoy);
        match flow.on_body_chunk(size, end_of_stream) {
            BodyChunk::Buffer => BodyStatus::StopIterationAndBuffer,
            BodyChunk::TooLarge(reply) => {
                self.shared
                    .count(envoy, Some(&flow.label), Decision::TooLarge);
                send(envoy, &reply);
                BodyStatus::StopIterationNoBuffer
            }
            BodyChunk::Complete => match self.on_body(envoy) {
                Body::Go => BodyStatus::Continue,
                Body::Wait => BodyStatus::StopIterationAndBuffer,
                Body::Answered => BodyStatus::StopIterationNoBuffer,
            },
        }
    }

    fn request_trailers<EHF: EnvoyHttpFilter>(&mut self, envoy: &mut EHF) -> TrailersStatus {
        // A body followed by trailers ends here, not at a last chunk.
        if !self.flow.as_ref().is_some_and(|f| f.reading_body()) {
            return match self.waiting {
                Some(_) => TrailersStatus::StopIteration,
                None => TrailersStatus::Continue,
            };
        }
        match self.on_body(envoy) {
            Body::Go => TrailersStatus::Continue,
            Body::Wait | Body::Answered => TrailersStatus::StopIteration,
        }
    }

    fn response_headers<EHF: EnvoyHttpFilter>(
        &mut self,
        envoy: &mut EHF,
        end_of_stream: bool,
    ) -> ResponseHeadersStatus {
        if let Some(shadowed) = self.shadow {
            envoy.set_response_header(SHADOW_HEADER, shadowed.as_bytes());
        }
        let Some(flow) = self.flow.as_mut().filter(|f| f.is_reserved()) else {
            return ResponseHeadersStatus::Continue;
        };
        let content_type = envoy
            .get_response_header_value("content-type")
            .map(|v| v.as_slice().to_vec())
            .unwrap_or_default();
        let edits = flow.on_response_headers(&content_type, end_of_stream);
        if let Some(clamped) = edits.clamped_to {
            envoy.set_response_header(CLAMPED_HEADER, clamped.to_string().as_bytes());
        }
        if edits.drop_content_length {
            envoy.remove_response_header("content-length");
        }
        ResponseHeadersStatus::Continue
    }

    fn response_body<EHF: EnvoyHttpFilter>(
        &mut self,
        envoy: &mut EHF,
        end_of_stream: bool,
    ) -> ResponseBodyStatus {
        let Some(flow) = self.flow.as_mut().filter(|f| f.reads_answer()) else {
            return ResponseBodyStatus::Continue;
        };
        let mut chunk = Vec::new();
        for part in envoy.get_received_response_body().unwrap_or_default() {
            chunk.extend_from_slice(part.as_slice());
        }
        if let Some(bytes) = flow.on_response_chunk(&chunk, end_of_stream) {
            let received = envoy.get_received_response_body_size();
            envoy.drain_received_response_body(received);
            envoy.append_received_response_body(&bytes);
        }
        ResponseBodyStatus::Continue
    }
}

impl<EHF: EnvoyHttpFilter> HttpFilter<EHF> for FairgateFilter {
    fn on_request_headers(&mut self, envoy: &mut EHF, end_of_stream: bool) -> HeadersStatus {
        let stop = HeadersStatus::StopIteration;
        self.guarded(envoy, Reply::Yes, stop, |f, e| {
            f.request_headers(e, end_of_stream)
        })
    }

    fn on_request_body(&mut self, envoy: &mut EHF, end_of_stream: bool) -> BodyStatus {
        let stop = BodyStatus::StopIterationNoBuffer;
        self.guarded(envoy, Reply::Yes, stop, |f, e| {
            f.request_body(e, end_of_stream)
        })
    }

    fn on_request_trailers(&mut self, envoy: &mut EHF) -> TrailersStatus {
        let stop = TrailersStatus::StopIteration;
        self.guarded(envoy, Reply::Yes, stop, |f, e| f.request_trailers(e))
    }

    fn on_response_headers(
        &mut self,
        envoy: &mut EHF,
        end_of_stream: bool,
    ) -> ResponseHeadersStatus {
        // The answer has begun: it goes on as it is.
        let go_on = ResponseHeadersStatus::Continue;
        self.guarded(envoy, Reply::No, go_on, |f, e| {
            f.response_headers(e, end_of_stream)
        })
    }

    fn on_response_body(&mut self, envoy: &mut EHF, end_of_stream: bool) -> ResponseBodyStatus {
        let go_on = ResponseBodyStatus::Continue;
        self.guarded(envoy, Reply::No, go_on, |f, e| {
            f.response_body(e, end_of_stream)
        })
    }

    fn on_scheduled(&mut self, envoy: &mut EHF, event_id: u64) {
        self.guarded(envoy, Reply::Yes, (), |f, e| f.scheduled(e, event_id));
    }

    fn on_stream_complete(&mut self, envoy: &mut EHF) {
        self.guarded(envoy, Reply::No, (), |f, e| f.settle(e));
        // Also after a panic: a slot is always given back.
        self.release();
    }
}

/// Whether a callback that panicked can still answer its request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    Yes,
    No,
}

impl FairgateFilter {
    /// Runs one callback. A panic in it (a bug: fairgate's code does not panic on any
    /// input) stops here instead of in the SDK, which would leave a request held at
    /// its headers until a timeout: it is logged, the request is answered 500 while a
    /// reply can still be sent, and the stream's later callbacks do nothing. Envoy and
    /// every other stream go on.
    fn guarded<EHF: EnvoyHttpFilter, T>(
        &mut self,
        envoy: &mut EHF,
        reply: Reply,
        on_panic: T,
        callback: impl FnOnce(&mut Self, &mut EHF) -> T,
    ) -> T {
        if self.panicked {
            return on_panic;
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| callback(self, envoy))) {
            Ok(status) => status,
            Err(_) => {
                self.panicked = true;
                self.flow = None;
                self.waiting = None;
                envoy_log_critical!("fairgate: a callback panicked; its request is answered 500");
                if reply == Reply::Yes {
                    send(envoy, &response::internal_error());
                }
                on_panic
            }
        }
    }
}

/// The test-only build's trigger (`--features test-panic`): a request with the header
/// `x-fairgate-test-panic` panics in the headers callback.
#[cfg(feature = "test-panic")]
#[allow(clippy::panic)]
fn test_panic<EHF: EnvoyHttpFilter>(envoy: &EHF) {
    if envoy
        .get_request_header_value("x-fairgate-test-panic")
        .is_some()
    {
        panic!("x-fairgate-test-panic");
    }
}

/// `pools` in fleet mode where `config` has it.
fn with_fleet(pools: Pools, config: &Config) -> Pools {
    match config.fleet_mode() {
        Some(mode) => pools.with_fleet(mode),
        None => pools,
    }
}
