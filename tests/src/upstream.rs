//! A recording upstream on 127.0.0.1: answers every request with 200 and a JSON echo
//! of what it received, and keeps every request's headers for the test to inspect.
//! With a service time it holds each request that long, like a busy model server,
//! and counts per tenant (by `x-fairgate-tenant`) the requests in flight, the most
//! ever in flight at once, and those completed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Every header, in order, lower-case names (repeats kept).
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// Every value of header `name`.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Per-tenant load as the upstream saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLoad {
    pub in_flight: u64,
    pub max_in_flight: u64,
    pub completed: u64,
}

/// A running recording upstream; stops with the test's runtime.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    load: LoadMap,
    total: Arc<Mutex<TenantLoad>>,
}

type LoadMap = Arc<Mutex<BTreeMap<String, TenantLoad>>>;

/// One request in flight at the upstream; leaves the count however the request ends
/// (a client that goes away drops it mid-wait).
struct InFlight {
    load: LoadMap,
    total: Arc<Mutex<TenantLoad>>,
    tenant: String,
    completed: bool,
}

impl InFlight {
    fn enter(load: LoadMap, total: Arc<Mutex<TenantLoad>>, tenant: String) -> Self {
        if let Ok(mut map) = load.lock() {
            let l = map.entry(tenant.clone()).or_default();
            l.in_flight += 1;
            l.max_in_flight = l.max_in_flight.max(l.in_flight);
        }
        if let Ok(mut l) = total.lock() {
            l.in_flight += 1;
            l.max_in_flight = l.max_in_flight.max(l.in_flight);
        }
        Self {
            load,
            total,
            tenant,
            completed: false,
        }
    }

    fn complete(mut self) {
        self.completed = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut map) = self.load.lock() {
            let l = map.entry(self.tenant.clone()).or_default();
            l.in_flight = l.in_flight.saturating_sub(1);
            l.completed += u64::from(self.completed);
        }
        if let Ok(mut l) = self.total.lock() {
            l.in_flight = l.in_flight.saturating_sub(1);
            l.completed += u64::from(self.completed);
        }
    }
}

impl Upstream {
    /// Starts the upstream on a free port of 127.0.0.1 (within a tokio runtime).
    pub async fn start() -> Upstream {
        Self::with_service_time(Duration::ZERO).await
    }

    /// Starts an upstream that holds every request for `service_time`.
    pub async fn with_service_time(service_time: Duration) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let load: LoadMap = Arc::default();
        let total: Arc<Mutex<TenantLoad>> = Arc::default();
        let record = seen.clone();
        let tenant_load = load.clone();
        let all_load = total.clone();
        let app =
            axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
                let record = record.clone();
                let tenant_load = tenant_load.clone();
                let all_load = all_load.clone();
                async move {
                    let headers: Vec<(String, String)> = headers
                        .iter()
                        .map(|(n, v)| {
                            (
                                n.as_str().to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect();
                    let tenants: Vec<&str> = headers
                        .iter()
                        .filter(|(n, _)| n == "x-fairgate-tenant")
                        .map(|(_, v)| v.as_str())
                        .collect();
                    let body =
                        serde_json::json!({"path": uri.path(), "tenants": tenants}).to_string();
                    let tenant = tenants.first().copied().unwrap_or("").to_string();
                    if let Ok(mut seen) = record.lock() {
                        seen.push(Seen {
                            method: method.to_string(),
                            path: uri.path().to_string(),
                            headers: headers.clone(),
                        });
                    }
                    let in_flight = InFlight::enter(tenant_load, all_load, tenant);
                    if !service_time.is_zero() {
                        tokio::time::sleep(service_time).await;
                    }
                    in_flight.complete();
                    ([("content-type", "application/json")], body).into_response()
                }
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            addr,
            seen,
            load,
            total,
        }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Per-tenant load so far (the tenant of each request is its `x-fairgate-tenant`).
    pub fn load(&self) -> BTreeMap<String, TenantLoad> {
        self.load.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// All tenants' load together: the most requests in flight at once, and so on.
    pub fn total(&self) -> TenantLoad {
        self.total.lock().map(|l| *l).unwrap_or_default()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }
}
