//! Property tests of the core's invariants, on random sequences of operations
//! (`proptest`: each property runs 256 random cases, and a failure is shrunk to its
//! smallest sequence and printed). Native only; CI runs them with the unit tests.
//!
//! - A bucket never hands out more than `rate × t + burst` over any window, whatever
//!   the interleaving of takes, clamped takes, refunds, debts and stale clocks.
//! - A pool never grants a slot beyond its capacity, grants each waiter at most once,
//!   and, once every request has ended however it ended, holds no slot and no waiter
//!   (nothing leaked, nothing negative), under random arrivals, aborts, timeouts and
//!   capacity changes; its encoding reads back as the same pool, and no byte string
//!   makes its decoder panic.
//! - The SSE scanner reads the same usage and passes the same bytes however a stream
//!   is cut into chunks.
//! - No input makes the config parser, a request-body parser or the token verifier
//!   panic.

// Test code: a broken fixture may panic.
#![allow(clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use fairgate_core::bucket::{give_back, take, take_up_to, BucketState, Take};
use fairgate_core::config::{Config, RateLimit, Scheduler, TenantPolicy};
use fairgate_core::fair_queue::{Admit, Limits, PoolState, Reservation, Ticket};
use fairgate_core::llm::{Endpoint, LlmRequest};
use fairgate_core::usage::{Pass, SseScanner};
use proptest::prelude::*;
use proptest::test_runner::Config as Runs;

/// Failures are printed, shrunk, not written to a file: a case worth keeping becomes a
/// named unit test.
fn runs() -> Runs {
    Runs {
        failure_persistence: None,
        ..Runs::default()
    }
}

// ---- buckets ----

#[derive(Debug, Clone)]
enum BucketOp {
    /// Time moves on by this many ms (then the operation runs).
    Take { after_ms: u64, cost: f64 },
    TakeUpTo {
        after_ms: u64,
        want: f64,
        least: f64,
    },
    /// Gives back a share (0..=1) of the last admitted take: a reservation settled
    /// for less than it reserved.
    Refund { after_ms: u64, share: f64 },
    /// An answer that cost this much more than its reservation: a debt.
    Debt { after_ms: u64, extra: f64 },
    /// Another worker's clock, a moment behind.
    Stale { behind_ms: u64, cost: f64 },
}

fn bucket_op() -> impl Strategy<Value = BucketOp> {
    prop_oneof![
        4 => (0u64..400, 0.1f64..12.0).prop_map(|(after_ms, cost)| BucketOp::Take { after_ms, cost }),
        2 => (0u64..400, 0.1f64..12.0, 0.0f64..1.0).prop_map(|(after_ms, want, f)| {
            BucketOp::TakeUpTo { after_ms, want, least: want * f }
        }),
        2 => (0u64..400, 0.0f64..1.0).prop_map(|(after_ms, share)| BucketOp::Refund { after_ms, share }),
        1 => (0u64..400, 0.0f64..6.0).prop_map(|(after_ms, extra)| BucketOp::Debt { after_ms, extra }),
        1 => (0u64..300, 0.1f64..12.0).prop_map(|(behind_ms, cost)| BucketOp::Stale { behind_ms, cost }),
    ]
}

