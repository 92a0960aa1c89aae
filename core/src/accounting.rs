//! Token accounting, host-free: reserve before forwarding, settle on the answer
//! (SPEC sections 3 and 4).
//!
//! Before an OpenAI-compatible request is forwarded, `Accountant::on_request_body`
//! reads its body (`llm`) and takes `prompt estimate + max output` from the tenant's
//! token bucket. Where the bucket holds less and the tenant allows it
//! (`clamp_max_tokens`), it takes what is left and lowers `max_tokens` to match,
//! as long as that leaves `tokens.min_clamp_tokens` of answer; otherwise 429. A
//! stream is asked for its usage chunk when the client did not ask.
//!
//! When the request ends, however it ends, `settle` charges what was really used: the
//! answer's `usage`; where none came (an upstream error, a reset, a client that went
//! away mid-stream), the prompt estimate and one token per chunk of answer text seen.
//! Never less output than was delivered; nothing for a request that was never
//! forwarded. The bucket gets back the difference (or gives more: a debt). The fair
//! scheduler's cost is `input_cost × input + output_cost × output`, reconciled the
//! same way by the caller.

use crate::budget::{BudgetKind, Budgets, Taken};
use crate::config::{RateLimit, TenantPolicy, TokensConfig};
use crate::fleet::{FleetBooks, Source};
use crate::llm::{self, Endpoint, LlmRequest};
use crate::metrics::Decision;
use crate::response::{self, LocalReply};
use crate::store::{SharedStore, StoreError};
use crate::usage::Usage;

/// What a forwarded request reserved, and how to read its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserved {
    pub prompt_estimate: u64,
    /// The answer's cap after any clamping.
    pub max_output: u64,
    /// Tokens taken from the tenant's bucket (0 without a token budget).
    pub taken: u64,
    /// Where they were taken from (fleet mode: the lease, or an outage's share).
    pub source: Source,
    /// The `max_tokens` written in place of the client's, where clamped.
    pub clamped_to: Option<u64>,
    /// fairgate asked the stream for its usage chunk: strip it from the answer.
    pub strip_usage: bool,
    /// The model whose own token budget the request also took from, how much, and
    /// from where.
    pub model: Option<(String, u64, Source)>,
}

/// The bucket id of `tenant`'s budget for `model` (tenant ids have no `/`, so it is
/// no tenant's id).
pub fn model_bucket(tenant: &str, model: &str) -> String {
    format!("{tenant}/{model}")
}

/// What becomes of a request, once its body is read.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyVerdict {
    Forward {
        reserved: Reserved,
        /// The body to forward in place of the client's, where it changed.
        body: Option<Vec<u8>>,
        /// The token budget could not be consulted: the request is let through.
        store_error: Option<StoreError>,
        /// Shadow mode: what enforcing would have decided (`ShadowRateLimited`,
        /// `ShadowClamped`); the request goes on as it came.
        shadow: Option<Decision>,
    },
    Reject {
        reply: LocalReply,
        decision: Decision,
    },
}

/// What the answer showed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// The request reached the upstream (it was not answered by fairgate or left
    /// while queued).
    pub forwarded: bool,
    pub usage: Option<Usage>,
    /// Chunks of answer text delivered (streams).
    pub delivered_chunks: u64,
}

/// What a request was charged.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub charged: Usage,
    /// The fair-scheduler cost of `charged`.
    pub cost: f64,
    pub store_error: Option<StoreError>,
}

/// The tokens a request is charged: see the module documentation.
pub fn charged(reserved: &Reserved, observed: &Observed) -> Usage {
    if !observed.forwarded {
        return Usage::default();
    }
    match observed.usage {
        Some(u) => Usage {
            output: u.output.max(observed.delivered_chunks),
            ..u
        },
        None => Usage {
            input: reserved.prompt_estimate,
            output: observed.delivered_chunks,
            cached: 0,
        },
    }
}

/// One VM's token accounting.
#[derive(Debug)]
pub struct Accountant {
    config: TokensConfig,
    budgets: Budgets,
}

