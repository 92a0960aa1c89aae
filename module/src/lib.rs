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
//!
//! Not here yet, and refused at configuration time with the field named: fair
//! admission (`pool`) and the GPU sidecar (`sidecar`); use the wasm filter for those.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use envoy_proxy_dynamic_modules_rust_sdk::abi::{
    envoy_dynamic_module_type_on_http_filter_request_body_status as BodyStatus,
    envoy_dynamic_module_type_on_http_filter_request_headers_status as HeadersStatus,
    envoy_dynamic_module_type_on_http_filter_request_trailers_status as TrailersStatus,
    envoy_dynamic_module_type_on_http_filter_response_body_status as ResponseBodyStatus,
    envoy_dynamic_module_type_on_http_filter_response_headers_status as ResponseHeadersStatus,
};
use envoy_proxy_dynamic_modules_rust_sdk::{
    declare_init_functions, envoy_log_critical, envoy_log_error, envoy_log_info, envoy_log_warn,
    EnvoyCounterVecId, EnvoyHistogramVecId, EnvoyHttpFilter, EnvoyHttpFilterConfig, HttpFilter,
    HttpFilterConfig,
};
use fairgate_core::clock::Clock;
use fairgate_core::config::{Config, TenantPolicy};
use fairgate_core::fair_queue::SHARED_POOL;
use fairgate_core::flow::{BodyChunk, BodyDone, Flow, CLAMPED_HEADER};
use fairgate_core::headroom;
use fairgate_core::identity::RequestHeaders;
use fairgate_core::llm::Endpoint;
use fairgate_core::metrics::Decision;
use fairgate_core::pipeline::{Gate, Verdict};
use fairgate_core::response::{self, LocalReply};

mod store;

use store::{ProcessStore, SystemClock};

declare_init_functions!(init, new_filter_config);

fn init() -> bool {
    true
}

/// Gives each filter configuration its own gates on every worker.
static CONFIGS: AtomicU64 = AtomicU64::new(1);

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
    metrics: Metrics,
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
}

struct FairgateConfig {
    shared: Arc<Shared>,
}

impl FairgateConfig {
    fn new<EC: EnvoyHttpFilterConfig>(
        envoy: &mut EC,
        name: &str,
        plugin_config: &[u8],
    ) -> Result<Self, String> {
        let config = Config::from_json(plugin_config).map_err(|e| e.to_string())?;
        if config.pool.is_some() {
            return Err("pool: fair admission is not in the native module yet; \
                        use the wasm filter for it"
                .to_string());
        }
        if config.sidecar.is_some() {
            return Err("sidecar: the GPU sidecar is not in the native module yet; \
                        use the wasm filter for it"
                .to_string());
        }
        let metric = |e| format!("defining metrics: {e:?}");
        let metrics = Metrics {
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
        };
        if let Ok(weights) = envoy.define_gauge_vec("fg_tenant_weight", &["tenant"]) {
            for (tenant, policy) in &config.tenants.by_name {
                let thousandths = (policy.weight * 1000.0).round() as u64;
                let _ = envoy.set_gauge_vec(weights, &[tenant], thousandths);
            }
        }
        let name = if name.is_empty() { "fairgate" } else { name };
        let shared = Shared {
            id: CONFIGS.fetch_add(1, Ordering::Relaxed),
            plugin_config: plugin_config.to_vec(),
            prefix: format!("fairgate:{name}:"),
            forward_header: config.identity.forward_header.clone(),
            routing_header: config.routing.header.clone(),
            routing: !config.routing.shared_clusters.is_empty()
                || config.tenants.by_name.values().any(|p| p.cluster.is_some()),
            shared_clusters: config.routing.shared_clusters.clone(),
            turn: AtomicUsize::new(0),
            metrics,
        };
        let gate = Gate::new(config, &shared.prefix, cache_seed());
        if let Err(e) = gate.prepare_budgets(&ProcessStore, SystemClock.now_ms()) {
            envoy_log_warn!("fairgate: preparing budgets: {e}");
        }
        envoy_log_info!("fairgate: configured");
        Ok(Self {
            shared: Arc::new(shared),
        })
    }
}

impl<EHF: EnvoyHttpFilter> HttpFilterConfig<EHF> for FairgateConfig {
    fn new_http_filter(&self, _envoy: &mut EHF) -> Box<dyn HttpFilter<EHF>> {
        Box::new(FairgateFilter {
            shared: self.shared.clone(),
            flow: None,
            panicked: false,
        })
    }
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
}

thread_local! {
    /// This worker's state of each filter configuration.
    static WORKERS: RefCell<HashMap<u64, Worker>> = RefCell::new(HashMap::new());
}

impl Shared {
    /// Runs `f` on this worker's state (made on its first request).
    fn with_worker<T>(&self, f: impl FnOnce(&mut Worker) -> T) -> Option<T> {
        WORKERS.with(|workers| {
            let mut workers = workers.try_borrow_mut().ok()?;
            let worker = match workers.entry(self.id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(v) => {
                    let config = Config::from_json(&self.plugin_config).ok()?;
                    v.insert(Worker {
                        gate: Gate::new(config, &self.prefix, cache_seed()),
                        leases_returned_at: 0,
                    })
                }
            };
            Some(f(worker))
        })
    }

    /// Runs `f` on this worker's gate.
    fn with_gate<T>(&self, f: impl FnOnce(&mut Gate) -> T) -> Option<T> {
        self.with_worker(|worker| f(&mut worker.gate))
    }