proptest! {
    #![proptest_config(runs())]

    #[test]
    fn a_bucket_never_gives_more_than_rate_times_t_plus_burst_over_any_window(
        per_second in 0.5f64..50.0,
        burst in 1.0f64..20.0,
        ops in prop::collection::vec(bucket_op(), 1..120),
    ) {
        let limit = RateLimit { per_second, burst };
        let mut state: Option<BucketState> = None;
        let mut now = 1_000_000u64;
        // (time, tokens taken; a refund is negative)
        let mut events: Vec<(u64, f64)> = Vec::new();
        let mut last_taken = 0.0f64;
        for op in ops {
            match op {
                BucketOp::Take { after_ms, cost } => {
                    now += after_ms;
                    if let Take::Admitted { state: s, .. } = take(&limit, state, now, cost) {
                        state = Some(s);
                        events.push((now, cost));
                        last_taken = cost;
                    }
                }
                BucketOp::TakeUpTo { after_ms, want, least } => {
                    now += after_ms;
                    let (t, taken) = take_up_to(&limit, state, now, want, least);
                    if let Take::Admitted { state: s, .. } = t {
                        prop_assert!(taken >= least.min(want) - 1e-6 && taken <= want + 1e-9);
                        state = Some(s);
                        events.push((now, taken));
                        last_taken = taken;
                    }
                }
                BucketOp::Refund { after_ms, share } => {
                    now += after_ms;
                    let amount = last_taken * share;
                    state = Some(give_back(&limit, state, now, amount));
                    events.push((now, -amount));
                    last_taken -= amount;
                }
                BucketOp::Debt { after_ms, extra } => {
                    // Allowed beyond the bound (SPEC 9: "plus at most what answers
                    // used beyond their reservation"); later takes repay it.
                    now += after_ms;
                    state = Some(give_back(&limit, state, now, -extra));
                }
                BucketOp::Stale { behind_ms, cost } => {
                    // Another worker's reading of the same moment, a little older: the
                    // bound holds on the readings the bucket is given (a reading older
                    // than the state's refills nothing).
                    let then = now.saturating_sub(behind_ms);
                    let at = state.map_or(then, |s| s.updated_ms.max(then));
                    if let Take::Admitted { state: s, .. } = take(&limit, state, then, cost) {
                        state = Some(s);
                        events.push((at, cost));
                        last_taken = cost;
                    }
                }
            }
            if let Some(s) = state {
                prop_assert!(s.tokens <= burst + 1e-9, "over the burst: {}", s.tokens);
            }
        }
        // Every window [i, j]: what admissions took within rate × t + burst, plus
        // what was given back within it (a refund can be taken again).
        for i in 0..events.len() {
            let mut out = 0.0;
            let mut refunded = 0.0;
            for &(t, n) in &events[i..] {
                if n >= 0.0 { out += n } else { refunded -= n }
                let window_s = t.saturating_sub(events[i].0) as f64 / 1000.0;
                let bound = per_second * window_s + burst + refunded;
                prop_assert!(
                    out <= bound + 1e-6,
                    "{out} out over {window_s} s, bound {bound}"
                );
            }
        }
    }
}

// ---- pools ----

fn tenants() -> Config {
    let json = r#"{
        "identity": {"header": "x-tenant-id"},
        "tenants": {
            "a": {"weight": 1},
            "b": {"weight": 2, "max_concurrency": 2},
            "c": {"weight": 4, "min_concurrency": 1},
            "s": {"weight": 1, "priority": -1}
        },
        "pool": {"max_concurrency": 4}
    }"#;
    match Config::from_json(json.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("test config: {e}"),
    }
}

#[derive(Debug, Clone)]
enum PoolOp {
    Arrive {
        tenant: usize,
        vm: u32,
        cost: f64,
    },
    /// The i-th (modulo) admitted request ends, having cost `extra` more or less.
    Finish {
        pick: usize,
        extra: f64,
    },
    /// The i-th (modulo) waiting request's client goes away.
    Abort {
        pick: usize,
    },
    /// Time passes and a worker ticks (timeouts).
    Tick {
        after_ms: u64,
        vm: u32,
    },
    Capacity {
        capacity: u32,
    },
    /// How long a sheddable request may wait for a slot (fleet mode).
    SheddableWait {
        wait_ms: Option<u64>,
    },
}

const TENANTS: [&str; 4] = ["a", "b", "c", "s"];

fn pool_op() -> impl Strategy<Value = PoolOp> {
    prop_oneof![
        5 => (0usize..4, 0u32..3, 1.0f64..50.0).prop_map(|(tenant, vm, cost)| PoolOp::Arrive { tenant, vm, cost }),
        4 => (any::<usize>(), -20.0f64..40.0).prop_map(|(pick, extra)| PoolOp::Finish { pick, extra }),
        1 => any::<usize>().prop_map(|pick| PoolOp::Abort { pick }),
        1 => (0u64..3_000, 0u32..3).prop_map(|(after_ms, vm)| PoolOp::Tick { after_ms, vm }),
        1 => (1u32..6).prop_map(|capacity| PoolOp::Capacity { capacity }),
        1 => prop::option::of(prop_oneof![Just(0u64), 1u64..2_500])
            .prop_map(|wait_ms| PoolOp::SheddableWait { wait_ms }),
    ]
}