impl Accountant {
    pub fn new(config: TokensConfig, key_prefix: &str) -> Self {
        Self {
            config,
            budgets: Budgets::new(key_prefix),
        }
    }

    /// Only these token buckets get keys of their own (see `Budgets`).
    pub fn with_own_keys(mut self, ids: Vec<String>) -> Self {
        self.budgets = self.budgets.with_own_keys(ids);
        self
    }

    /// Token budgets spent from fleet leases (SPEC 9).
    pub fn with_fleet(mut self, books: Option<FleetBooks>) -> Self {
        self.budgets = self.budgets.with_fleet(books);
        self
    }

    pub fn config(&self) -> &TokensConfig {
        &self.config
    }

    /// Whether requests of a tenant with `policy` have their bodies read: with a
    /// `tokens` section, a token budget, or fair admission (whose cost is tokens).
    pub fn reads_bodies(&self, policy: &TenantPolicy, fair_admission: bool) -> bool {
        self.config.configured
            || policy.tokens.is_some()
            || !policy.models.is_empty()
            || fair_admission
    }

    /// The fair-scheduler cost charged when a request is admitted, before its body is
    /// read: a prompt of a quarter of its `content-length` (an overestimate: JSON
    /// syntax counts too) and an answer of `default_max_tokens`. Reconciled with
    /// the real tokens when the request ends.
    pub fn admission_estimate(&self, body_bytes: Option<u64>) -> f64 {
        let prompt = body_bytes.map_or(0, crate::llm::estimate_tokens);
        self.config.cost(prompt, self.config.default_max_tokens)
    }

