//! SPEC section 6: any OpenAI SDK pointed at the gateway works unchanged. Kept with the
//! official Python SDK (`openai` on PyPI, the version `scripts/lib.sh` pins and
//! `ensure_openai_sdk` installs into `.venv`): `tests/python/openai_sdk.py` calls it
//! as an application would and reports, case by case, what the SDK made of each
//! answer and every HTTP request it sent; these tests start the gateway (Envoy with
//! fairgate on the host under test, JWT identity, the mock model server), run the
//! script, and hold its report to the contract.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use fairgate_e2e::envoy::{repo_root, Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::tokens::{mint, TokenSpec};
use fairgate_mock::{MockConfig, MockHandle};
use serde_json::{json, Value};

use crate::expect_prometheus;

struct Gateway {
    envoy: Envoy,
    mock: MockHandle,
}

/// JWT identity, no default tenant: `acme` has no limits, `metered` one request a
/// second (burst 1), `small` a token burst of 100; bodies up to 4 KiB.
async fn gateway() -> Gateway {
    let mock = fairgate_mock::spawn(
        MockConfig {
            slots: 16,
            prefill_ms: 1,
            token_ms: 1,
            ..MockConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("mock");
    let mut config: Value = serde_json::from_str(&plugin::config(
        plugin::jwt_identity(),
        json!({
            "acme": {"weight": 1},
            "metered": {"weight": 1, "requests_per_second": 1, "request_burst": 1},
            "small": {"weight": 1, "tokens_per_minute": 600, "token_burst": 100}
        }),
        None,
    ))
    .expect("json");
    // Every tenant's bodies are read and its answers' usage settled, streams
    // included: fairgate asks a stream for its usage chunk where the client did not,
    // and takes it out again before the client sees it.
    config["tokens"] = json!({"default_max_tokens": 256, "max_body_bytes": 4096});
    let envoy = Envoy::start(&EnvoyConfig::new(config.to_string()).upstream("mock", mock.addr));
    Gateway { envoy, mock }
}

/// The Python that has the SDK: `$FAIRGATE_PYTHON`, else `.venv/bin/python`.
fn python() -> PathBuf {
    let python = std::env::var_os("FAIRGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no {}: set FAIRGATE_PYTHON or run `source scripts/lib.sh; ensure_openai_sdk` \
         (installs the openai package into .venv)",
        python.display()
    );
    python
}

/// The SDK version `scripts/lib.sh` pins (`OPENAI_VERSION=`).
fn pinned_version() -> String {
    let lib = std::fs::read_to_string(repo_root().join("scripts/lib.sh")).expect("scripts/lib.sh");
    lib.lines()
        .find_map(|l| l.strip_prefix("OPENAI_VERSION="))
        .expect("OPENAI_VERSION= in scripts/lib.sh")
        .trim()
        .to_string()
}

/// What the script saw, by case.
struct Report {
    cases: BTreeMap<String, Value>,
    text: String,
}

impl Report {
    fn case(&self, name: &str) -> &Value {
        self.cases
            .get(name)
            .unwrap_or_else(|| panic!("no case {name} in the report:\n{}", self.text))
    }

    /// What the SDK returned.
    fn result(&self, name: &str) -> &Value {
        let case = self.case(name);
        assert!(
            case.get("error").is_none(),
            "{name}: the SDK raised: {case:#}"
        );
        &case["result"]
    }

    /// What the SDK raised.
    fn error(&self, name: &str) -> &Value {
        let case = self.case(name);
        assert!(
            case.get("error").is_some(),
            "{name}: the SDK raised nothing: {case:#}"
        );
        &case["error"]
    }

    /// The status of each HTTP request the SDK sent for `name`, retries included.
    fn statuses(&self, name: &str) -> Vec<u64> {
        self.case(name)["requests"]
            .as_array()
            .map(|sent| sent.iter().filter_map(|r| r["status"].as_u64()).collect())
            .unwrap_or_default()
    }

    /// How many HTTP requests the SDK sent in all.
    fn requests(&self) -> usize {
        self.cases
            .values()
            .filter_map(|c| c["requests"].as_array())
            .map(Vec::len)
            .sum()
    }
}

fn token(tenant: &str) -> String {
    mint(&TokenSpec::new("HS256", Some("hs-1"), tenant)).expect("mint")
}

/// Runs the script's `group` of cases against `gw`; panics with its output unless it
/// ends well.
async fn run_sdk(gw: &Gateway, group: &str) -> Report {
    let script = repo_root().join("tests/python/openai_sdk.py");
    let run = tokio::process::Command::new(python())
        .arg(&script)
        .arg(group)
        .env("FAIRGATE_BASE_URL", gw.envoy.url("/v1"))
        .env("FAIRGATE_OPENAI_VERSION", pinned_version())
        .env("FAIRGATE_KEY_ACME", token("acme"))
        .env("FAIRGATE_KEY_METERED", token("metered"))
        .env("FAIRGATE_KEY_SMALL", token("small"))
        .env("FAIRGATE_KEY_STRANGER", token("stranger"))
        // Nothing from the environment steers the SDK elsewhere.
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_LOG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the script ends within 60 s")
        .expect("run the script");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {group}: {}\nstdout:\n{text}\nstderr:\n{stderr}",
        script.display(),
        out.status
    );
    let mut cases = BTreeMap::new();
    for line in text.lines() {
        let case: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nstderr:\n{stderr}"));
        if let Some(name) = case["case"].as_str() {
            cases.insert(name.to_string(), case);
        }
    }
    Report { cases, text }
}

/// `(prompt_tokens, completion_tokens, total_tokens)` of a `usage` as the SDK parsed it.
fn usage(usage: &Value) -> (u64, u64, u64) {
    let n = |field: &str| {
        usage[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field}: {usage}"))
    };
    (
        n("prompt_tokens"),
        n("completion_tokens"),
        n("total_tokens"),
    )
}

/// Envoy's count of the requests its listener received.
fn envoy_requests(envoy: &Envoy) -> usize {
    envoy
        .admin("/stats?filter=^http\\.main\\.downstream_rq_total$")
        .lines()
        .find_map(|l| l.strip_prefix("http.main.downstream_rq_total: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("http.main.downstream_rq_total in Envoy's stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_streams_read_in_the_openai_sdk_as_the_model_sent_them() {
    let gw = gateway().await;
    let report = run_sdk(&gw, "answers").await;
    // The mock's answer names the tenant it was told (the verified one) and is cut
    // at max_tokens: 5 words, a token each; "hi there" is 2 prompt tokens.
    let answer = "hello acme from mock tok4";

    let chat = report.result("chat");
    assert_eq!(chat["object"], "chat.completion");
    assert_eq!(chat["model"], "fairgate-mock-1");
    assert_eq!(chat["role"], "assistant");
    assert_eq!(chat["content"], answer);
    assert_eq!(chat["finish_reason"], "length");
    assert_eq!(usage(&chat["usage"]), (2, 5, 7));

    // A stream that did not ask for usage has none, though fairgate asked the model
    // for it; the same stream cut anywhere reads the same.
    for case in ["chat_stream", "chat_stream_cut"] {
        let stream = report.result(case);
        assert_eq!(stream["content"], answer, "{case}");
        assert_eq!(stream["finish_reason"], "length", "{case}");
        assert_eq!(stream["usage_chunks"], 0, "{case}: {stream}");
    }
    // One that asked gets it once, last, in a chunk with no choices.
    let stream = report.result("chat_stream_usage");
    assert_eq!(stream["content"], answer);
    assert_eq!(stream["usage_chunks"], 1, "{stream}");
    assert_eq!(stream["last_usage"]["choices"], 0, "{stream}");
    assert_eq!(usage(&stream["last_usage"]["usage"]), (2, 5, 7));

    let completion = report.result("completion");
    assert_eq!(completion["text"], "hello acme from");
    assert_eq!(usage(&completion["usage"]), (2, 3, 5));
    // Asked for in base64 by the SDK, decoded by it.
    let embedding = report.result("embedding");
    assert_eq!(embedding["dimensions"], 16);
    assert_eq!(embedding["usage"]["prompt_tokens"], 2);
    assert_eq!(report.result("models"), &json!(["fairgate-mock-1"]));

    for case in report.cases.keys() {
        assert_eq!(report.statuses(case), [200], "{case}: one request, served");
    }
    assert_eq!(envoy_requests(&gw.envoy), report.requests());
    // Every answer was charged its real tokens, the streams' from the usage chunk
    // whether or not the SDK saw it: 4 chats of 2 + 5, a completion of 2 + 3, an
    // embedding of 2.
    expect_prometheus(
        &gw.envoy,
        &[
            r#"fg_tokens{tenant="acme",kind="input"} 12"#,
            r#"fg_tokens{tenant="acme",kind="output"} 23"#,
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_raise_the_sdks_typed_errors_and_its_retries_follow_fairgates_headers() {
    let gw = gateway().await;
    let report = run_sdk(&gw, "refusals").await;

    // Refusals no retry can fix: the SDK's error class for the status (413 has none
    // of its own), the OpenAI body parsed into `code`, `type`, `param` and `body`, and
    // x-should-retry: false, so one request, even for the 429 that the SDK would
    // otherwise retry twice.
    let refused = json!([
        {"case": "bad_body", "class": "BadRequestError", "status": 400,
         "code": "invalid_request_body", "type": "invalid_request_error", "param": "max_tokens"},
        {"case": "too_big", "class": "APIStatusError", "status": 413,
         "code": "request_too_large", "type": "invalid_request_error", "param": null},
        {"case": "bad_key", "class": "AuthenticationError", "status": 401,
         "code": "invalid_tenant_token", "type": "authentication_error", "param": null},
        {"case": "unknown_tenant", "class": "PermissionDeniedError", "status": 403,
         "code": "unknown_tenant", "type": "permission_error", "param": null},
        {"case": "too_large", "class": "RateLimitError", "status": 429,
         "code": "rate_limit_exceeded", "type": "tokens", "param": "max_tokens"}
    ]);
    for want in refused.as_array().into_iter().flatten() {
        let case = want["case"].as_str().unwrap_or_default();
        let err = report.error(case);
        for field in ["class", "status", "code", "type", "param"] {
            assert_eq!(err[field], want[field], "{case}: {field}: {err:#}");
        }
        assert_eq!(err["body"]["code"], want["code"], "{case}: {err:#}");
        assert!(
            err["body"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("fairgate: ")),
            "{case}: {err:#}"
        );
        assert_eq!(err["headers"]["x-should-retry"], "false", "{case}: {err:#}");
        assert_eq!(
            report.statuses(case),
            [want["status"].as_u64().unwrap_or(0)],
            "{case}: not retried"
        );
    }
    let www_authenticate = &report.error("bad_key")["headers"]["www-authenticate"];
    assert!(
        www_authenticate
            .as_str()
            .is_some_and(|v| v.starts_with("Bearer")),
        "{www_authenticate}"
    );

    // An empty request bucket: RateLimitError with OpenAI's rate-limit headers, at
    // once where retries are off, streamed or not.
    assert_eq!(
        report.result("metered_first"),
        "hello metered from mock tok4"
    );
    for case in ["metered_no_retries", "metered_stream_no_retries"] {
        let err = report.error(case);
        assert_eq!(err["class"], "RateLimitError", "{case}: {err}");
        assert_eq!(err["code"], "rate_limit_exceeded", "{case}: {err}");
        assert_eq!(err["type"], "requests", "{case}: {err}");
        let headers = &err["headers"];
        assert_eq!(headers["retry-after"], "1", "{case}: {err}");
        let ms: u64 = headers["retry-after-ms"]
            .as_str()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("{case}: retry-after-ms: {err}"));
        assert!((1..=1000).contains(&ms), "{case}: {err}");
        assert_eq!(headers["x-ratelimit-limit-requests"], "1", "{case}: {err}");
        assert_eq!(
            headers["x-ratelimit-remaining-requests"], "0",
            "{case}: {err}"
        );
        assert!(headers.get("x-should-retry").is_none(), "{case}: {err}");
        assert_eq!(report.statuses(case), [429], "{case}");
    }
    // With its default retries, the SDK waits what retry-after-ms says, and the
    // retry is served.
    assert_eq!(
        report.result("metered_retried"),
        "hello metered from mock tok4"
    );
    let case = report.case("metered_retried");
    assert_eq!(report.statuses("metered_retried"), [429, 200], "{case}");
    let sent = &case["requests"];
    assert_eq!(sent[0]["retry_count"], "0", "{case}");
    assert_eq!(sent[1]["retry_count"], "1", "{case}");
    let asked: u64 = sent[0]["retry_after_ms"]
        .as_str()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("retry-after-ms: {case}"));
    let at = |i: usize| sent[i]["at_ms"].as_u64().unwrap_or(0);
    let waited = at(1).saturating_sub(at(0));
    assert!(waited + 1 >= asked, "waited {waited} ms of {asked}: {case}");

    // Nothing refused reached the model.
    let stats = gw.mock.stats();
    assert_eq!(stats.tenants.get("metered").map(|t| t.requests), Some(2));
    assert_eq!(stats.requests_total, 2, "{stats:?}");
    assert_eq!(envoy_requests(&gw.envoy), report.requests());
}