    fn count<EHF: EnvoyHttpFilter>(&self, envoy: &EHF, tenant: Option<&str>, decision: Decision) {
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
                headroom::choose_shared(&self.shared_clusters, None, |_| true, turn)
                    .map(str::to_string)
            }
        };
        match &cluster {
            Some(c) => {
                envoy.set_request_header(&self.routing_header, c.as_bytes());
                let _ = envoy.increment_counter_vec(self.metrics.routed, &[c], 1);
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
            .map(|v| String::from_utf8_lossy(v.as_slice()).into_owned())
    }
}

struct FairgateFilter {
    shared: Arc<Shared>,
    /// A request whose body is read and whose tokens are accounted.
    flow: Option<Flow>,
    /// A callback of this stream panicked: the others do nothing.
    panicked: bool,
}

impl FairgateFilter {
    /// The body of an accounted request is complete: reserve its tokens (the body
    /// rewritten where the core says) and let it go on, or refuse it.
    fn on_body<EHF: EnvoyHttpFilter>(&mut self, envoy: &mut EHF) -> bool {
        let Some(flow) = self.flow.as_mut() else {
            return true;
        };
        let body = request_body(envoy);
        let now_ms = SystemClock.now_ms();
        let done = self
            .shared
            .with_gate(|gate| flow.on_body(gate.accountant(), &body, &ProcessStore, now_ms));
        match done {
            None => true,
            Some(BodyDone::Refuse { reply, decision }) => {
                self.shared.count(envoy, Some(&flow.label), decision);
                send(envoy, &reply);
                false
            }
            Some(BodyDone::Forward {
                rewritten,
                store_error,
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
                self.shared.count(envoy, Some(&flow.label), flow.decision);
                true
            }
        }
    }

    fn settle(&mut self, envoy: &mut impl EnvoyHttpFilter) {
        let Some(flow) = self.flow.take() else {
            return;
        };
        let (tenant, label) = (flow.tenant.clone(), flow.label.clone());
        let now_ms = SystemClock.now_ms();
        let settled = self
            .shared
            .with_gate(|gate| flow.settle(gate.accountant(), None, &ProcessStore, now_ms))
            .flatten();
        let Some(settled) = settled else {
            return;
        };
        if let Some(e) = &settled.store_error {
            envoy_log_warn!("fairgate: settling the tokens of {tenant}: {e}");
        }
        let metrics = &self.shared.metrics;
        for (kind, n) in settled.charged {
            let _ = envoy.increment_counter_vec(metrics.tokens, &[&label, kind.as_str()], n);
        }
        if let Some(n) = settled.reserved {
            let _ = envoy.increment_counter_vec(metrics.tokens_reserved, &[&label], n);
        }
        if let Some(pct) = settled.estimate_error_pct {
            let _ = envoy.record_histogram_value_vec(metrics.estimate_error, &[&label], pct);
        }
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
        let decided = shared.with_worker(|worker| {
            if worker.leases_returned_at + LEASE_CHECK_MS <= clock.0 {
                worker.leases_returned_at = clock.0;
                if let Err(e) = worker.gate.return_leases(&ProcessStore, clock.0) {
                    envoy_log_warn!("fairgate: giving back leased request tokens: {e}");
                }
            }
            let gate = &mut worker.gate;
            let verdict = gate.on_request_headers(&Headers(&*envoy), &ProcessStore, &clock);
            // The tenant's policy, where the request is routed or its body read.
            let accounted = match &verdict {
                Verdict::Forward { label, .. } => gate.tenants().by_name.get(label).and_then(|p| {
                    let reads_body = !end_of_stream && gate.accountant().reads_bodies(p, false);
                    (reads_body || shared.routing).then(|| (p.clone(), reads_body))
                }),
                Verdict::Reject { .. } => None,
            };
            let max_bytes = gate.accountant().config().max_body_bytes;
            (verdict, accounted, max_bytes)
        });
        let Some((verdict, accounted, max_bytes)) = decided else {
            send(
                envoy,
                &response::overloaded("fairgate: the worker's state is busy"),
            );
            return HeadersStatus::StopIteration;
        };
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
            } => {
                if let Some(e) = store_error {
                    envoy_log_warn!("fairgate: budget of {tenant} not enforced: {e}");
                }
                envoy.set_request_header(forward_header, tenant.as_bytes());
                let Some((policy, reads_body)) = accounted else {
                    shared.count(envoy, Some(&label), decision);
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
                    shared.count(envoy, Some(&label), decision);
                    return HeadersStatus::Continue;
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
                // Nothing leaves until the body is read and its tokens reserved.
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
            return BodyStatus::Continue;
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
                true => BodyStatus::Continue,
                false => BodyStatus::StopIterationNoBuffer,
            },
        }
    }

    fn request_trailers<EHF: EnvoyHttpFilter>(&mut self, envoy: &mut EHF) -> TrailersStatus {
        // A body followed by trailers ends here, not at a last chunk.
        if !self.flow.as_ref().is_some_and(|f| f.reading_body()) {
            return TrailersStatus::Continue;
        }
        match self.on_body(envoy) {
            true => TrailersStatus::Continue,
            false => TrailersStatus::StopIteration,
        }
    }

    fn response_headers<EHF: EnvoyHttpFilter>(
        &mut self,
        envoy: &mut EHF,
        end_of_stream: bool,
    ) -> ResponseHeadersStatus {
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

    fn on_stream_complete(&mut self, envoy: &mut EHF) {
        self.guarded(envoy, Reply::No, (), |f, e| f.settle(e));
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
