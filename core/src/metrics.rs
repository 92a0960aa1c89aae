//! Metric names. Envoy has no labels for wasm metrics; the labels are encoded in the
//! name as `.<label>.<value>` pairs and lifted out by the bootstrap `stats_tags`
//! shipped in `envoy/` (regexes in `STATS_TAGS` below), so that
//! `wasmcustom.fg_requests.tenant.acme.decision.admitted` is exported to Prometheus
//! as `fg_requests{tenant="acme",decision="admitted"}`.

/// What the filter decided for a request (the `decision` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Admitted,
    Unauthenticated,
    UnknownTenant,
    RateLimited,
    /// A budget could not be read or written (shared data failure); admitted.
    BudgetError,
    /// Sheddable (negative priority) while the pool is saturated: 503.
    Shed,
    /// The tenant's queue is full: 429.
    QueueFull,
    /// Waited `pool.queue_timeout_ms` without a slot: 503.
    QueueTimeout,
    /// The body is over `tokens.max_body_bytes`: 413.
    TooLarge,
    /// An OpenAI-compatible body that cannot be read: 400.
    BadRequest,
    /// Fleet mode, `outage: closed`: the fleet's budget cannot be reached: 503.
    FleetUnavailable,
    /// Shadow mode (SPEC 12): what would have been decided, counted, not enforced.
    ShadowRateLimited,
    /// It would have waited for a slot.
    ShadowQueued,
    ShadowShed,
    ShadowQueueFull,
    /// Its `max_tokens` would have been lowered.
    ShadowClamped,
    ShadowFleetUnavailable,
}

impl Decision {
    /// Every decision, in the order of `index`.
    pub const ALL: [Decision; 17] = [
        Self::Admitted,
        Self::Unauthenticated,
        Self::UnknownTenant,
        Self::RateLimited,
        Self::BudgetError,
        Self::Shed,
        Self::QueueFull,
        Self::QueueTimeout,
        Self::TooLarge,
        Self::BadRequest,
        Self::FleetUnavailable,
        Self::ShadowRateLimited,
        Self::ShadowQueued,
        Self::ShadowShed,
        Self::ShadowQueueFull,
        Self::ShadowClamped,
        Self::ShadowFleetUnavailable,
    ];

    /// Its place in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admitted => "admitted",
            Self::Unauthenticated => "unauthenticated",
            Self::UnknownTenant => "unknown_tenant",
            Self::RateLimited => "rate_limited",
            Self::BudgetError => "budget_error",
            Self::Shed => "shed",
            Self::QueueFull => "queue_full",
            Self::QueueTimeout => "queue_timeout",
            Self::TooLarge => "too_large",
            Self::BadRequest => "bad_request",
            Self::FleetUnavailable => "fleet_unavailable",
            Self::ShadowRateLimited => "shadow_rate_limited",
            Self::ShadowQueued => "shadow_queued",
            Self::ShadowShed => "shadow_shed",
            Self::ShadowQueueFull => "shadow_queue_full",
            Self::ShadowClamped => "shadow_clamped",
            Self::ShadowFleetUnavailable => "shadow_fleet_unavailable",
        }
    }

    /// For a shadow decision, the decision it stands for: the value of the
    /// `x-fairgate-shadow` response header.
    pub fn shadowed(self) -> Option<&'static str> {
        match self {
            Self::ShadowRateLimited => Some("rate_limited"),
            Self::ShadowQueued => Some("queued"),
            Self::ShadowShed => Some("shed"),
            Self::ShadowQueueFull => Some("queue_full"),
            Self::ShadowClamped => Some("clamped"),
            Self::ShadowFleetUnavailable => Some("fleet_unavailable"),
            _ => None,
        }
    }

    /// What to count for a request decided `self` so far that is now also shadow-
    /// decided `later`: the first shadow decision stands.
    pub fn then_shadow(self, later: Decision) -> Decision {
        match self.shadowed() {
            Some(_) => self,
            None => later,
        }
    }
}

/// `fg_requests` by tenant and decision; requests with no tenant have no tenant label.
/// The response header of a request decided in shadow mode: what would have been
/// decided (`Decision::shadowed`).
pub const SHADOW_HEADER: &str = "x-fairgate-shadow";

pub fn requests_counter(tenant: Option<&str>, decision: Decision) -> String {
    match tenant {
        Some(t) => format!("fg_requests.tenant.{t}.decision.{}", decision.as_str()),
        None => format!("fg_requests.decision.{}", decision.as_str()),
    }
}

/// `fg_queue_wait_ms` by tenant: how long admitted requests waited for a slot.
pub fn queue_wait_histogram(tenant: &str) -> String {
    format!("fg_queue_wait_ms.tenant.{tenant}")
}

/// `fg_wakeup_us`: from a slot's release on one worker to the resume of the request
/// it went to on another (the cross-worker wake-up latency).
pub const WAKEUP_HISTOGRAM: &str = "fg_wakeup_us";

/// `fg_pool_in_flight` / `fg_pool_capacity` by cluster (pool), and `fg_queued` by
/// tenant: gauges, written by every worker's tick from the shared pool state.
pub fn pool_in_flight_gauge(pool: &str) -> String {
    format!("fg_pool_in_flight.cluster.{}", tag_value(pool))
}

pub fn pool_capacity_gauge(pool: &str) -> String {
    format!("fg_pool_capacity.cluster.{}", tag_value(pool))
}

