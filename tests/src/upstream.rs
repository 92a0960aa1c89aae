//! A recording upstream on 127.0.0.1: answers every request with 200 and a JSON echo
//! of what it received, and keeps every request's headers for the test to inspect.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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

/// A running recording upstream; stops with the test's runtime.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// Starts the upstream on a free port of 127.0.0.1 (within a tokio runtime).
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let app =
            axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
                let record = record.clone();
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
                    if let Ok(mut seen) = record.lock() {
                        seen.push(Seen {
                            method: method.to_string(),
                            path: uri.path().to_string(),
                            headers: headers.clone(),
                        });
                    }
                    ([("content-type", "application/json")], body).into_response()
                }
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { addr, seen }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }
}
