//! The proxy-wasm glue: the only code that talks to Envoy.
//!
//! It implements the logic's traits over host calls (`HostStore` over shared data,
//! `HostClock`, `HostHeaders`), loads the config in `on_configure`, and turns each
//! `Verdict` into header edits or a local reply. It calls `hostcalls` directly rather
//! than the SDK's context helpers, which `unwrap` host results: every host error is
//! handled here, since a panic would kill the VM for every request on its worker.
//!
//! Host calls on the request path (a cached or header-mode tenant with a request
//! budget): one header read per identity header and one header write; the clock and
//! the budget's shared-data read and CAS write only when this VM's lease of the
//! tenant's request tokens is spent (`budget::Leases`; identity and the lease use the
//! VM's recent time, `HostClock::recent_ms`); with routing, one more header write;
//! with fair admission, a pool read and CAS write at admission and again at the end
//! (`admission`). Each call, and each pass through the module's code, costs Envoy CPU
//! per request (bench/README.md), so counters are kept in VM memory and flushed on
//! the tick, and the sidecar's snapshot is read on the tick (`sidecar`), never per
//! request.
//!
//! Token accounting (`Flow`) adds, for an OpenAI-compatible request with a body: the
//! path and `content-length` read at the headers, which Envoy holds (plugin option
//! `allow_on_headers_stop_iteration`, learnt per VM by `hold`) while the body is
//! buffered; the body read once complete (and replaced, with its `content-length`,
//! when rewritten), the token bucket's CAS, then admission: nothing leaves for the
//! upstream before the request is admitted, so a refused request never reaches it.
//! Per answer chunk one read (and a write when a chunk changes); the settlement's CAS
//! at the end. Where Envoy does not hold headers, they go on once admitted at the
//! headers, without `content-length` (the body may be rewritten), and the body is
//! read on its way through.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use hashbrown::HashMap;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

mod admission;
mod jwks;
mod sidecar;

use admission::Pools;
use fairgate_core::admission::{Action as PoolAction, Admission, REQUEST_COST};
use fairgate_core::host::Level;
use jwks::{Fetched, JwksFetch};
use sidecar::Sidecar;

use fairgate_core::clock::Clock;
use fairgate_core::config::{Config, TenantPolicy};
use fairgate_core::fair_queue::SHARED_POOL;
use fairgate_core::fleet::{FleetBooks, FleetMode, FleetPoller, FleetWatch};
use fairgate_core::flow::{BodyChunk, BodyDone, Flow, CLAMPED_HEADER};
use fairgate_core::headroom;
use fairgate_core::hold::HeaderHold;
use fairgate_core::identity::RequestHeaders;
use fairgate_core::llm::Endpoint;
use fairgate_core::metrics::{
    forwarded_before_body_counter, prompt_estimate_error_histogram, queue_wait_histogram,
    requests_counter, routed_counter, tenant_weight_gauge, tokens_counter, tokens_reserved_counter,
    Decision, JWKS_FETCHED_COUNTER, JWKS_FETCH_ERRORS_COUNTER, JWKS_KEYS_GAUGE, SHADOW_HEADER,
    WAKEUP_HISTOGRAM,
};
use fairgate_core::pipeline::{Gate, Verdict};
use fairgate_core::response::{self, LocalReply};
use fairgate_core::store::{SharedStore, StoreError, Versioned};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FairgateRoot::default()) });
}}

fn log(level: LogLevel, message: &str) {
    // Logging must never take the request down with it.
    let _ = hostcalls::log(level, message);
}

/// Logs a line the core wrote, at its level.
fn log_at(level: Level, message: &str) {
    let level = match level {
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
        Level::Critical => LogLevel::Critical,
    };
    log(level, message);
}

/// The body of the answer to this VM's HTTP call (`body_size` bytes): a 200 of at most
/// `max_bytes`, or why there is none.
fn call_answer(body_size: usize, max_bytes: usize) -> Result<Vec<u8>, String> {
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .map(|s| String::from_utf8_lossy(&s).into_owned())
        .unwrap_or_default();
    if status != "200" {
        return Err(format!("answered {status:?}"));
    }
    if body_size > max_bytes {
        return Err(format!(
            "an answer of {body_size} bytes, over the {max_bytes} allowed"
        ));
    }
    Ok(
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default(),
    )
}

/// Envoy's clock. Every reading is kept as this VM's recent time, which the tick
/// (every `TICK_PERIOD`) and each request that reaches a shared bucket renew: a
/// request on a leased budget reads no clock of its own (a host call saved).
struct HostClock;

thread_local! {
    /// The last reading of this VM (one wasm instance, one thread); 0 before the first.
    static RECENT_MS: Cell<u64> = const { Cell::new(0) };
}

impl Clock for HostClock {
    fn now_ms(&self) -> u64 {
        let now_ms = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        RECENT_MS.with(|recent| recent.set(now_ms));
        now_ms
    }

