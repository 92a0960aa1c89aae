//! Local replies: the OpenAI error body and headers of every refusal (SPEC section 6).
//!
//! Bodies are `{"error": {"message", "type", "param", "code"}}`, the shape OpenAI
//! SDK clients parse. A refusal that waiting can cure carries `retry-after` in whole
//! seconds (rounded up, never 0) and `retry-after-ms`, which the SDKs' own retries
//! obey; rate-limit replies add OpenAI's `x-ratelimit-*` headers. One that no retry
//! can fix (401, 403, 400, 413, a request larger than its tenant's token burst)
//! carries `x-should-retry: false` instead, so that an SDK does not retry it.

use serde::Serialize;

use crate::bucket::Quota;
use crate::budget::BudgetKind;

/// A reply fairgate sends instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// The OpenAI error `code`, also used in logs.
    pub code: &'static str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

/// The header that tells OpenAI SDKs not to retry.
const NO_RETRY: (&str, &str) = ("x-should-retry", "false");

fn no_retry(mut headers: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    headers.push((NO_RETRY.0, NO_RETRY.1.to_string()));
    headers
}

/// `retry-after` and `retry-after-ms` for a wait of about `ms`.
fn retry_in(ms: u64) -> [(&'static str, String); 2] {
    let ms = ms.max(1);
    [
        ("retry-after", ms.div_ceil(1000).to_string()),
        ("retry-after-ms", ms.to_string()),
    ]
}

fn reply(
    status: u32,
    kind: &'static str,
    code: &'static str,
    message: &str,
    headers: Vec<(&'static str, String)>,
) -> LocalReply {
    reply_about(status, kind, code, None, message, headers)
}

fn reply_about(
    status: u32,
    kind: &'static str,
    code: &'static str,
    param: Option<&str>,
    message: &str,
    mut headers: Vec<(&'static str, String)>,
) -> LocalReply {
    let body = serde_json::to_string(&ErrorBody {
        error: ErrorDetail {
            message,
            kind,
            param,
            code,
        },
    })
    .unwrap_or_default();
    headers.push(("content-type", "application/json".to_string()));
    LocalReply {
        status,
        headers,
        body,
        code,
    }
}

/// 401 `missing_tenant`: nothing identified the tenant.
pub fn missing_tenant(reason: &str) -> LocalReply {
    reply(
        401,
        "authentication_error",
        "missing_tenant",
        &format!("fairgate: {reason}"),
        no_retry(vec![("www-authenticate", "Bearer".to_string())]),
    )
}

/// 401 `invalid_tenant_token`: the identity sent does not hold.
pub fn invalid_tenant_token(reason: &str) -> LocalReply {
    reply(
        401,
        "authentication_error",
        "invalid_tenant_token",
        &format!("fairgate: {reason}"),
        no_retry(vec![(
            "www-authenticate",
            "Bearer error=\"invalid_token\"".to_string(),
        )]),
    )
}

/// 403 `unknown_tenant`: authenticated, but not a tenant here and no default.
pub fn unknown_tenant(tenant: &str) -> LocalReply {
    reply(
        403,
        "permission_error",
        "unknown_tenant",
        &format!("fairgate: tenant {tenant:?} is not configured"),
        no_retry(Vec::new()),
    )
}

/// The `x-ratelimit-*` headers of a `kind` bucket.
fn quota_headers(kind: BudgetKind, quota: &Quota) -> [(&'static str, String); 3] {
    [
        (limit_header(kind), quota.limit.to_string()),
        (remaining_header(kind), quota.remaining.to_string()),
        (reset_header(kind), openai_duration(quota.reset_ms)),
    ]
}

/// 429 `rate_limit_exceeded`: the tenant's `kind` bucket is empty.
pub fn rate_limited(kind: BudgetKind, retry_after_ms: u64, quota: &Quota) -> LocalReply {
    limited(kind, None, kind.as_str(), retry_after_ms, quota)
}

/// 429 `rate_limit_exceeded` from the tenant's token budget for `model`
/// (`tenants.<id>.models`): `param` is `model`, the `x-ratelimit-*-tokens` headers are
/// that budget's.
pub fn model_rate_limited(model: &str, retry_after_ms: u64, quota: &Quota) -> LocalReply {
    let what = format!("tokens of model {model}");
    limited(
        BudgetKind::Tokens,
        Some("model"),
        &what,
        retry_after_ms,
        quota,
    )
}

fn limited(
    kind: BudgetKind,
    param: Option<&str>,
    what: &str,
    retry_after_ms: u64,
    quota: &Quota,
) -> LocalReply {
    let retry_after_ms = retry_after_ms.max(1);
    let mut headers = retry_in(retry_after_ms).to_vec();
    headers.extend(quota_headers(kind, quota));
    reply_about(
        429,
        kind.as_str(),
        "rate_limit_exceeded",
        param,
        &format!(
            "fairgate: rate limit reached for {what}; retry in {}",
            openai_duration(retry_after_ms)
        ),
        headers,
    )
}

/// 429 `rate_limit_exceeded`: the request needs more tokens than the tenant's
/// `token_burst` could ever hold (OpenAI's "request too large" for a TPM limit): no
/// wait helps.
pub fn too_many_tokens(needed: u64, quota: &Quota) -> LocalReply {
    too_large(needed, "", quota)
}

/// 429 `rate_limit_exceeded`: the request needs more tokens than the tenant's budget
/// for `model` could ever hold: no wait helps.
pub fn too_many_model_tokens(model: &str, needed: u64, quota: &Quota) -> LocalReply {
    too_large(needed, &format!(" for model {model}"), quota)
}

fn too_large(needed: u64, budget: &str, quota: &Quota) -> LocalReply {
    reply_about(
        429,
        "tokens",
        "rate_limit_exceeded",
        Some("max_tokens"),
        &format!(
            "fairgate: request too large: it may use {needed} tokens (prompt and max_tokens), \
             more than this tenant's token burst of {}{budget}; lower max_tokens",
            quota.limit
        ),
        no_retry(quota_headers(BudgetKind::Tokens, quota).to_vec()),
    )
}

/// 400 `invalid_request_body`: an OpenAI-compatible body fairgate cannot read.
pub fn bad_request(param: Option<&str>, message: &str) -> LocalReply {
    reply_about(
        400,
        "invalid_request_error",
        "invalid_request_body",
        param,
        &format!("fairgate: {message}"),
        no_retry(Vec::new()),
    )
}

/// 413 `request_too_large`: the body is over `tokens.max_body_bytes`.
pub fn payload_too_large(max_bytes: usize) -> LocalReply {
    reply(
        413,
        "invalid_request_error",
        "request_too_large",
        &format!("fairgate: the request body is larger than {max_bytes} bytes"),
        no_retry(Vec::new()),
    )
}

/// 429 `queue_full`: the tenant already has `max_queue_per_tenant` requests waiting.
pub fn queue_full() -> LocalReply {
    reply(
        429,
        "rate_limit_error",
        "queue_full",
        "fairgate: too many of this tenant's requests are waiting for the GPUs",
        retry_in(1000).to_vec(),
    )
}

/// 503 `overloaded`: no slot came within the queue timeout, or the tenant is
/// sheddable and the pool is saturated.
pub fn overloaded(reason: &str) -> LocalReply {
    reply(
        503,
        "server_error",
        "overloaded",
        &format!("fairgate: {reason}"),
        retry_in(1000).to_vec(),
    )
}

/// 503 `fleet_unavailable`: fleet mode with `outage: closed`, and the fleet's budget
/// cannot be reached (SPEC 9).
pub fn fleet_unavailable(retry_after_ms: u64) -> LocalReply {
    reply(
        503,
        "server_error",
        "fleet_unavailable",
        "fairgate: the fleet's budget cannot be reached; budgeted requests are refused \
         until it returns",
        retry_in(retry_after_ms).to_vec(),
    )
}

/// 500 `internal_error`: fairgate failed on this request (a bug, logged); it was not
/// forwarded.
pub fn internal_error() -> LocalReply {
    reply(
        500,
        "server_error",
        "internal_error",
        "fairgate: internal error; the request was not forwarded",
        Vec::new(),
    )
}

fn limit_header(kind: BudgetKind) -> &'static str {
    match kind {
        BudgetKind::Requests => "x-ratelimit-limit-requests",
        BudgetKind::Tokens => "x-ratelimit-limit-tokens",
    }
}

fn remaining_header(kind: BudgetKind) -> &'static str {
    match kind {
        BudgetKind::Requests => "x-ratelimit-remaining-requests",
        BudgetKind::Tokens => "x-ratelimit-remaining-tokens",
    }
}

fn reset_header(kind: BudgetKind) -> &'static str {
    match kind {
        BudgetKind::Requests => "x-ratelimit-reset-requests",
        BudgetKind::Tokens => "x-ratelimit-reset-tokens",
    }
}

/// Durations as OpenAI writes them in `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`.
pub fn openai_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let minutes = ms / 60_000;
    let rest_ms = ms % 60_000;
    let seconds = if rest_ms.is_multiple_of(1000) {
        format!("{}s", rest_ms / 1000)
    } else {
        let s = format!("{:.3}", rest_ms as f64 / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    };
    if minutes > 0 {
        format!("{minutes}m{seconds}")
    } else {
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::header;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn errors_use_the_openai_body() {
        let r = unknown_tenant("zeta");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "unknown_tenant");
        assert_eq!(v["error"]["type"], "permission_error");
        assert!(v["error"]["message"].as_str().unwrap().contains("zeta"));
        assert_eq!(r.status, 403);
        assert_eq!(header(&r, "content-type"), Some("application/json"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_401_challenges_for_a_bearer_token() {
        assert_eq!(
            header(&missing_tenant("x"), "www-authenticate"),
            Some("Bearer")
        );
        assert!(header(&invalid_tenant_token("x"), "www-authenticate")
            .unwrap()
            .starts_with("Bearer"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_429_says_when_to_retry_rounded_up_to_whole_seconds() {
        let quota = Quota {
            limit: 40,
            remaining: 0,
            reset_ms: 2500,
        };
        let r = rate_limited(BudgetKind::Requests, 1, &quota);
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "retry-after"), Some("1"));
        assert_eq!(header(&r, "retry-after-ms"), Some("1"));
        assert_eq!(header(&r, "x-ratelimit-limit-requests"), Some("40"));
        assert_eq!(header(&r, "x-ratelimit-remaining-requests"), Some("0"));
        assert_eq!(header(&r, "x-ratelimit-reset-requests"), Some("2.5s"));
        let r = rate_limited(BudgetKind::Tokens, 1001, &quota);
        assert_eq!(header(&r, "retry-after"), Some("2"));
        assert_eq!(header(&r, "x-ratelimit-limit-tokens"), Some("40"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn durations_are_written_the_openai_way() {
        assert_eq!(openai_duration(20), "20ms");
        assert_eq!(openai_duration(1000), "1s");
        assert_eq!(openai_duration(1500), "1.5s");
        assert_eq!(openai_duration(360_000), "6m0s");
        assert_eq!(openai_duration(61_250), "1m1.25s");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn body_refusals_name_the_field_and_the_limit() {
        let r = bad_request(Some("max_tokens"), "`max_tokens` must be an integer");
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            (r.status, v["error"]["param"].as_str()),
            (400, Some("max_tokens"))
        );
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let r = payload_too_large(4096);
        assert_eq!(r.status, 413);
        assert!(r.body.contains("4096"));
        let quota = Quota {
            limit: 100,
            remaining: 40,
            reset_ms: 2500,
        };
        let r = too_many_tokens(500, &quota);
        assert_eq!(r.status, 429);
        assert_eq!(header(&r, "x-ratelimit-limit-tokens"), Some("100"));
        assert!(r.body.contains("500") && r.body.contains("rate_limit_exceeded"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_refusal_no_retry_can_fix_says_so_and_the_others_say_when_to_retry() {
        let quota = Quota {
            limit: 100,
            remaining: 0,
            reset_ms: 2500,
        };
        for r in [
            missing_tenant("x"),
            invalid_tenant_token("x"),
            unknown_tenant("x"),
            bad_request(None, "x"),
            payload_too_large(4096),
            too_many_tokens(500, &quota),
        ] {
            assert_eq!(header(&r, "x-should-retry"), Some("false"), "{}", r.code);
            assert_eq!(header(&r, "retry-after"), None, "{}", r.code);
        }
        for r in [
            rate_limited(BudgetKind::Tokens, 1500, &quota),
            queue_full(),
            overloaded("x"),
        ] {
            assert_eq!(header(&r, "x-should-retry"), None, "{}", r.code);
            let ms: u64 = header(&r, "retry-after-ms").unwrap().parse().unwrap();
            let s: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
            assert_eq!(s, ms.div_ceil(1000), "{}", r.code);
        }
    }
}
