//! The proxy-wasm glue: the only code that talks to Envoy.
//!
//! It implements the logic's traits over host calls (`HostStore` over shared data,
//! `HostClock`, `HostHeaders`), loads the config in `on_configure`, and turns each
//! `Verdict` into header edits or a local reply. It calls `hostcalls` directly rather
//! than the SDK's context helpers, which `unwrap` host results: every host error is
//! handled here, since a panic would kill the VM for every request on its worker.
//!
//! Host calls on the request path (a cached or header-mode tenant with a request
//! budget): one header read per identity header, the clock, one shared-data read
//! and one CAS write, one header write; with routing, one more header write; with
//! fair admission, a pool read and CAS write at admission and again at the end
//! (`admission`). Each costs about 2.5 µs of Envoy CPU in V8 (bench/README.md), so
//! counters are kept in VM memory and flushed on the tick, and the sidecar's snapshot
//! is read on the tick (`sidecar`), never per request.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use hashbrown::HashMap;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType, Status};

mod admission;
mod sidecar;

use admission::{Action as PoolAction, Admission, Pools, SHARED_POOL};
use sidecar::Sidecar;

use crate::clock::Clock;
use crate::config::Config;
use crate::headroom;
use crate::identity::RequestHeaders;
use crate::metrics::{
    queue_wait_histogram, requests_counter, routed_counter, Decision, WAKEUP_HISTOGRAM,
};
use crate::pipeline::{Gate, Verdict};
use crate::response::{self, LocalReply};
use crate::store::{SharedStore, StoreError, Versioned};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FairgateRoot::default()) });
}}

fn log(level: LogLevel, message: &str) {
    // Logging must never take the request down with it.
    let _ = hostcalls::log(level, message);
}

struct HostClock;

impl Clock for HostClock {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
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
            Ok((None, _)) => Ok(None),
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
            Ok(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
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
        if let Some((_, pending)) = self.named.get_mut(&name) {
            *pending += 1;
            return;
        }
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &name) {
            self.named.insert(name, (id, 1));
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
    routing: Routing,
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
                PoolAction::TimedOut { context, tenant } => {
                    if hostcalls::set_effective_context(context).is_ok() {
                        self.count(Some(&tenant), Decision::QueueTimeout);
                        send(&response::overloaded(
                            "no GPU slot came free within the queue timeout",
                        ));
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
            active: !config.routing.shared_clusters.is_empty()
                || config.tenants.by_name.values().any(|p| p.cluster.is_some()),
            turn: std::cell::Cell::new(0),
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
        let sidecar = sidecar_config.map(|c| RefCell::new(Sidecar::new(&prefix, c, vm)));
        let joined =
            pool_config.map(|p| Pools::join(&prefix, vm, p, gate.tenants(), &routing.shared));
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
            counters: RefCell::new(Counters::default()),
            pools,
            sidecar,
            routing,
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
            let mut gauges = Vec::new();
            if let Some(Ok(mut sidecar)) = shared.sidecar.as_ref().map(RefCell::try_borrow_mut) {
                gauges.extend(sidecar.tick(now_ms));
                let fresh = sidecar.fresh(now_ms);
                if let Some(Ok(mut pools)) = shared.pools.as_ref().map(RefCell::try_borrow_mut) {
                    pools.set_live(fresh);
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
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FairgateHttp {
    shared: Option<Rc<Shared>>,
    context_id: u32,
}

impl Context for FairgateHttp {
    fn on_done(&mut self) -> bool {
        if let Some(shared) = &self.shared {
            let now_ms = HostClock.now_ms();
            shared.with_pools(|pools, actions| pools.finish(self.context_id, now_ms, actions));
        }
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

impl HttpContext for FairgateHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.as_ref() else {
            send_reply(500, &[], "{\"error\":{\"message\":\"fairgate: not configured\",\"type\":\"server_error\",\"param\":null,\"code\":\"not_configured\"}}");
            return Action::Pause;
        };
        let Ok(mut gate) = shared.gate.try_borrow_mut() else {
            return Action::Continue;
        };
        let verdict = gate.on_request_headers(&HostHeaders, &HostStore, &HostClock);
        match verdict {
            Verdict::Forward {
                tenant,
                label,
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
                let policy = match shared.pools.is_some() || shared.routing.active {
                    true => gate.tenants().by_name.get(&label).cloned(),
                    false => None,
                };
                drop(gate);
                let Some(policy) = policy else {
                    shared.count(Some(&label), decision);
                    return Action::Continue;
                };
                let now_ms = HostClock.now_ms();
                let route = match shared.routing.active {
                    true => shared
                        .routing
                        .choose(policy.cluster.as_deref(), shared, now_ms),
                    false => None,
                };
                if shared.routing.active {
                    // Set, or remove the client's own copy: only fairgate picks clusters.
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        &shared.routing.header,
                        route.as_deref(),
                    );
                }
                if let (Some(cluster), Ok(mut counters)) =
                    (&route, shared.counters.try_borrow_mut())
                {
                    counters.count_named(routed_counter(cluster));
                }
                let pool = route.as_deref().unwrap_or(SHARED_POOL);
                let context = self.context_id;
                let admission = shared
                    .with_pools(|pools, actions| {
                        pools.admit(context, &label, &policy, pool, now_ms, actions)
                    })
                    .unwrap_or(Admission::Forward);
                match admission {
                    Admission::Forward => {
                        shared.count(Some(&label), decision);
                        Action::Continue
                    }
                    Admission::Wait => Action::Pause,
                    Admission::Shed => {
                        shared.count(Some(&label), Decision::Shed);
                        send(&response::overloaded(
                            "the GPUs are saturated and this tenant's requests are sheddable",
                        ));
                        Action::Pause
                    }
                    Admission::QueueFull => {
                        shared.count(Some(&label), Decision::QueueFull);
                        send(&response::queue_full());
                        Action::Pause
                    }
                }
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
}