    fn recent_ms(&self) -> u64 {
        match RECENT_MS.with(Cell::get) {
            0 => self.now_ms(),
            recent => recent,
        }
    }
}

struct HostStore;

fn host_error(what: &str, status: Status) -> StoreError {
    StoreError::Host(format!("{what}: {status:?}"))
}

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Versioned, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Ok(Some((value, cas.unwrap_or(0)))),
            // An empty value comes back without bytes, but with its version.
            Ok((None, Some(cas))) => Ok(Some((Vec::new(), cas))),
            Ok((None, None)) => Ok(None),
            Err(status) => Err(host_error("get_shared_data", status)),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas.filter(|c| *c != 0)) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => Err(host_error("set_shared_data", status)),
        }
    }
}

struct HostHeaders;

impl RequestHeaders for HostHeaders {
    fn header(&self, name: &str) -> Option<String> {
        // The bytes variant: the SDK's string variant panics on non-UTF-8 values.
        match hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name) {
            // Valid UTF-8 (every real token) keeps its buffer: no second copy.
            Ok(Some(bytes)) => Some(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
            _ => None,
        }
    }
}

/// How often each VM flushes its counters and looks after its pools (queue
/// timeouts, its lease): the safety net; wake-ups themselves do not wait for it.
const TICK_PERIOD: Duration = Duration::from_millis(100);

/// Request counters, counted in VM memory and added to Envoy's counters every
/// `TICK_PERIOD` (a host call per counter per period instead of one per request).
/// Counter ids are defined once per VM and name.
#[derive(Default)]
struct Counters {
    /// decision → label ("" for none) → (metric id, count not yet flushed)
    by_decision: HashMap<Decision, HashMap<String, (u32, u64)>>,
    histograms: HashMap<String, u32>,
    gauges: HashMap<String, u32>,
    /// Other counters by name: (metric id, count not yet flushed).
    named: HashMap<String, (u32, u64)>,
}

impl Counters {
    fn count(&mut self, label: Option<&str>, decision: Decision) {
        let by_label = self.by_decision.entry(decision).or_default();
        let key = label.unwrap_or("");
        if let Some((_, pending)) = by_label.get_mut(key) {
            *pending += 1;
            return;
        }
        let name = requests_counter(label, decision);
        match hostcalls::define_metric(MetricType::Counter, &name) {
            Ok(id) => {
                by_label.insert(key.to_string(), (id, 1));
            }
            Err(status) => log(
                LogLevel::Warn,
                &format!("fairgate: metric {name}: {status:?}"),
            ),
        }
    }

    fn record_wait(&mut self, tenant: &str, waited_ms: u64) {
        self.record(queue_wait_histogram(tenant), waited_ms);
    }

    fn count_named(&mut self, name: String) {
        self.add_named(name, 1);
    }

