//! One token-accounted request, from its headers to its end, host-free: what a host's
//! callbacks decide about the request's body, its answer and its settlement. The host
//! owns the bytes and the calls (reading a buffer, rewriting it, pausing); a `Flow`
//! owns the decisions, so that each host only carries them out.
//!
//! - Request body: buffered until complete, refused (413) as soon as it grows past
//!   `tokens.max_body_bytes`; once complete, the `Accountant` reserves its tokens or
//!   refuses it, and says whether the body is rewritten. A request whose headers
//!   waited for its body (`admit_after_body`) is admitted next, at the cost of its
//!   reservation.
//! - Answer: a stream (`text/event-stream`) is scanned chunk by chunk for its usage
//!   (the usage chunk fairgate asked for taken back out); a JSON answer is gathered,
//!   up to `MAX_JSON_ANSWER` bytes, and parsed at its end.
//! - End: what the answer showed is charged (`Accountant::settle`), with the amounts
//!   each host counts in its metrics.

use std::rc::Rc;

use crate::accounting::{Accountant, BodyVerdict, Observed, Reserved};
use crate::config::TenantPolicy;
use crate::llm::Endpoint;
use crate::metrics::{Decision, TokenKind};
use crate::response::{self, LocalReply};
use crate::store::{SharedStore, StoreError};
use crate::usage::{Pass, SseScanner, Usage};

/// The largest JSON answer read for its usage; a larger one is charged by estimate.
pub const MAX_JSON_ANSWER: usize = 4 << 20;

/// The response header that says `max_tokens` was lowered (clamped) and to what.
pub const CLAMPED_HEADER: &str = "x-fairgate-max-tokens";

/// A request on the token-accounting path.
#[derive(Debug)]
pub struct Flow {
    pub tenant: Rc<str>,
    /// The tenant's metrics label (the default policy's name for unlisted tenants).
    pub label: Rc<str>,
    pub policy: TenantPolicy,
    endpoint: Endpoint,
    /// `tokens.max_body_bytes`.
    max_bytes: usize,
    /// The decision counted once it is admitted.
    pub decision: Decision,
    /// The pool (cluster) it was routed to at its headers.
    pub pool: Rc<str>,
    /// Admitted once its tokens are reserved, not at its headers.
    pub admit_after_body: bool,
    /// Set once the body is read and the tokens reserved.
    reserved: Option<Reserved>,
    /// fairgate answered it (a refusal at its body or at admission).
    answered_locally: bool,
    answer: Answer,
}

/// How the answer is read for its usage.
#[derive(Debug)]
enum Answer {
    /// Not read (not yet, or no body, or given up on).
    Unread,
    /// A JSON answer, gathered up to `MAX_JSON_ANSWER` bytes; parsed at its end.
    Json(Vec<u8>),
    Stream(SseScanner),
    /// The JSON answer's usage, once parsed.
    Done(Option<Usage>),
}

/// What a chunk of the request body calls for.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyChunk {
    /// Keep it buffered with the rest: the body is not complete.
    Buffer,
    /// The body is complete: read it (`Flow::on_body`).
    Complete,
    /// The body grew past `tokens.max_body_bytes`: answer this (413).
    TooLarge(LocalReply),
}

/// What a complete request body calls for.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyDone {
    Refuse {
        reply: LocalReply,
        decision: Decision,
    },
    Forward {
        /// The body to send instead of the client's, where it changed.
        rewritten: Option<Vec<u8>>,
        /// The token budget could not be consulted: the request is let through.
        store_error: Option<StoreError>,
        /// The fair-scheduler cost of its reservation.
        cost: f64,
        /// Admit it now (its headers waited for its body); else it was admitted at
        /// its headers and `cost` re-estimates it.
        admit: bool,
    },
}

/// What to change on the answer's headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerEdits {
    /// Add `CLAMPED_HEADER` with this value.
    pub clamped_to: Option<u64>,
    /// Remove `content-length`: the stream loses a chunk on its way.
    pub drop_content_length: bool,
}

