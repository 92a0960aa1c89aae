//! Reading the answer to a configuration's HTTP callout (the sidecar poll, the JWKS
//! fetch).

use envoy_proxy_dynamic_modules_rust_sdk::abi::{
    envoy_dynamic_module_type_http_callout_init_result as CalloutInit,
    envoy_dynamic_module_type_http_callout_result as CalloutResult,
};
use envoy_proxy_dynamic_modules_rust_sdk::{EnvoyBuffer, EnvoyHttpFilterConfig};

/// Sends `GET path` to `cluster` (as `authority`) from the configuration; the callout's
/// id, or why it could not be sent.
pub fn get(
    envoy: &mut impl EnvoyHttpFilterConfig,
    cluster: &str,
    path: &str,
    authority: &str,
    timeout_ms: u64,
) -> Result<u64, String> {
    let headers: [(&str, &[u8]); 3] = [
        (":method", b"GET"),
        (":path", path.as_bytes()),
        (":authority", authority.as_bytes()),
    ];
    match envoy.send_http_callout(cluster, &headers, None, timeout_ms) {
        (CalloutInit::Success, id) => Ok(id),
        (other, _) => Err(format!("cannot call cluster {cluster}: {other:?}")),
    }
}

/// Sends `POST path` with a JSON `body` to `cluster` (as `authority`) from the
/// configuration; the callout's id, or why it could not be sent.
pub fn post_json(
    envoy: &mut impl EnvoyHttpFilterConfig,
    cluster: &str,
    path: &str,
    authority: &str,
    body: &[u8],
    timeout_ms: u64,
) -> Result<u64, String> {
    let headers: [(&str, &[u8]); 4] = [
        (":method", b"POST"),
        (":path", path.as_bytes()),
        (":authority", authority.as_bytes()),
        ("content-type", b"application/json"),
    ];
    match envoy.send_http_callout(cluster, &headers, Some(body), timeout_ms) {
        (CalloutInit::Success, id) => Ok(id),
        (other, _) => Err(format!("cannot call cluster {cluster}: {other:?}")),
    }
}

/// The body of a 200 answer of at most `max_bytes`, or why there is none.
pub fn body_of(
    result: CalloutResult,
    headers: Option<&[(EnvoyBuffer, EnvoyBuffer)]>,
    body: Option<&[EnvoyBuffer]>,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    if result != CalloutResult::Success {
        return Err(format!("the call failed: {result:?}"));
    }
    let status = headers
        .unwrap_or_default()
        .iter()
        .find(|(name, _)| name.as_slice() == b":status")
        .map(|(_, value)| String::from_utf8_lossy(value.as_slice()).into_owned())
        .unwrap_or_default();
    if status != "200" {
        return Err(format!("answered {status:?}"));
    }
    let chunks = body.unwrap_or_default();
    let size: usize = chunks.iter().map(|c| c.as_slice().len()).sum();
    if size > max_bytes {
        return Err(format!(
            "an answer of {size} bytes, over the {max_bytes} allowed"
        ));
    }
    let mut bytes = Vec::with_capacity(size);
    for chunk in chunks {
        bytes.extend_from_slice(chunk.as_slice());
    }
    Ok(bytes)
}