struct Model {
    /// (vm, context) -> tenant, holding a slot.
    admitted: BTreeMap<(u32, u32), usize>,
    /// (vm, context) -> tenant, waiting.
    waiting: BTreeMap<(u32, u32), usize>,
}

impl Model {
    /// Waiters the pool granted: each must have been waiting, and moves to admitted.
    fn granted(
        &mut self,
        woken: &[fairgate_core::fair_queue::Waiter],
    ) -> Result<(), TestCaseError> {
        for w in woken {
            let key = (w.ticket.vm, w.ticket.context);
            let Some(tenant) = self.waiting.remove(&key) else {
                return Err(TestCaseError::fail(format!(
                    "{key:?} granted but not waiting"
                )));
            };
            self.admitted.insert(key, tenant);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(runs())]

    #[test]
    fn a_pool_keeps_its_capacity_grants_each_waiter_once_and_leaks_nothing(
        ops in prop::collection::vec(pool_op(), 1..150),
    ) {
        let config = tenants();
        let policies: Vec<TenantPolicy> = TENANTS
            .iter()
            .map(|t| (*config.tenants.by_name[*t]).clone())
            .collect();
        let reserved: Vec<Reservation> =
            fairgate_core::fair_queue::reservations(&config.tenants, "shared", true);
        let mut limits = Limits {
            capacity: 4,
            max_queue_per_tenant: 6,
            queue_timeout_ms: 2_000,
            lease_ms: u64::MAX,
            reserved: &reserved,
            scheduler: Scheduler::Fair,
            sheddable_wait_ms: None,
        };
        let mut pool = PoolState::default();
        let mut model = Model { admitted: BTreeMap::new(), waiting: BTreeMap::new() };
        let mut now = 0u64;
        let mut next_context = 0u32;
        for op in ops {
            let in_use_before = pool.in_use();
            match op {
                PoolOp::Arrive { tenant, vm, cost } => {
                    next_context += 1;
                    let ticket = Ticket { vm, context: next_context, enqueued_at_ms: now, cost };
                    let admission = pool.try_admit(TENANTS[tenant], &policies[tenant], ticket, &limits);
                    model.granted(&admission.woken)?;
                    match admission.admit {
                        Admit::Admitted => {
                            model.admitted.insert((vm, next_context), tenant);
                        }
                        Admit::Queued => {
                            model.waiting.insert((vm, next_context), tenant);
                        }
                        Admit::Shed | Admit::QueueFull => {}
                    }
                    // A grant never takes the pool past its capacity.
                    if pool.in_use() > in_use_before {
                        prop_assert!(pool.in_use() <= limits.capacity,
                            "{} in use, capacity {}", pool.in_use(), limits.capacity);
                    }
                }
                PoolOp::Finish { pick, extra } => {
                    let keys: Vec<_> = model.admitted.keys().copied().collect();
                    if keys.is_empty() { continue; }
                    let key = keys[pick % keys.len()];
                    let tenant = model.admitted.remove(&key).unwrap_or(0);
                    now += 1;
                    let released = pool.release(TENANTS[tenant], key.0, extra, &limits, now);
                    prop_assert!(released.held, "{key:?} held no slot");
                    model.granted(&released.woken)?;
                    prop_assert!(pool.in_use() <= limits.capacity.max(in_use_before));
                }
                PoolOp::Abort { pick } => {
                    let keys: Vec<_> = model.waiting.keys().copied().collect();
                    if keys.is_empty() { continue; }
                    let key = keys[pick % keys.len()];
                    prop_assert!(pool.cancel(key.0, key.1).is_some(), "{key:?} not queued");
                    model.waiting.remove(&key);
                }
                PoolOp::Tick { after_ms, vm } => {
                    now += after_ms;
                    let tick = pool.tick(vm, &limits, now);
                    for w in tick.expired.iter().chain(&tick.shed) {
                        let key = (w.ticket.vm, w.ticket.context);
                        prop_assert_eq!(key.0, vm, "another worker's waiter expired");
                        prop_assert!(model.waiting.remove(&key).is_some(), "{:?} expired twice", key);
                    }
                    for w in &tick.shed {
                        prop_assert_eq!(w.tenant.as_str(), "s", "a tenant not sheddable was shed");
                    }
                    model.granted(&tick.reclaimed.woken)?;
                    prop_assert!(tick.reclaimed.vms.is_empty(), "a live worker was reclaimed");
                }
                PoolOp::SheddableWait { wait_ms } => {
                    // Fleet mode's spare slots come and go.
                    limits.sheddable_wait_ms = wait_ms;
                }
                PoolOp::Capacity { capacity } => {
                    limits.capacity = capacity;
                    // A larger capacity is filled on the next operation; a tick does it.
                    let tick = pool.tick(0, &limits, now);
                    for w in tick.expired.iter().chain(&tick.shed) {
                        model.waiting.remove(&(w.ticket.vm, w.ticket.context));
                    }
                    model.granted(&tick.reclaimed.woken)?;
                    if pool.in_use() > in_use_before {
                        prop_assert!(pool.in_use() <= limits.capacity);
                    }
                }
            }
            prop_assert_eq!(pool.in_use() as usize, model.admitted.len());
            prop_assert_eq!(pool.waiting(), model.waiting.len());
            // The encoding reads back as the same pool.
            let decoded = PoolState::decode(&pool.encode());
            prop_assert_eq!(decoded.as_ref(), Ok(&pool));
        }
        // Every request ends: the waiters go away, the admitted finish (each release
        // may grant a waiter still there, which then finishes too).
        let waiting: Vec<_> = model.waiting.keys().copied().collect();
        for key in waiting {
            prop_assert!(pool.cancel(key.0, key.1).is_some());
            model.waiting.remove(&key);
        }
        while let Some((&key, &tenant)) = model.admitted.iter().next() {
            model.admitted.remove(&key);
            now += 1;
            let released = pool.release(TENANTS[tenant], key.0, 0.0, &limits, now);
            prop_assert!(released.held);
            prop_assert!(released.woken.is_empty(), "a waiter was left to grant");
        }
        prop_assert_eq!(pool.in_use(), 0);
        prop_assert_eq!(pool.waiting(), 0);
        for t in TENANTS {
            prop_assert_eq!(pool.in_flight(t), 0);
            prop_assert_eq!(pool.queued(t), 0);
        }
    }

    #[test]
    fn no_bytes_make_the_pool_decoder_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = PoolState::decode(&bytes);
    }
}