/// What a settled request was charged: the amounts its host counts
/// (`fg_tokens`, `fg_tokens_reserved`, `fg_prompt_estimate_error_pct`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// The fair-scheduler cost of what it used.
    pub cost: f64,
    pub store_error: Option<StoreError>,
    /// Tokens charged, by kind; kinds of none left out.
    pub charged: Vec<(TokenKind, u64)>,
    /// What it reserved (prompt estimate + answer cap), where it reached the upstream.
    pub reserved: Option<u64>,
    /// The prompt estimate's error against the real prompt tokens, in percent.
    pub estimate_error_pct: Option<u64>,
}

impl Flow {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant: Rc<str>,
        label: Rc<str>,
        policy: TenantPolicy,
        endpoint: Endpoint,
        max_bytes: usize,
        decision: Decision,
        pool: Rc<str>,
        admit_after_body: bool,
    ) -> Self {
        Self {
            tenant,
            label,
            policy,
            endpoint,
            max_bytes,
            decision,
            pool,
            admit_after_body,
            reserved: None,
            answered_locally: false,
            answer: Answer::Unread,
        }
    }

    /// Whether its body is still to be read (not reserved, not answered).
    pub fn reading_body(&self) -> bool {
        self.reserved.is_none() && !self.answered_locally
    }

    /// Whether its tokens are reserved (its answer, if any, is read).
    pub fn is_reserved(&self) -> bool {
        self.reserved.is_some()
    }

    /// fairgate answered the request itself (at admission): it never reached the
    /// upstream.
    pub fn answered_locally(&mut self) {
        self.answered_locally = true;
    }

    /// A chunk arrived; `buffered` bytes of body so far.
    pub fn on_body_chunk(&mut self, buffered: usize, end_of_stream: bool) -> BodyChunk {
        if buffered > self.max_bytes {
            self.answered_locally = true;
            return BodyChunk::TooLarge(response::payload_too_large(self.max_bytes));
        }
        match end_of_stream {
            true => BodyChunk::Complete,
            false => BodyChunk::Buffer,
        }
    }

    /// The body is complete: reserve its tokens, or refuse it.
    pub fn on_body(
        &mut self,
        accountant: &Accountant,
        body: &[u8],
        store: &dyn SharedStore,
        now_ms: u64,
    ) -> BodyDone {
        let verdict = accountant.on_request_body(
            &self.tenant,
            &self.policy,
            self.endpoint,
            body,
            store,
            now_ms,
        );
        match verdict {
            BodyVerdict::Reject { reply, decision } => {
                self.answered_locally = true;
                BodyDone::Refuse { reply, decision }
            }
            BodyVerdict::Forward {
                reserved,
                body,
                store_error,
                shadow,
            } => {
                if let Some(shadow) = shadow {
                    self.decision = self.decision.then_shadow(shadow);
                }
                let cost = accountant
                    .config()
                    .cost(reserved.prompt_estimate, reserved.max_output);
                self.reserved = Some(reserved);
                BodyDone::Forward {
                    rewritten: body,
                    store_error,
                    cost,
                    admit: self.admit_after_body,
                }
            }
        }
    }

    /// The answer's headers (`content_type` its `content-type`): how to read it, and
    /// what to change on them.
    pub fn on_response_headers(&mut self, content_type: &[u8], end_of_stream: bool) -> AnswerEdits {
        let Some(reserved) = &self.reserved else {
            return AnswerEdits::default();
        };
        let mut edits = AnswerEdits {
            clamped_to: reserved.clamped_to,
            drop_content_length: false,
        };
        if end_of_stream {
            return edits;
        }
        if content_type.starts_with(b"text/event-stream") {
            edits.drop_content_length = reserved.strip_usage;
            self.answer = Answer::Stream(SseScanner::new(reserved.strip_usage));
        } else {
            self.answer = Answer::Json(Vec::new());
        }
        edits
    }

    /// Whether the answer's chunks are read (the host need not fetch them otherwise).
    pub fn reads_answer(&self) -> bool {
        matches!(self.answer, Answer::Json(_) | Answer::Stream(_))
    }

    /// A chunk of the answer: returns the bytes to send instead, where they change.
    pub fn on_response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        match &mut self.answer {
            Answer::Stream(scanner) => match scanner.feed(chunk, end_of_stream) {
                Pass::Replace(bytes) => Some(bytes),
                Pass::Unchanged => None,
            },
            Answer::Json(gathered) => {
                if gathered.len() + chunk.len() > MAX_JSON_ANSWER {
                    self.answer = Answer::Done(None);
                    return None;
                }
                gathered.extend_from_slice(chunk);
                if end_of_stream {
                    self.answer = Answer::Done(Usage::from_json_body(gathered));
                }
                None
            }
            Answer::Unread | Answer::Done(_) => None,
        }
    }

    /// The request ended, however. `holds_slot`: whether it held a pool slot
    /// (`Some(false)`: it was still waiting for one), `None` outside any pool.
    /// Charges what it used; None when it reserved nothing.
    pub fn settle(
        self,
        accountant: &Accountant,
        holds_slot: Option<bool>,
        store: &dyn SharedStore,
        now_ms: u64,
    ) -> Option<Settlement> {
        let reserved = self.reserved?;
        let (usage, delivered_chunks) = match self.answer {
            Answer::Stream(s) => (s.usage, s.content_chunks),
            Answer::Done(usage) => (usage, 0),
            Answer::Unread | Answer::Json(_) => (None, 0),
        };
        let observed = Observed {
            forwarded: !self.answered_locally && holds_slot != Some(false),
            usage,
            delivered_chunks,
        };
        let settled = accountant.settle(
            &self.tenant,
            &self.policy,
            &reserved,
            &observed,
            store,
            now_ms,
        );
        let c = settled.charged;
        let charged = [
            (TokenKind::Input, c.input),
            (TokenKind::Output, c.output),
            (TokenKind::Cached, c.cached),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        Some(Settlement {
            cost: settled.cost,
            store_error: settled.store_error,
            charged,
            reserved: observed
                .forwarded
                .then_some(reserved.prompt_estimate + reserved.max_output),
            estimate_error_pct: usage
                .filter(|u| u.input > 0)
                .map(|u| reserved.prompt_estimate.abs_diff(u.input) * 100 / u.input),
        })
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

    fn accountant() -> Accountant {
        let mut config = config_json();
        config["tokens"] = json!({"default_max_tokens": 100, "max_body_bytes": 2048});
        let config = Config::from_json(config.to_string().as_bytes()).unwrap();
        Accountant::new(config.tokens, "p:")
    }

    fn flow(admit_after_body: bool) -> Flow {
        let policy = TenantPolicy {
            tokens: Some(RateLimit {
                per_second: 1.0,
                burst: 1000.0,
            }),
            ..weight_only(1.0)
        };
        Flow::new(
            "acme".into(),
            "acme".into(),
            policy,
            Endpoint::ChatCompletions,
            2048,
            Decision::Admitted,
            crate::fair_queue::SHARED_POOL.into(),
            admit_after_body,
        )
    }

    /// A chat request with a 10-token prompt.
    fn chat(max_tokens: u64, stream: bool) -> Vec<u8> {
        json!({"messages": [{"role": "user", "content": "x".repeat(40)}],
               "max_tokens": max_tokens, "stream": stream})
        .to_string()
        .into_bytes()
    }

    fn forward(done: BodyDone) -> (Option<Vec<u8>>, f64, bool) {
        match done {
            BodyDone::Forward {
                rewritten,
                store_error: None,
                cost,
                admit,
            } => (rewritten, cost, admit),
            other => panic!("expected forward, got {other:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_body_is_buffered_until_complete_and_refused_as_soon_as_it_grows_too_large() {
        let mut f = flow(true);
        assert_eq!(f.on_body_chunk(600, false), BodyChunk::Buffer);
        assert_eq!(f.on_body_chunk(2048, true), BodyChunk::Complete);
        match f.on_body_chunk(2049, false) {
            BodyChunk::TooLarge(reply) => assert_eq!(reply.status, 413),
            other => panic!("expected 413, got {other:?}"),
        }
        assert!(!f.reading_body());
        let a = accountant();
        assert_eq!(
            f.settle(&a, None, &MemoryStore::new(), 0),
            None,
            "nothing reserved"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_held_request_is_admitted_at_the_cost_of_its_reservation() {
        let (a, store) = (accountant(), MemoryStore::new());
        let mut held = flow(true);
        let (rewritten, cost, admit) = forward(held.on_body(&a, &chat(50, false), &store, 0));
        assert_eq!((rewritten, admit), (None, true));
        assert_eq!(cost, a.config().cost(10, 50));
        assert!(!held.reading_body());
        let mut forwarded = flow(false);
        let (_, _, admit) = forward(forwarded.on_body(&a, &chat(50, false), &store, 0));
        assert!(!admit, "admitted at its headers: re-estimated only");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_bad_body_is_refused_and_charged_nothing() {
        let (a, store) = (accountant(), MemoryStore::new());
        let mut f = flow(true);
        match f.on_body(&a, b"{not json", &store, 0) {
            BodyDone::Refuse { reply, decision } => {
                assert_eq!((reply.status, decision), (400, Decision::BadRequest));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(f.settle(&a, None, &store, 0), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_json_answer_is_settled_to_its_usage_and_counted() {
        let (a, store) = (accountant(), MemoryStore::new());
        let mut f = flow(true);
        forward(f.on_body(&a, &chat(50, false), &store, 0));
        let edits = f.on_response_headers(b"application/json", false);
        assert_eq!(edits, AnswerEdits::default());
        assert!(f.reads_answer());
        let answer = br#"{"usage": {"prompt_tokens": 12, "completion_tokens": 30}}"#;
        let (first, rest) = answer.split_at(20);
        assert_eq!(f.on_response_chunk(first, false), None);
        assert_eq!(f.on_response_chunk(rest, true), None);
        let s = f.settle(&a, Some(true), &store, 0).unwrap();
        assert_eq!(s.cost, a.config().cost(12, 30));
        assert_eq!(s.charged, [(TokenKind::Input, 12), (TokenKind::Output, 30)]);
        assert_eq!((s.reserved, s.estimate_error_pct), (Some(60), Some(16)));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_stream_that_did_not_ask_for_usage_loses_its_length_and_its_usage_chunk() {
        let (a, store) = (accountant(), MemoryStore::new());
        let mut f = flow(true);
        let (rewritten, _, _) = forward(f.on_body(&a, &chat(50, true), &store, 0));
        assert!(rewritten.is_some(), "asked for its usage");
        let edits = f.on_response_headers(b"text/event-stream", false);
        assert!(edits.drop_content_length);
        let text = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";
        assert_eq!(f.on_response_chunk(text, false), None);
        let usage = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        assert_eq!(
            f.on_response_chunk(usage, true),
            Some(b"data: [DONE]\n\n".to_vec()),
            "the usage chunk is taken back out"
        );
        let s = f.settle(&a, Some(true), &store, 0).unwrap();
        assert_eq!(s.cost, a.config().cost(10, 1));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_request_still_waiting_for_a_slot_at_its_end_is_charged_nothing() {
        let (a, store) = (accountant(), MemoryStore::new());
        let mut f = flow(true);
        forward(f.on_body(&a, &chat(50, false), &store, 0));
        let s = f.settle(&a, Some(false), &store, 0).unwrap();
        assert_eq!(
            (s.cost, s.charged.as_slice(), s.reserved),
            (0.0, &[][..], None)
        );
    }
}