/// `fg_headroom_pct` by cluster: the sidecar's headroom seen, 0..100.
pub fn headroom_gauge(cluster: &str) -> String {
    format!("fg_headroom_pct.cluster.{}", tag_value(cluster))
}

/// `fg_sidecar_capacity` by cluster: the sidecar's suggested concurrency seen.
pub fn sidecar_capacity_gauge(cluster: &str) -> String {
    format!("fg_sidecar_capacity.cluster.{}", tag_value(cluster))
}

/// `fg_routed` by cluster: requests sent to each upstream cluster.
/// JWKS fetches that brought keys, fetches that failed (the last good keys kept), and
/// the keys fetched now.
/// Fleet mode: the state the polling worker sees (`fleet::state_gauge`), and the
/// Envoys live in the fleet.
pub const FLEET_STATE_GAUGE: &str = "fg_fleet_state";
pub const FLEET_REPLICAS_GAUGE: &str = "fg_fleet_replicas";
pub const JWKS_FETCHED_COUNTER: &str = "fg_jwks_fetched";
pub const JWKS_FETCH_ERRORS_COUNTER: &str = "fg_jwks_fetch_errors";
pub const JWKS_KEYS_GAUGE: &str = "fg_jwks_keys";

pub fn routed_counter(cluster: &str) -> String {
    format!("fg_routed.cluster.{}", tag_value(cluster))
}

/// `fg_forwarded_before_body` by tenant: requests whose headers left for the upstream
/// before their body was read and their tokens reserved, because Envoy does not hold
/// headers for the filter (no `allow_on_headers_stop_iteration`). 0 in a correct
/// deployment.
pub fn forwarded_before_body_counter(tenant: &str) -> String {
    format!("fg_forwarded_before_body.tenant.{tenant}")
}

/// The kinds of `fg_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Input,
    Output,
    /// Input tokens served from the model server's prompt cache (part of input).
    Cached,
}

impl TokenKind {
    /// Every kind, in the order of `index`.
    pub const ALL: [TokenKind; 3] = [Self::Input, Self::Output, Self::Cached];

    /// Its place in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::Cached => "cached",
        }
    }
}

/// `fg_tokens` by tenant and kind: tokens charged, as settled against `usage`.
pub fn tokens_counter(tenant: &str, kind: TokenKind) -> String {
    format!("fg_tokens.tenant.{tenant}.kind.{}", kind.as_str())
}

/// `fg_tokens_reserved` by tenant: tokens reserved before forwarding (prompt
/// estimate plus `max_tokens`); against `fg_tokens` it shows the estimate's error.
pub fn tokens_reserved_counter(tenant: &str) -> String {
    format!("fg_tokens_reserved.tenant.{tenant}")
}

/// `fg_prompt_estimate_error_pct` by tenant: |estimate − real| / real prompt tokens.
pub fn prompt_estimate_error_histogram(tenant: &str) -> String {
    format!("fg_prompt_estimate_error_pct.tenant.{tenant}")
}

/// `fg_tenant_weight` by tenant: the configured weight in thousandths (gauges are
/// integers; a weight share is a ratio, which the scale leaves alone).
pub fn tenant_weight_gauge(tenant: &str) -> String {
    format!("fg_tenant_weight.tenant.{tenant}")
}

pub fn queued_gauge(tenant: &str) -> String {
    format!("fg_queued.tenant.{tenant}")
}

/// A name as a tag value: Envoy cluster names may hold dots and `|`, which would
/// end the tag; those (anything but letters, digits, `-` and `_`) become `_`. The
/// native module uses it as its label value, so both hosts give the same labels.
pub fn tag_value(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `stats_tags` regexes (tag name, regex) that turn the names above into labels.
/// The shipped Envoy configs carry exactly these; a test checks they agree.
pub const STATS_TAGS: &[(&str, &str)] = &[
    ("tenant", r"^wasmcustom\.fg_\w+(\.tenant\.([A-Za-z0-9_-]+))"),
    (
        "decision",
        r"^wasmcustom\.fg_\w+(?:\.tenant\.[A-Za-z0-9_-]+)?(\.decision\.(\w+))",
    ),
    (
        "cluster",
        r"^wasmcustom\.fg_\w+(\.cluster\.([A-Za-z0-9_-]+))",
    ),
    (
        "kind",
        r"^wasmcustom\.fg_\w+(?:\.tenant\.[A-Za-z0-9_-]+)?(\.kind\.(\w+))",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn every_decision_and_kind_is_listed_at_its_index() {
        for (i, d) in Decision::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
        }
        for (i, k) in TokenKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cluster_names_become_safe_tag_values() {
        assert_eq!(
            pool_in_flight_gauge("outbound|8000||vllm.ns.svc"),
            "fg_pool_in_flight.cluster.outbound_8000__vllm_ns_svc"
        );
        assert_eq!(
            pool_capacity_gauge("pool_a"),
            "fg_pool_capacity.cluster.pool_a"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn counters_encode_tenant_and_decision_in_the_name() {
        assert_eq!(
            requests_counter(Some("acme"), Decision::RateLimited),
            "fg_requests.tenant.acme.decision.rate_limited"
        );
        assert_eq!(
            requests_counter(None, Decision::Unauthenticated),
            "fg_requests.decision.unauthenticated"
        );
    }
}