    /// Reads the body of a request to `endpoint` and reserves its tokens.
    pub fn on_request_body(
        &self,
        tenant: &str,
        policy: &TenantPolicy,
        endpoint: Endpoint,
        body: &[u8],
        store: &dyn SharedStore,
        now_ms: u64,
    ) -> BodyVerdict {
        if body.len() > self.config.max_body_bytes {
            return BodyVerdict::Reject {
                reply: response::payload_too_large(self.config.max_body_bytes),
                decision: Decision::TooLarge,
            };
        }
        let (request, object) =
            match LlmRequest::parse(endpoint, body, self.config.default_max_tokens) {
                Ok(parsed) => parsed,
                Err(e) => {
                    return BodyVerdict::Reject {
                        reply: response::bad_request(e.param, &e.message),
                        decision: Decision::BadRequest,
                    }
                }
            };
        let mut reserved = Reserved {
            prompt_estimate: request.prompt_tokens,
            max_output: request.max_output,
            taken: 0,
            source: Source::Bucket,
            clamped_to: None,
            strip_usage: request.needs_usage_injected(),
            model: None,
        };
        let mut store_error = None;
        let mut shadow = None;
        let want = request.reservation();
        // Clamping only helps where there is an answer to shorten.
        let least = (policy.clamp_max_tokens && request.max_output > 0).then(|| {
            let least_output = self.config.min_clamp_tokens.min(request.max_output);
            request.prompt_tokens.saturating_add(least_output) as f64
        });
        // The tenant's bucket, then its model's: both must pass.
        let model = request
            .model
            .as_deref()
            .and_then(|m| policy.models.get_key_value(m));
        let buckets: Vec<(String, &RateLimit, Option<&str>)> = policy
            .tokens
            .as_ref()
            .map(|limit| (tenant.to_string(), limit, None))
            .into_iter()
            .chain(model.map(|(m, limit)| (model_bucket(tenant, m), limit, Some(m.as_str()))))
            .collect();
        // What the request may use: `want`, or less where a bucket clamped it.
        let mut asked = want;
        let mut took: Vec<(u64, Source)> = Vec::with_capacity(buckets.len());
        for (id, limit, model) in &buckets {
            let taken = self.budgets.take_up_to(
                store,
                BudgetKind::Tokens,
                id,
                limit,
                now_ms,
                asked as f64,
                least,
            );
            let refusal = match taken {
                Ok(Taken::Admitted { amount, source }) => {
                    let taken = amount as u64;
                    took.push((taken, source));
                    if taken < asked && policy.shadow {
                        // Not clamped: what it uses beyond what it took is a debt.
                        shadow.get_or_insert(Decision::ShadowClamped);
                    } else if taken < asked {
                        asked = taken;
                    }
                    continue;
                }
                // Shadow mode: served, as if refused: nothing taken, nothing charged.
                Ok(refused @ (Taken::Limited { .. } | Taken::Unavailable { .. }))
                    if policy.shadow =>
                {
                    took.push((0, Source::Bucket));
                    shadow = Some(match refused {
                        Taken::Unavailable { .. } => Decision::ShadowFleetUnavailable,
                        _ => Decision::ShadowRateLimited,
                    });
                    continue;
                }
                Ok(Taken::Limited {
                    retry_after_ms,
                    quota,
                }) => {
                    let too_large = asked as f64 > limit.burst && least.is_none();
                    let reply = match (model, too_large) {
                        (None, true) => response::too_many_tokens(asked, &quota),
                        (None, false) => {
                            response::rate_limited(BudgetKind::Tokens, retry_after_ms, &quota)
                        }
                        (Some(model), true) => {
                            response::too_many_model_tokens(model, asked, &quota)
                        }
                        (Some(model), false) => {
                            response::model_rate_limited(model, retry_after_ms, &quota)
                        }
                    };
                    (reply, Decision::RateLimited)
                }
                Ok(Taken::Unavailable { retry_after_ms }) => (
                    response::fleet_unavailable(retry_after_ms),
                    Decision::FleetUnavailable,
                ),
                Err(e) => {
                    took.push((0, Source::Bucket));
                    store_error = Some(e);
                    continue;
                }
            };
            // Refused: what the buckets before it took goes back.
            for ((id, limit, _), (taken, source)) in buckets.iter().zip(&took) {
                let _ = self.budgets.settle(
                    store,
                    BudgetKind::Tokens,
                    id,
                    limit,
                    now_ms,
                    *source,
                    *taken,
                    0,
                );
            }
            let (reply, decision) = refusal;
            return BodyVerdict::Reject { reply, decision };
        }
        // A later bucket clamped further: the earlier ones give back the difference.
        for ((id, limit, _), (taken, source)) in buckets.iter().zip(took.iter_mut()) {
            if *taken > asked {
                let back = *taken - asked;
                let _ = self.budgets.settle(
                    store,
                    BudgetKind::Tokens,
                    id,
                    limit,
                    now_ms,
                    *source,
                    back,
                    0,
                );
                *taken = asked;
            }
        }
        for ((_, _, model), (taken, source)) in buckets.iter().zip(&took) {
            match model {
                None => {
                    reserved.taken = *taken;
                    reserved.source = *source;
                }
                Some(m) => reserved.model = Some(((*m).to_string(), *taken, *source)),
            }
        }
        if asked < want {
            let output = asked.saturating_sub(request.prompt_tokens);
            reserved.max_output = output;
            reserved.clamped_to = Some(output);
        }
        let body = llm::rewrite(&request, object, reserved.clamped_to, reserved.strip_usage);
        BodyVerdict::Forward {
            reserved,
            body,
            store_error,
            shadow,
        }
    }