    /// Adds `n` to the counter `name` (flushed on the tick).
    fn add_named(&mut self, name: String, n: u64) {
        if let Some((_, pending)) = self.named.get_mut(&name) {
            *pending += n;
            return;
        }
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &name) {
            self.named.insert(name, (id, n));
        }
    }

    /// Records `value` in the histogram `name`.
    fn record(&mut self, name: String, value: u64) {
        if let Some(id) = metric_id(&mut self.histograms, MetricType::Histogram, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    /// Sets the gauge `name` to `value`.
    fn set_gauge(&mut self, name: String, value: u64) {
        if let Some(id) = metric_id(&mut self.gauges, MetricType::Gauge, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    fn flush(&mut self) {
        let named = self.named.values_mut();
        for (id, pending) in self
            .by_decision
            .values_mut()
            .flat_map(|m| m.values_mut())
            .chain(named)
        {
            if *pending > 0 {
                let _ = hostcalls::increment_metric(*id, *pending as i64);
                *pending = 0;
            }
        }
    }
}

/// The id of metric `name`, defined on first use.
fn metric_id(ids: &mut HashMap<String, u32>, kind: MetricType, name: String) -> Option<u32> {
    if let Some(id) = ids.get(&name) {
        return Some(*id);
    }
    let id = hostcalls::define_metric(kind, &name).ok()?;
    ids.insert(name, id);
    Some(id)
}

/// What every HTTP context of a VM shares.
struct Shared {
    gate: RefCell<Gate>,
    counters: RefCell<Counters>,
    /// Fair admission, where `pool` is configured.
    pools: Option<RefCell<Pools>>,
    /// Headroom from the GPU sidecar, where `sidecar` is configured.
    sidecar: Option<RefCell<Sidecar>>,
    /// Signing keys from the identity provider, where `identity.jwt.jwks` is set.
    jwks: Option<RefCell<JwksFetch>>,
    routing: Routing,
    hold: RefCell<HeaderHold>,
}

/// Where requests go: `routing.header`, written when any tenant is pinned or shared
/// clusters are configured (and then always, so a client cannot pick a cluster).
struct Routing {
    header: String,
    shared: Vec<String>,
    active: bool,
    /// Breaks ties between shared clusters in turn.
    turn: std::cell::Cell<usize>,
}

impl Routing {
    /// The cluster for a tenant pinned to `pinned`, or the best shared cluster.
    fn choose(&self, pinned: Option<&str>, shared: &Shared, now_ms: u64) -> Option<String> {
        if let Some(c) = pinned {
            return Some(c.to_string());
        }
        let turn = self.turn.get();
        self.turn.set(turn.wrapping_add(1));
        let sidecar = shared.sidecar.as_ref().and_then(|s| s.try_borrow().ok());
        let snapshot = sidecar.as_ref().and_then(|s| s.fresh(now_ms));
        let pools = shared.pools.as_ref().and_then(|p| p.try_borrow().ok());
        let free = |c: &str| pools.as_ref().is_none_or(|p| p.had_free_slot(c));
        headroom::choose_shared(&self.shared, snapshot, free, turn).map(str::to_string)
    }
}

impl Shared {
    /// Counts the outcomes of JWKS fetches.
    fn count_fetches(&self, fetched: &Fetched) {
        if let Ok(mut counters) = self.counters.try_borrow_mut() {
            if fetched.ok > 0 {
                counters.add_named(JWKS_FETCHED_COUNTER.to_string(), fetched.ok);
            }
            if fetched.failed > 0 {
                counters.add_named(JWKS_FETCH_ERRORS_COUNTER.to_string(), fetched.failed);
            }
        }
    }

    fn count(&self, label: Option<&str>, decision: Decision) {
        if let Ok(mut counters) = self.counters.try_borrow_mut() {
            counters.count(label, decision);
        }
    }

    /// Runs `f` on the pools, then the host actions it asked for (with the pools no
    /// longer borrowed: resuming a request or replying re-enters the VM).
    fn with_pools<T>(&self, f: impl FnOnce(&mut Pools, &mut Vec<PoolAction>) -> T) -> Option<T> {
        let mut actions = Vec::new();
        let out = {
            let mut pools = self.pools.as_ref()?.try_borrow_mut().ok()?;
            f(&mut pools, &mut actions)
        };
        self.run(actions);
        Some(out)
    }

    /// Where Envoy turned out not to hold headers for the body (`hold`), lets the
    /// requests held to find out go on: their bodies are read as they pass.
    fn release_stalled_probes(&self, now_ms: u64) {
        let Some(stalled) = self
            .hold
            .try_borrow_mut()
            .ok()
            .and_then(|mut h| h.expire(now_ms))
        else {
            return;
        };
        log(
            LogLevel::Critical,
            "fairgate: Envoy passed no request body to the filter while it held the \
             headers: set allow_on_headers_stop_iteration: true in the wasm filter's \
             config. Until then, requests with a body leave for the upstream before \
             their token budget is known (fg_forwarded_before_body counts them)",
        );
        for context in stalled {
            if hostcalls::set_effective_context(context).is_ok() {
                // The body may be rewritten on its way through.
                let _ =
                    hostcalls::set_map_value(MapType::HttpRequestHeaders, "content-length", None);
                let _ = hostcalls::resume_http_request();
            }
        }
    }

    fn run(&self, mut actions: Vec<PoolAction>) {
        while let Some(action) = actions.pop() {
            match action {
                PoolAction::Resume {
                    context,
                    tenant,
                    enqueued_at_ms,
                    sent_at_ns,
                } => {
                    if hostcalls::set_effective_context(context).is_err() {
                        // The client went away while the slot was on its way.
                        let now_ms = HostClock.now_ms();
                        if let Some(Ok(mut pools)) =
                            self.pools.as_ref().map(RefCell::try_borrow_mut)
                        {
                            pools.vanished(context, now_ms, &mut actions);
                        }
                        continue;
                    }
                    self.count(Some(&tenant), Decision::Admitted);
                    if let Ok(mut counters) = self.counters.try_borrow_mut() {
                        if let Some(sent) = sent_at_ns {
                            let us = admission::now_ns().saturating_sub(sent) / 1000;
                            counters.record(WAKEUP_HISTOGRAM.to_string(), us);
                        }
                        counters.record_wait(
                            &tenant,
                            HostClock.now_ms().saturating_sub(enqueued_at_ms),
                        );
                    }
                    let _ = hostcalls::resume_http_request();
                }
                PoolAction::TimedOut {
                    context,
                    tenant,
                    shed,
                } => {
                    if hostcalls::set_effective_context(context).is_ok() {
                        let (decision, reply) = PoolAction::timed_out_reply(shed);
                        self.count(Some(&tenant), decision);
                        send(&reply);
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct FairgateRoot {
    shared: Option<Rc<Shared>>,
    /// This VM's wake-up queue, where fair admission is on.
    queue_id: Option<u32>,
}

fn cache_seed(now_ms: u64) -> [u8; 16] {
    let mut seed = [0u8; 16];
    if getrandom::fill(&mut seed).is_err() {
        log(
            LogLevel::Warn,
            "fairgate: no host randomness; token cache keyed by time",
        );
        seed[..8].copy_from_slice(&now_ms.to_le_bytes());
    }
    seed
}

/// The fleet poll's parts: this Envoy's name (`node.id`, else its boot id) and its
/// boot id, drawn once per Envoy process.
fn fleet_poller(
    prefix: &str,
    mode: FleetMode,
    now_ms: u64,
) -> Result<(FleetPoller, FleetWatch), String> {
    let seed = cache_seed(now_ms);
    let seed = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default());
    let boot = FleetPoller::boot_id(&HostStore, prefix, seed).map_err(|e| e.to_string())?;
    let node = hostcalls::get_property(vec!["node", "id"])
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .filter(|n| !n.is_empty());
    let envoy = node.unwrap_or_else(|| format!("envoy-{boot}"));
    let books = FleetBooks::new(prefix, mode);
    Ok((
        FleetPoller::new(books, envoy, boot),
        FleetWatch::new(mode, now_ms),
    ))
}

fn plugin_name() -> String {
    hostcalls::get_property(vec!["plugin_name"])
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "fairgate".to_string())
}

impl Context for FairgateRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(shared) = &self.shared {
            let fetched = shared
                .jwks
                .as_ref()
                .and_then(|j| j.try_borrow_mut().ok())
                .and_then(|mut j| j.on_response(token_id, body_size));
            if let Some(fetched) = fetched {
                shared.count_fetches(&fetched);
                return;
            }
            if let Some(Ok(mut sidecar)) = shared.sidecar.as_ref().map(RefCell::try_borrow_mut) {
                sidecar.on_response(token_id, body_size, HostClock.now_ms());
            }
        }
    }
}

impl RootContext for FairgateRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        ) {
            Ok(Some(bytes)) if !bytes.is_empty() => bytes,
            _ => {
                log(
                    LogLevel::Critical,
                    "fairgate: no plugin configuration given",
                );
                return false;
            }
        };
        let config = match Config::from_json(&bytes) {
            Ok(config) => config,
            Err(e) => {
                log(LogLevel::Critical, &format!("fairgate: {e}"));
                return false;
            }
        };
        let now_ms = HostClock.now_ms();
        let prefix = format!("fairgate:{}:", plugin_name());
        let pool_config = config.pool.clone();
        let sidecar_config = config.sidecar.clone();
        let routing = Routing {
            header: config.routing.header.clone(),
            shared: config.routing.shared_clusters.clone(),
            active: !config.routing.shared_clusters.is_empty() || config.tenants.pins_clusters(),
            turn: std::cell::Cell::new(0),
        };
        let mut counters = Counters::default();
        for (name, policy) in &config.tenants.by_name {
            counters.set_gauge(
                tenant_weight_gauge(name),
                (policy.weight * 1000.0).round() as u64,
            );
        }
        let jwks_config = config.identity.jwt.as_ref().and_then(|j| j.jwks.clone());
        let fleet_mode = config.fleet_mode();
        let fleet = match config
            .fleet_mode()
            .map(|m| fleet_poller(&prefix, m, now_ms))
        {
            None => None,
            Some(Ok(fleet)) => Some(fleet),
            Some(Err(e)) => {
                log(LogLevel::Critical, &format!("fairgate: fleet mode: {e}"));
                return false;
            }
        };
        let gate = Gate::new(config, &prefix, cache_seed(now_ms));
        if let Err(e) = gate.prepare_budgets(&HostStore, now_ms) {
            log(LogLevel::Warn, &format!("fairgate: preparing budgets: {e}"));
        }
        let vm = match admission::vm_index(&prefix) {
            Ok(vm) => vm,
            Err(e) => {
                log(LogLevel::Critical, &format!("fairgate: {e}"));
                return false;
            }
        };
        let sidecar = sidecar_config.map(|c| RefCell::new(Sidecar::new(&prefix, c, vm, fleet)));
        let jwks = jwks_config.map(|c| RefCell::new(JwksFetch::new(&prefix, c, vm)));
        let joined = pool_config
            .map(|p| Pools::join(&prefix, vm, p, gate.tenants(), &routing.shared, fleet_mode));
        let pools = match joined {
            None => None,
            Some(Ok((pools, queue_id))) => {
                self.queue_id = Some(queue_id);
                Some(RefCell::new(pools))
            }
            Some(Err(e)) => {
                log(
                    LogLevel::Critical,
                    &format!("fairgate: fair admission: {e}"),
                );
                return false;
            }
        };
        self.shared = Some(Rc::new(Shared {
            gate: RefCell::new(gate),
            counters: RefCell::new(counters),
            pools,
            sidecar,
            jwks,
            routing,
            hold: RefCell::new(HeaderHold::default()),
        }));
        if let Err(status) = hostcalls::set_tick_period(TICK_PERIOD) {
            log(
                LogLevel::Warn,
                &format!("fairgate: no tick, metrics not flushed: {status:?}"),
            );
        }
        log(LogLevel::Info, "fairgate: configured");
        true
    }

    fn on_tick(&mut self) {
        if let Some(shared) = &self.shared {
            if let Ok(mut counters) = shared.counters.try_borrow_mut() {
                counters.flush();
            }
            let now_ms = HostClock.now_ms();
            shared.release_stalled_probes(now_ms);
            if let Ok(mut gate) = shared.gate.try_borrow_mut() {
                if let Err(e) = gate.return_leases(&HostStore, now_ms) {
                    log(
                        LogLevel::Warn,
                        &format!("fairgate: giving back leased request tokens: {e}"),
                    );
                }
            }
            let mut gauges = Vec::new();
            if let Some(Ok(mut jwks)) = shared.jwks.as_ref().map(RefCell::try_borrow_mut) {
                let fetched = jwks.tick(now_ms);
                drop(jwks);
                shared.count_fetches(&fetched);
                if let (Some(keys), Ok(mut gate)) = (fetched.keys, shared.gate.try_borrow_mut()) {
                    gauges.push((JWKS_KEYS_GAUGE.to_string(), keys.len() as u64));
                    gate.identifier().set_fetched_keys(keys);
                }
            }
            if let Some(Ok(mut sidecar)) = shared.sidecar.as_ref().map(RefCell::try_borrow_mut) {
                let reports = || match shared.pools.as_ref().map(RefCell::try_borrow_mut) {
                    Some(Ok(mut pools)) => pools.fleet_reports(),
                    _ => Default::default(),
                };
                gauges.extend(sidecar.tick(now_ms, reports));
                let fresh = sidecar.fresh(now_ms);
                if let Some(Ok(mut pools)) = shared.pools.as_ref().map(RefCell::try_borrow_mut) {
                    pools.set_live(fresh, now_ms);
                }
            }
            if let Some(g) = shared.with_pools(|pools, actions| pools.tick(now_ms, actions)) {
                gauges.extend(g);
            }
            if let Ok(mut counters) = shared.counters.try_borrow_mut() {
                for (name, value) in gauges {
                    counters.set_gauge(name, value);
                }
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Some(shared) = &self.shared {
            shared.with_pools(|pools, actions| pools.on_queue(queue_id, actions));
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Returning None would make the SDK panic; an unconfigured root (Envoy does
        // not create streams for one) still gets a context that fails closed.
        Some(Box::new(FairgateHttp {
            shared: self.shared.clone(),
            context_id,
            flow: None,
            queued: false,
            shadow: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FairgateHttp {
    shared: Option<Rc<Shared>>,
    context_id: u32,
    /// A request whose body is read and whose tokens are accounted.
    flow: Option<Box<Flow>>,
    /// Paused in a pool's queue: a body arriving meanwhile must wait with the
    /// headers (a body chunk answered `Continue` would let them go on).
    queued: bool,
    /// Shadow mode: what enforcing would have decided (`x-fairgate-shadow`).
    shadow: Option<&'static str>,
}

/// A buffer size that reads a whole buffer (the host returns what there is).
const WHOLE_BODY: usize = usize::MAX;

impl Context for FairgateHttp {
    fn on_done(&mut self) -> bool {
        let Some(shared) = self.shared.clone() else {
            return true;
        };
        if self.flow.is_none() && shared.pools.is_none() {
            // Nothing to settle or release: no host call on this path.
            return true;
        }
        if self.flow.as_ref().is_some_and(|f| f.admit_after_body) {
            if let Ok(mut hold) = shared.hold.try_borrow_mut() {
                hold.ended(self.context_id);
            }
        }
        let now_ms = HostClock.now_ms();
        let actual_cost = self
            .flow
            .take()
            .and_then(|flow| self.settle(&shared, *flow, now_ms));
        let context = self.context_id;
        shared.with_pools(|pools, actions| pools.finish(context, now_ms, actual_cost, actions));
        true
    }
}

fn send(reply: &LocalReply) {
    send_reply(reply.status, &reply.headers, &reply.body);
}

fn send_reply(status: u32, headers: &[(&'static str, String)], body: &str) {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    if let Err(status) = hostcalls::send_http_response(status, headers, Some(body.as_bytes())) {
        log(
            LogLevel::Warn,
            &format!("fairgate: local reply failed: {status:?}"),
        );
    }
}

/// Chooses the request's cluster (routing header written, the client's copy removed)
/// and returns the pool it is admitted to.
fn route(shared: &Shared, policy: &TenantPolicy, now_ms: u64) -> Rc<str> {
    if !shared.routing.active {
        return SHARED_POOL.into();
    }
    let route = shared
        .routing
        .choose(policy.cluster.as_deref(), shared, now_ms);
    // Set, or remove the client's own copy: only fairgate picks clusters.
    let _ = hostcalls::set_map_value(
        MapType::HttpRequestHeaders,
        &shared.routing.header,
        route.as_deref(),
    );
    match route {
        Some(cluster) => {
            if let Ok(mut counters) = shared.counters.try_borrow_mut() {
                counters.count_named(routed_counter(&cluster));
            }
            cluster.into()
        }
        None => SHARED_POOL.into(),
    }
}

fn buffer(kind: BufferType, size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    match hostcalls::get_buffer(kind, 0, size) {
        Ok(Some(bytes)) => bytes,
        _ => Vec::new(),
    }
}

impl FairgateHttp {
    /// Counts a request that goes on, decided `decision`; a shadow decision also
    /// marks its answer (`x-fairgate-shadow`).
    fn forwarded(&mut self, shared: &Shared, label: &str, decision: Decision) {
        shared.count(Some(label), decision);
        self.shadow = decision.shadowed();
    }

    /// Routes and admits a request that passed identity and budgets; `cost` is its
    /// fair-scheduler cost estimate.
    fn proceed(
        &mut self,
        shared: &Shared,
        tenant: &str,
        label: &str,
        policy: Option<TenantPolicy>,
        decision: Decision,
        cost: f64,
    ) -> Action {
        let Some(policy) = policy else {
            self.forwarded(shared, label, decision);
            return Action::Continue;
        };
        let now_ms = HostClock.now_ms();
        let pool = route(shared, &policy, now_ms);
        self.admit(
            shared, tenant, label, &policy, &pool, decision, cost, now_ms,
        )
    }

    /// Admits the request to `pool`, queues it (paused) or refuses it.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        shared: &Shared,
        tenant: &str,
        label: &str,
        policy: &TenantPolicy,
        pool: &str,
        decision: Decision,
        cost: f64,
        now_ms: u64,
    ) -> Action {
        let context = self.context_id;
        let scheduled = match shared.gate.try_borrow() {
            Ok(gate) => gate.tenants().scheduled_as(tenant, label),
            Err(_) => label,
        };
        let admission = shared
            .with_pools(|pools, actions| {
                pools.admit(context, scheduled, policy, pool, cost, now_ms, actions)
            })
            .unwrap_or(Admission::Forward);
        let refusal = match admission {
            Admission::Forward => {
                self.forwarded(shared, label, decision);
                return Action::Continue;
            }
            Admission::Shadow(shadow) => {
                self.forwarded(shared, label, decision.then_shadow(shadow));
                return Action::Continue;
            }
            Admission::Wait => {
                self.queued = true;
                return Action::Pause;
            }
            refused => refused.refusal(),
        };
        let Some(refusal) = refusal else {
            return Action::Continue;
        };
        if let Some(flow) = self.flow.as_mut() {
            flow.answered_locally();
        }
        shared.count(Some(label), refusal.0);
        send(&refusal.1);
        Action::Pause
    }

    /// What a chunk of the request body that fairgate has no more to do with gets:
    /// it waits while the request waits for a slot, and goes on once it has one.
    fn pass_body(&mut self, shared: &Shared) -> Action {
        if self.queued {
            let waiting = shared
                .pools
                .as_ref()
                .and_then(|p| p.try_borrow().ok())
                .and_then(|p| p.holds_slot(self.context_id))
                == Some(false);
            if waiting {
                return Action::Pause;
            }
            self.queued = false;
        }
        Action::Continue
    }

    /// For an accounted request whose body is still to be read: whether its headers
    /// are still held (a body callback for held headers shows that Envoy holds
    /// them, where this VM did not know yet). None once its body is dealt with.
    fn reading_body(&mut self, shared: &Shared) -> Option<bool> {
        let flow = self.flow.as_ref().filter(|f| f.reading_body())?;
        if !flow.admit_after_body {
            return Some(false);
        }
        let Ok(mut hold) = shared.hold.try_borrow_mut() else {
            return Some(false);
        };
        if hold.body_arrived() {
            log(
                LogLevel::Info,
                "fairgate: Envoy holds request headers while the body is read",
            );
        }
        Some(hold.holds())
    }

    /// The body of an accounted request is complete (`body_size` bytes, or
    /// `WHOLE_BODY`): reserve its tokens, or refuse it; then, where its headers waited
    /// for it, admit it. `headers_held`: nothing of the request has left yet.
    fn on_body(&mut self, shared: &Shared, body_size: usize, headers_held: bool) -> Action {
        let Some(flow) = self.flow.as_mut() else {
            return Action::Continue;
        };
        let body = buffer(BufferType::HttpRequestBody, body_size);
        let now_ms = HostClock.now_ms();
        let done = match shared.gate.try_borrow() {
            Ok(gate) => flow.on_body(gate.accountant(), &body, &HostStore, now_ms),
            Err(_) => return Action::Continue,
        };
        let (rewritten, store_error, cost, admit) = match done {
            BodyDone::Refuse { reply, decision } => {
                shared.count(Some(&flow.label), decision);
                send(&reply);
                return Action::Pause;
            }
            BodyDone::Forward {
                rewritten,
                store_error,
                cost,
                admit,
            } => (rewritten, store_error, cost, admit),
        };
        if let Some(e) = store_error {
            log(
                LogLevel::Warn,
                &format!(
                    "fairgate: token budget of {} not enforced: {e}",
                    flow.tenant
                ),
            );
        }
        if let Some(new_body) = rewritten {
            let replaced =
                hostcalls::set_buffer(BufferType::HttpRequestBody, 0, body.len(), &new_body);
            match replaced {
                // The upstream gets a length, never a chunked body it did not ask for.
                Ok(()) if headers_held => {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "content-length",
                        Some(&new_body.len().to_string()),
                    );
                }
                Ok(()) => {}
                Err(_) => log(
                    LogLevel::Warn,
                    "fairgate: the request body could not be rewritten",
                ),
            }
        }
        if admit && !headers_held {
            // Held to learn that Envoy does not hold headers, then let go.
            if let Ok(mut counters) = shared.counters.try_borrow_mut() {
                counters.count_named(forwarded_before_body_counter(&flow.label));
            }
        }
        if admit {
            let (tenant, label, policy, pool, decision) = (
                flow.tenant.clone(),
                flow.label.clone(),
                flow.policy.clone(),
                flow.pool.clone(),
                flow.decision,
            );
            return self.admit(
                shared, &tenant, &label, &policy, &pool, decision, cost, now_ms,
            );
        }
        let context = self.context_id;
        shared.with_pools(|pools, _| pools.reestimate(context, cost));
        self.pass_body(shared)
    }

    /// Charges an accounted request what it used; returns its fair-scheduler cost.
    fn settle(&self, shared: &Shared, flow: Flow, now_ms: u64) -> Option<f64> {
        let holds_slot = shared
            .pools
            .as_ref()
            .and_then(|p| p.try_borrow().ok())
            .and_then(|p| p.holds_slot(self.context_id));
        let (tenant, label) = (flow.tenant.clone(), flow.label.clone());
        let gate = shared.gate.try_borrow().ok()?;
        let settled = flow.settle(gate.accountant(), holds_slot, &HostStore, now_ms)?;
        drop(gate);
        if let Some(e) = &settled.store_error {
            log(
                LogLevel::Warn,
                &format!("fairgate: settling the tokens of {tenant}: {e}"),
            );
        }
        if let Ok(mut counters) = shared.counters.try_borrow_mut() {
            for (kind, n) in settled.charged {
                counters.add_named(tokens_counter(&label, kind), n);
            }
            if let Some(n) = settled.reserved {
                counters.add_named(tokens_reserved_counter(&label), n);
            }
            if let Some(pct) = settled.estimate_error_pct {
                counters.record(prompt_estimate_error_histogram(&label), pct);
            }
        }
        Some(settled.cost)
    }
}

impl HttpContext for FairgateHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-panic")]
        test_panic();
        let Some(shared) = self.shared.clone() else {
            send_reply(500, &[], "{\"error\":{\"message\":\"fairgate: not configured\",\"type\":\"server_error\",\"param\":null,\"code\":\"not_configured\"}}");
            return Action::Pause;
        };
        let Ok(mut gate) = shared.gate.try_borrow_mut() else {
            return Action::Continue;
        };
        let verdict = gate.on_request_headers(&HostHeaders, &HostStore, &HostClock);
        if gate.identifier().take_refetch_wish() {
            if let Some(Ok(mut jwks)) = shared.jwks.as_ref().map(RefCell::try_borrow_mut) {
                jwks.wish_refetch();
            }
        }
        match verdict {
            Verdict::Forward {
                tenant,
                label,
                policy,
                decision,
                store_error,
            } => {
                if let Some(e) = store_error {
                    log(
                        LogLevel::Warn,
                        &format!("fairgate: budget of {tenant} not enforced: {e}"),
                    );
                }
                // Replaces every copy the client sent with the verified tenant.
                if let Err(status) = hostcalls::set_map_value(
                    MapType::HttpRequestHeaders,
                    gate.forward_header(),
                    Some(&tenant),
                ) {
                    log(
                        LogLevel::Warn,
                        &format!("fairgate: writing tenant header: {status:?}"),
                    );
                }
                let fair_admission = shared.pools.is_some();
                let policy = Some(&*policy);
                // An LLM request with a body: decided once the body is read.
                let reads_body = !end_of_stream
                    && policy.is_some_and(|p| gate.accountant().reads_bodies(p, fair_admission));
                let endpoint = match reads_body {
                    true => HostHeaders
                        .header(":path")
                        .and_then(|p| Endpoint::from_path(&p)),
                    false => None,
                };
                if let (Some(endpoint), Some(policy)) = (endpoint, policy) {
                    let body_bytes = HostHeaders
                        .header("content-length")
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let max_bytes = gate.accountant().config().max_body_bytes;
                    if body_bytes.is_some_and(|n| n > max_bytes as u64) {
                        // Refused before a byte of it is buffered.
                        shared.count(Some(&label), Decision::TooLarge);
                        send(&response::payload_too_large(max_bytes));
                        return Action::Pause;
                    }
                    let cost = gate.accountant().admission_estimate(body_bytes);
                    let policy = policy.clone();
                    drop(gate);
                    let now_ms = HostClock.now_ms();
                    let pool = route(&shared, &policy, now_ms);
                    let holds = shared.hold.try_borrow().is_ok_and(|h| h.holds());
                    self.flow = Some(Box::new(Flow::new(
                        tenant.clone(),
                        label.clone(),
                        policy.clone(),
                        endpoint,
                        max_bytes,
                        decision,
                        pool.clone(),
                        holds,
                    )));
                    if holds {
                        // Nothing leaves until the body is read and the request admitted.
                        if let Ok(mut hold) = shared.hold.try_borrow_mut() {
                            hold.held(self.context_id, now_ms);
                        }
                        return Action::Pause;
                    }
                    // Envoy does not hold headers: they go on once admitted, and the
                    // body, read on its way through, may be rewritten.
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "content-length",
                        None,
                    );
                    if let Ok(mut counters) = shared.counters.try_borrow_mut() {
                        counters.count_named(forwarded_before_body_counter(&label));
                    }
                    return self.admit(
                        &shared, &tenant, &label, &policy, &pool, decision, cost, now_ms,
                    );
                }
                let policy = match fair_admission || shared.routing.active {
                    true => policy.cloned(),
                    false => None,
                };
                drop(gate);
                self.proceed(&shared, &tenant, &label, policy, decision, REQUEST_COST)
            }
            Verdict::Reject {
                reply,
                label,
                decision,
            } => {
                // The client's copy of the tenant header must not reach any upstream,
                // even through a later filter that resumes the request.
                let _ = hostcalls::set_map_value(
                    MapType::HttpRequestHeaders,
                    gate.forward_header(),
                    None,
                );
                shared.count(label.as_deref(), decision);
                send_reply(reply.status, &reply.headers, &reply.body);
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let Some(headers_held) = self.reading_body(&shared) else {
            return self.pass_body(&shared);
        };
        let Some(flow) = self.flow.as_mut() else {
            return Action::Continue;
        };
        match flow.on_body_chunk(body_size, end_of_stream) {
            // Envoy buffers it with the rest.
            BodyChunk::Buffer => Action::Pause,
            BodyChunk::TooLarge(reply) => {
                shared.count(Some(&flow.label), Decision::TooLarge);
                send(&reply);
                Action::Pause
            }
            BodyChunk::Complete => self.on_body(&shared, body_size, headers_held),
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        // A body followed by trailers ends here, not at a last chunk: decided now, or
        // the trailers would let it go on unread.
        match self.reading_body(&shared) {
            Some(headers_held) => self.on_body(&shared, WHOLE_BODY, headers_held),
            None => self.pass_body(&shared),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let shadowed = self
            .shadow
            .or_else(|| self.flow.as_ref().and_then(|f| f.decision.shadowed()));
        if let Some(shadowed) = shadowed {
            let _ = hostcalls::set_map_value(
                MapType::HttpResponseHeaders,
                SHADOW_HEADER,
                Some(shadowed),
            );
        }
        let Some(flow) = self.flow.as_mut() else {
            return Action::Continue;
        };
        if !flow.is_reserved() {
            return Action::Continue;
        }
        let content_type = match end_of_stream {
            true => Vec::new(),
            false => hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, "content-type")
                .ok()
                .flatten()
                .unwrap_or_default(),
        };
        let edits = flow.on_response_headers(&content_type, end_of_stream);
        if let Some(clamped) = edits.clamped_to {
            let _ = hostcalls::add_map_value(
                MapType::HttpResponseHeaders,
                CLAMPED_HEADER,
                &clamped.to_string(),
            );
        }
        if edits.drop_content_length {
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-length", None);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(flow) = self.flow.as_mut().filter(|f| f.reads_answer()) else {
            return Action::Continue;
        };
        let chunk = buffer(BufferType::HttpResponseBody, body_size);
        if let Some(bytes) = flow.on_response_chunk(&chunk, end_of_stream) {
            let _ = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &bytes);
        }
        Action::Continue
    }
}

/// The test-only build's trigger (`--features test-panic`): a request with the header
/// `x-fairgate-test-panic` panics, which kills this VM (wasm panics abort).
#[cfg(feature = "test-panic")]
#[allow(clippy::panic)]
fn test_panic() {
    if HostHeaders.header("x-fairgate-test-panic").is_some() {
        panic!("x-fairgate-test-panic");
    }
}