// ---- streams ----

/// An OpenAI-style stream: `n` content chunks, a usage-only chunk, `[DONE]`.
fn stream(n: usize, prompt: u64, completion: u64) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "data: {{\"id\":\"x\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
        ));
    }
    s.push_str(&format!(
        "data: {{\"id\":\"x\",\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}}}}}\n\n",
        prompt + completion
    ));
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

/// Feeds `bytes` cut at `cuts`; returns what went on and the scanner.
fn scan(bytes: &[u8], cuts: &BTreeSet<usize>, strip: bool) -> (Vec<u8>, SseScanner) {
    let mut scanner = SseScanner::new(strip);
    let mut out = Vec::new();
    let mut start = 0;
    let ends: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < bytes.len())
        .chain([bytes.len()])
        .collect();
    for end in ends {
        let chunk = &bytes[start..end];
        match scanner.feed(chunk, end == bytes.len()) {
            Pass::Unchanged => out.extend_from_slice(chunk),
            Pass::Replace(b) => out.extend_from_slice(&b),
        }
        start = end;
    }
    (out, scanner)
}

proptest! {
    #![proptest_config(runs())]

    #[test]
    fn a_stream_reads_the_same_however_it_is_cut(
        n in 0usize..12,
        prompt in 0u64..5_000,
        completion in 0u64..5_000,
        cuts in prop::collection::btree_set(0usize..2_000, 0..40),
        strip in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let mut bytes = stream(n, prompt, completion);
        if crlf {
            bytes = String::from_utf8_lossy(&bytes).replace('\n', "\r\n").into_bytes();
        }
        let whole = scan(&bytes, &BTreeSet::new(), strip);
        let cut = scan(&bytes, &cuts, strip);
        prop_assert_eq!(&cut.0, &whole.0);
        let usage = cut.1.usage.map(|u| u.total());
        prop_assert_eq!(usage, Some(prompt + completion));
        prop_assert_eq!(cut.1.content_chunks, n as u64);
        prop_assert!(cut.1.done);
        if !strip {
            prop_assert_eq!(&cut.0, &bytes);
        }
    }

    #[test]
    fn no_bytes_make_the_stream_scanner_panic(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..20),
        strip in any::<bool>(),
    ) {
        let mut scanner = SseScanner::new(strip);
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate() {
            let _ = scanner.feed(chunk, i == last);
        }
    }
}