    /// Settles a request that reserved `reserved`, from what its answer showed.
    pub fn settle(
        &self,
        tenant: &str,
        policy: &TenantPolicy,
        reserved: &Reserved,
        observed: &Observed,
        store: &dyn SharedStore,
        now_ms: u64,
    ) -> Settled {
        let charged = charged(reserved, observed);
        let mut store_error = None;
        let used = charged.total();
        if let (Some(limit), true) = (&policy.tokens, reserved.taken > 0) {
            let (taken, source) = (reserved.taken, reserved.source);
            if let Err(e) = self.budgets.settle(
                store,
                BudgetKind::Tokens,
                tenant,
                limit,
                now_ms,
                source,
                taken,
                used,
            ) {
                store_error = Some(e);
            }
        }
        if let Some((model, taken, source)) = reserved.model.as_ref().filter(|(_, t, _)| *t > 0) {
            if let Some(limit) = policy.models.get(model) {
                let id = model_bucket(tenant, model);
                if let Err(e) = self.budgets.settle(
                    store,
                    BudgetKind::Tokens,
                    &id,
                    limit,
                    now_ms,
                    *source,
                    *taken,
                    used,
                ) {
                    store_error = Some(e);
                }
            }
        }
        Settled {
            charged,
            cost: self.config.cost(charged.input, charged.output),
            store_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RateLimit};
    use crate::store::MemoryStore;
    use crate::testkit::{config_json, weight_only};
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Tenant `acme` with `policy`, its own store, a clock standing at 0.
    struct Tenant {
        accountant: Accountant,
        store: MemoryStore,
        policy: TenantPolicy,
    }

    impl Tenant {
        fn new(policy: TenantPolicy) -> Self {
            let mut config = config_json();
            config["tokens"] = json!({"default_max_tokens": 100, "min_clamp_tokens": 10});
            let config = Config::from_json(config.to_string().as_bytes()).unwrap();
            Self {
                accountant: Accountant::new(config.tokens, "p:"),
                store: MemoryStore::new(),
                policy,
            }
        }

        /// A token budget of `burst`, refilling 1 a second.
        fn budgeted(burst: f64, clamp: bool) -> Self {
            Self::new(TenantPolicy {
                tokens: Some(RateLimit {
                    per_second: 1.0,
                    burst,
                }),
                clamp_max_tokens: clamp,
                shadow: false,
                models: Default::default(),
                ..weight_only(1.0)
            })
        }

        fn send(&self, endpoint: Endpoint, body: &[u8]) -> BodyVerdict {
            let (a, store) = (&self.accountant, &self.store);
            a.on_request_body("acme", &self.policy, endpoint, body, store, 0)
        }

        /// A chat request with a 10-token prompt.
        fn chat(&self, max_tokens: u64, stream: bool) -> BodyVerdict {
            let body = json!({"messages": [{"role": "user", "content": "x".repeat(40)}],
                              "max_tokens": max_tokens, "stream": stream});
            self.send(Endpoint::ChatCompletions, body.to_string().as_bytes())
        }

        fn settle(&self, reserved: &Reserved, observed: &Observed) -> Settled {
            let (a, store) = (&self.accountant, &self.store);
            a.settle("acme", &self.policy, reserved, observed, store, 0)
        }
    }

    fn forwarded(v: BodyVerdict) -> (Reserved, Option<Vec<u8>>) {
        match v {
            BodyVerdict::Forward {
                reserved,
                body,
                store_error: None,
                shadow: None,
            } => (reserved, body),
            other => panic!("expected forward, got {other:?}"),
        }
    }

    fn rejected(v: BodyVerdict) -> (LocalReply, Decision) {
        match v {
            BodyVerdict::Reject { reply, decision } => (reply, decision),
            other => panic!("expected reject, got {other:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_request_reserves_its_prompt_and_answer_and_settles_to_its_use() {
        let acme = Tenant::budgeted(1000.0, false);
        let (reserved, body) = forwarded(acme.chat(400, false));
        assert_eq!(
            (
                reserved.prompt_estimate,
                reserved.max_output,
                reserved.taken
            ),
            (10, 400, 410)
        );
        assert_eq!(body, None, "nothing to rewrite");
        let a = &acme.accountant;
        assert_eq!(a.admission_estimate(Some(4000)), 1000.0 + 2.0 * 100.0);
        let observed = Observed {
            forwarded: true,
            usage: Some(Usage {
                input: 12,
                output: 88,
                cached: 0,
            }),
            delivered_chunks: 0,
        };
        let settled = acme.settle(&reserved, &observed);
        assert_eq!(settled.charged.total(), 100);
        assert_eq!(settled.cost, 12.0 + 176.0);
        // 1000 - 100 left: 900 passes, 901 does not.
        let embed = |text: String| json!({ "input": text }).to_string();
        let v = acme.send(Endpoint::Embeddings, embed("y".repeat(3596)).as_bytes());
        assert_eq!(forwarded(v).0.taken, 899);
        let v = acme.send(Endpoint::Embeddings, embed("y".repeat(8)).as_bytes());
        let (reply, decision) = rejected(v);
        assert_eq!((reply.status, decision), (429, Decision::RateLimited));
        assert!(reply
            .headers
            .iter()
            .any(|(n, _)| *n == "x-ratelimit-remaining-tokens"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_clamped_request_gets_what_is_left() {
        let acme = Tenant::budgeted(300.0, true);
        let (r, _) = forwarded(acme.chat(200, false));
        assert_eq!((r.taken, r.clamped_to), (210, None));
        // 90 left: prompt 10 + 80 of answer.
        let (r, body) = forwarded(acme.chat(200, false));
        assert_eq!((r.taken, r.clamped_to, r.max_output), (90, Some(80), 80));
        let body: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert_eq!(body["max_tokens"], 80);
        // Nothing left: refused, with the retry time for the least useful answer.
        let (reply, _) = rejected(acme.chat(200, false));
        assert_eq!(reply.status, 429);
        assert!(reply.body.contains("rate limit reached for tokens"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_request_larger_than_the_burst_says_so() {
        let (reply, _) = rejected(Tenant::budgeted(100.0, false).chat(4000, false));
        assert_eq!(reply.status, 429);
        assert!(reply.body.contains("request too large"), "{}", reply.body);
        // With clamping it is served, shortened.
        let (r, _) = forwarded(Tenant::budgeted(100.0, true).chat(4000, false));
        assert_eq!(r.clamped_to, Some(90));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn streams_are_asked_for_usage_unless_the_client_asked() {
        let acme = Tenant::new(weight_only(1.0));
        let (r, body) = forwarded(acme.chat(5, true));
        assert!(r.strip_usage);
        let body: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert_eq!(body["stream_options"]["include_usage"], true);
        let asked = json!({"stream": true, "stream_options": {"include_usage": true}}).to_string();
        let (r, body) = forwarded(acme.send(Endpoint::ChatCompletions, asked.as_bytes()));
        assert!(!r.strip_usage && body.is_none());
        assert_eq!(r.taken, 0, "no token budget, nothing taken");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_and_oversized_bodies_are_refused() {
        let acme = Tenant::budgeted(1000.0, false);
        let (reply, d) = rejected(acme.send(Endpoint::Completions, b"{nope"));
        assert_eq!((reply.status, d), (400, Decision::BadRequest));
        let huge = vec![b' '; 1_000_001];
        let (reply, d) = rejected(acme.send(Endpoint::Completions, &huge));
        assert_eq!((reply.status, d), (413, Decision::TooLarge));
        // Nothing was taken by either.
        let (r, _) = forwarded(acme.chat(990, false));
        assert_eq!(r.taken, 1000);
    }

    /// `acme` with a tenant budget of `tenant` tokens (if any) and one of `model`
    /// tokens for model `m1`, refilling 1 a second; clamping as told.
    fn with_model_budget(tenant: Option<f64>, model: f64, clamp: bool) -> Tenant {
        let limit = |burst| RateLimit {
            per_second: 1.0,
            burst,
        };
        Tenant::new(TenantPolicy {
            tokens: tenant.map(limit),
            clamp_max_tokens: clamp,
            models: [("m1".to_string(), limit(model))].into(),
            ..weight_only(1.0)
        })
    }

    fn chat_to(t: &Tenant, model: &str, max_tokens: u64) -> BodyVerdict {
        let body = json!({"model": model, "max_tokens": max_tokens,
                          "messages": [{"role": "user", "content": "x".repeat(40)}]});
        t.send(Endpoint::ChatCompletions, body.to_string().as_bytes())
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_model_budget_holds_beside_the_tenants_and_says_it_refused() {
        let t = with_model_budget(Some(1000.0), 150.0, false);
        // 10 + 100 from both buckets.
        let (r, _) = forwarded(chat_to(&t, "m1", 100));
        assert_eq!(
            (r.taken, r.model.clone()),
            (110, Some(("m1".into(), 110, Source::Bucket)))
        );
        // The model's 40 left refuse the next; the tenant's bucket is given back.
        let (reply, decision) = rejected(chat_to(&t, "m1", 100));
        assert_eq!((reply.status, decision), (429, Decision::RateLimited));
        assert!(reply.body.contains("model m1"), "{}", reply.body);
        assert!(reply.body.contains("\"param\":\"model\""), "{}", reply.body);
        // Another model takes from the tenant's budget alone: 890 still there.
        let (r, _) = forwarded(chat_to(&t, "m2", 800));
        assert_eq!((r.taken, r.model), (810, None));
        // Settled for less: both buckets get the difference back.
        let first = Reserved {
            prompt_estimate: 10,
            max_output: 100,
            taken: 110,
            source: Source::Bucket,
            clamped_to: None,
            strip_usage: false,
            model: Some(("m1".into(), 110, Source::Bucket)),
        };
        let used = Observed {
            forwarded: true,
            usage: Some(Usage {
                input: 10,
                output: 20,
                cached: 0,
            }),
            delivered_chunks: 0,
        };
        t.settle(&first, &used);
        // The model bucket holds 40 + 80 = 120 now: 10 + 100 passes.
        forwarded(chat_to(&t, "m1", 100));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_model_budget_alone_is_enforced_and_clamps_where_allowed() {
        let t = with_model_budget(None, 150.0, true);
        let (r, _) = forwarded(chat_to(&t, "m1", 100));
        assert_eq!(
            (r.taken, r.model),
            (0, Some(("m1".into(), 110, Source::Bucket)))
        );
        // 40 left: clamped to a 30-token answer.
        let (r, _) = forwarded(chat_to(&t, "m1", 100));
        assert_eq!(
            (r.clamped_to, r.model),
            (Some(30), Some(("m1".into(), 40, Source::Bucket)))
        );
        // The tenant's bucket gives back what the model's clamp did not use.
        let t = with_model_budget(Some(1000.0), 150.0, true);
        forwarded(chat_to(&t, "m1", 100));
        let (r, _) = forwarded(chat_to(&t, "m1", 100));
        assert_eq!((r.taken, r.clamped_to), (40, Some(30)));
        let (r, _) = forwarded(chat_to(&t, "m2", 100));
        assert_eq!(r.taken, 110, "the tenant's bucket: 1000 - 110 - 40 left");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn what_is_charged_without_usage() {
        let reserved = Reserved {
            prompt_estimate: 10,
            max_output: 4000,
            taken: 4010,
            source: Source::Bucket,
            clamped_to: None,
            strip_usage: false,
            model: None,
        };
        let never = Observed::default();
        assert_eq!(
            charged(&reserved, &never),
            Usage::default(),
            "never forwarded"
        );
        let cut = Observed {
            forwarded: true,
            usage: None,
            delivered_chunks: 37,
        };
        assert_eq!(
            charged(&reserved, &cut),
            Usage {
                input: 10,
                output: 37,
                cached: 0
            }
        );
        let under = Observed {
            forwarded: true,
            usage: Some(Usage {
                input: 9,
                output: 20,
                cached: 3,
            }),
            delivered_chunks: 25,
        };
        assert_eq!(
            charged(&reserved, &under),
            Usage {
                input: 9,
                output: 25,
                cached: 3
            },
            "never less than was delivered"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_request_that_never_reached_the_upstream_is_refunded_in_full() {
        let acme = Tenant::budgeted(500.0, false);
        let (r, _) = forwarded(acme.chat(490, false));
        acme.settle(&r, &Observed::default());
        let (r, _) = forwarded(acme.chat(490, false));
        assert_eq!(r.taken, 500);
    }
}