// ---- untrusted input ----

/// JSON-ish text: valid JSON values, with characters sprinkled in.
fn jsonish() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "[a-z_\\.\\[\\]]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    let value = leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("tenants".to_string()),
                        Just("identity".to_string()),
                        Just("pool".to_string()),
                        Just("routing".to_string()),
                        Just("tokens".to_string()),
                        Just("sidecar".to_string()),
                        Just("messages".to_string()),
                        Just("max_tokens".to_string()),
                        Just("stream".to_string()),
                        Just("input".to_string()),
                        "[a-z_]{1,10}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| {
                let fields: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    });
    (value, prop::collection::vec(any::<char>(), 0..3)).prop_map(|(v, noise)| {
        let mut s = v;
        for (i, c) in noise.into_iter().enumerate() {
            let at = (i * 7919) % (s.len() + 1);
            if s.is_char_boundary(at) {
                s.insert(at, c);
            }
        }
        s
    })
}

proptest! {
    #![proptest_config(runs())]

    #[test]
    fn no_input_makes_the_config_parser_panic(text in jsonish()) {
        let _ = Config::from_json(text.as_bytes());
    }

    #[test]
    fn no_input_makes_a_request_body_parser_panic(text in jsonish(), endpoint in 0usize..4) {
        let endpoint = [
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::Embeddings,
            Endpoint::Responses,
        ][endpoint];
        let _ = LlmRequest::parse(endpoint, text.as_bytes(), 64);
    }

    #[test]
    fn no_token_makes_the_verifier_panic(
        header in "[A-Za-z0-9_\\-]{0,60}",
        payload in "[A-Za-z0-9_\\-]{0,120}",
        signature in "[A-Za-z0-9_\\-\\.]{0,90}",
        dots in 0usize..4,
    ) {
        use fairgate_core::jwt::{Expectations, KeySet, VerifyingKey};
        let key = match VerifyingKey::hmac("HS256", b"0123456789abcdef0123456789abcdef") {
            Ok(k) => k,
            Err(e) => panic!("key: {e}"),
        };
        let keys = KeySet::new(vec![(Some("hs-1".to_string()), key)]);
        let token = match dots {
            0 => format!("{header}{payload}{signature}"),
            1 => format!("{header}.{payload}{signature}"),
            2 => format!("{header}.{payload}.{signature}"),
            _ => format!("{header}.{payload}.{signature}.{header}"),
        };
        let expect = Expectations {
            issuer: Some("https://auth.example.com".to_string()),
            audiences: Some(vec!["llm-gateway".to_string()]),
            claim: "tenant".to_string(),
            leeway_s: 30,
            require_exp: true,
            max_token_bytes: 8192,
            policy_claim: Some("fairgate".to_string()),
        };
        let _ = keys.verify(&token, &expect, 1_700_000_000);
    }
}
