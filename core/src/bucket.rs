//! Token bucket arithmetic, pure: no clock, no storage.
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; a request takes
//! `cost` tokens or is refused with the time until it could pass. Over any window of
//! `t` seconds at most `per_second × t + burst` tokens are taken. State is the token
//! count and the time it was last brought up to date; refill is computed lazily when
//! the bucket is next touched, O(1). Time never runs backwards here: a stale `now`
//! (another worker read the clock a moment earlier) refills nothing.

use crate::config::RateLimit;

/// The stored state of one bucket: 16 bytes in shared data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    pub tokens: f64,
    pub updated_ms: u64,
}

/// The outcome of asking a bucket for `cost` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    /// Taken; `state` is the bucket after the take, to be stored.
    Admitted { state: BucketState, quota: Quota },
    /// Refused; the bucket is unchanged (nothing to store).
    Limited { retry_after_ms: u64, quota: Quota },
}

/// What a client is told about the bucket (the `x-ratelimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset_ms: u64,
}

impl BucketState {
    pub const ENCODED_LEN: usize = 16;

    /// A full bucket at `now_ms`.
    pub fn full(limit: &RateLimit, now_ms: u64) -> Self {
        Self {
            tokens: limit.burst,
            updated_ms: now_ms,
        }
    }

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.tokens.to_le_bytes());
        out[8..].copy_from_slice(&self.updated_ms.to_le_bytes());
        out
    }

    /// `None` for bytes that are not a bucket (another writer's key, a truncated value).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let tokens = f64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let updated_ms = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        if bytes.len() != Self::ENCODED_LEN || !tokens.is_finite() {
            return None;
        }
        Some(Self { tokens, updated_ms })
    }

    /// The state brought up to `now_ms`: refilled, and capped at the burst (which may
    /// have shrunk since the state was written).
    fn refilled(&self, limit: &RateLimit, now_ms: u64) -> Self {
        let elapsed_ms = now_ms.saturating_sub(self.updated_ms);
        let tokens = (self.tokens + limit.per_second * elapsed_ms as f64 / 1000.0)
            .clamp(f64::MIN, limit.burst);
        Self {
            tokens,
            updated_ms: self.updated_ms.max(now_ms),
        }
    }
}

/// Small slack so that float rounding never refuses a token that has fully arrived.
const EPSILON: f64 = 1e-9;

fn ms_until(tokens_needed: f64, per_second: f64) -> u64 {
    if tokens_needed <= 0.0 {
        return 0;
    }
    (tokens_needed / per_second * 1000.0).ceil() as u64
}

/// Takes `cost` tokens from `state` (a missing state is a full bucket) at `now_ms`.
pub fn take(limit: &RateLimit, state: Option<BucketState>, now_ms: u64, cost: f64) -> Take {
    let current = state
        .unwrap_or_else(|| BucketState::full(limit, now_ms))
        .refilled(limit, now_ms);
    let quota = |tokens: f64| Quota {
        limit: limit.burst.floor() as u64,
        remaining: tokens.max(0.0).floor() as u64,
        reset_ms: ms_until(limit.burst - tokens, limit.per_second),
    };
    if current.tokens + EPSILON >= cost {
        let after = BucketState {
            tokens: current.tokens - cost,
            updated_ms: current.updated_ms,
        };
        Take::Admitted {
            state: after,
            quota: quota(after.tokens),
        }
    } else {
        // A cost above the burst can never pass; tell the client when the bucket is
        // full instead of a time that never comes.
        let needed = cost.min(limit.burst) - current.tokens;
        Take::Limited {
            retry_after_ms: ms_until(needed, limit.per_second).max(1),
            quota: quota(current.tokens),
        }
    }
}

/// Takes `want` tokens, or, where the bucket holds less but at least `least`, all
/// it holds (rounded down to whole tokens): a clamped request. Returns the outcome
/// and the tokens taken (0 when refused).
pub fn take_up_to(
    limit: &RateLimit,
    state: Option<BucketState>,
    now_ms: u64,
    want: f64,
    least: f64,
) -> (Take, f64) {
    let current = state
        .unwrap_or_else(|| BucketState::full(limit, now_ms))
        .refilled(limit, now_ms);
    let cost = if current.tokens + EPSILON >= want {
        want
    } else {
        let all = (current.tokens + EPSILON).floor();
        if all >= least {
            all
        } else {
            // Refused, the retry time for the least that would pass; unless that
            // least is a fraction the bucket does hold, which passes.
            let least = least.min(want);
            let t = take(limit, state, now_ms, least);
            let taken = match t {
                Take::Admitted { .. } => least,
                Take::Limited { .. } => 0.0,
            };
            return (t, taken);
        }
    };
    let t = take(limit, state, now_ms, cost);
    let taken = match t {
        Take::Admitted { .. } => cost,
        Take::Limited { .. } => 0.0,
    };
    (t, taken)
}

/// Settles a reservation: gives back `amount` tokens (a refund), or takes more when
/// it is negative (the answer cost more than reserved; the bucket may go below zero,
/// a debt the refill pays off before the next request passes). Never above `burst`.
pub fn give_back(
    limit: &RateLimit,
    state: Option<BucketState>,
    now_ms: u64,
    amount: f64,
) -> BucketState {
    let current = state
        .unwrap_or_else(|| BucketState::full(limit, now_ms))
        .refilled(limit, now_ms);
    BucketState {
        tokens: (current.tokens + amount).min(limit.burst),
        updated_ms: current.updated_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const LIMIT: RateLimit = RateLimit {
        per_second: 10.0,
        burst: 5.0,
    };

    fn admitted(t: Take) -> BucketState {
        match t {
            Take::Admitted { state, .. } => state,
            Take::Limited { .. } => panic!("expected admitted, got {t:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_fractional_least_the_bucket_holds_is_taken_and_reported() {
        // Found by the property tests: 0.59 tokens left, a clamp to at least 0.03.
        let full = BucketState::full(&LIMIT, 0);
        let Take::Admitted { state, .. } = take(&LIMIT, Some(full), 0, LIMIT.burst - 0.59) else {
            panic!("the first take is admitted");
        };
        let (t, taken) = take_up_to(&LIMIT, Some(state), 0, 0.88, 0.03);
        assert!(matches!(t, Take::Admitted { .. }));
        assert_eq!(taken, 0.03);
        let (t, taken) = take_up_to(&LIMIT, Some(state), 0, 2.0, 1.0);
        assert!(matches!(t, Take::Limited { .. }));
        assert_eq!(taken, 0.0);
    }
    #[wasm_bindgen_test(unsupported = test)]
    fn a_new_bucket_admits_its_burst_then_refuses() {
        let mut state = None;
        for _ in 0..5 {
            state = Some(admitted(take(&LIMIT, state, 1000, 1.0)));
        }
        match take(&LIMIT, state, 1000, 1.0) {
            Take::Limited {
                retry_after_ms,
                quota,
            } => {
                assert_eq!(retry_after_ms, 100, "one token at 10/s takes 100 ms");
                assert_eq!(quota.remaining, 0);
                assert_eq!(quota.limit, 5);
                assert_eq!(quota.reset_ms, 500);
            }
            other => panic!("expected limited, got {other:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn tokens_refill_at_the_configured_rate() {
        let empty = BucketState {
            tokens: 0.0,
            updated_ms: 1000,
        };
        assert!(matches!(
            take(&LIMIT, Some(empty), 1099, 1.0),
            Take::Limited { .. }
        ));
        let after = admitted(take(&LIMIT, Some(empty), 1100, 1.0));
        assert!(after.tokens.abs() < 1e-6);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_bucket_never_holds_more_than_its_burst() {
        let old = BucketState {
            tokens: 0.0,
            updated_ms: 0,
        };
        let after = admitted(take(&LIMIT, Some(old), 1_000_000, 1.0));
        assert_eq!(after.tokens, 4.0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn admitted_requests_never_exceed_rate_times_window_plus_burst() {
        // Drive the bucket every millisecond for 10 s, trying 3 requests each time.
        let mut state = None;
        let mut admitted_count = 0u64;
        for now in 0..10_000u64 {
            for _ in 0..3 {
                if let Take::Admitted { state: s, .. } = take(&LIMIT, state, now, 1.0) {
                    state = Some(s);
                    admitted_count += 1;
                }
            }
        }
        // The window is 9.999 s long: 99 refilled tokens plus the burst of 5.
        assert_eq!(admitted_count, 104);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_clock_read_earlier_by_another_worker_refills_nothing() {
        let state = BucketState {
            tokens: 0.0,
            updated_ms: 2000,
        };
        assert!(matches!(
            take(&LIMIT, Some(state), 1500, 1.0),
            Take::Limited { .. }
        ));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn retry_after_is_never_zero() {
        let state = BucketState {
            tokens: 0.9999999,
            updated_ms: 0,
        };
        match take(&LIMIT, Some(state), 0, 1.0) {
            Take::Limited { retry_after_ms, .. } => assert!(retry_after_ms >= 1),
            other => panic!("expected limited, got {other:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_cost_above_the_burst_is_told_when_the_bucket_is_full() {
        let state = BucketState {
            tokens: 0.0,
            updated_ms: 0,
        };
        match take(&LIMIT, Some(state), 0, 50.0) {
            Take::Limited { retry_after_ms, .. } => assert_eq!(retry_after_ms, 500),
            other => panic!("expected limited, got {other:?}"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn state_round_trips_through_bytes_and_garbage_is_refused() {
        let s = BucketState {
            tokens: 3.25,
            updated_ms: 1_764_400_000_000,
        };
        assert_eq!(BucketState::decode(&s.encode()), Some(s));
        assert_eq!(BucketState::decode(b"short"), None);
        assert_eq!(BucketState::decode(&[0u8; 17]), None);
        let mut nan = s.encode();
        nan[..8].copy_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(BucketState::decode(&nan), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_clamped_take_gets_what_is_left_if_it_is_enough() {
        let limit = RateLimit {
            per_second: 1.0,
            burst: 100.0,
        };
        let (t, taken) = take_up_to(&limit, None, 0, 60.0, 10.0);
        assert_eq!(taken, 60.0);
        let state = admitted(t);
        let (t, taken) = take_up_to(&limit, Some(state), 0, 60.0, 10.0);
        assert_eq!(taken, 40.0, "all that is left");
        let state = admitted(t);
        let (t, taken) = take_up_to(&limit, Some(state), 5_000, 60.0, 10.0);
        assert_eq!(taken, 0.0, "5 left, less than the least useful");
        match t {
            Take::Limited { retry_after_ms, .. } => assert_eq!(retry_after_ms, 5_000),
            Take::Admitted { .. } => panic!("must be refused"),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn settling_refunds_up_to_the_burst_and_can_leave_a_debt() {
        let limit = RateLimit {
            per_second: 10.0,
            burst: 100.0,
        };
        let state = admitted(take(&limit, None, 0, 90.0));
        let refunded = give_back(&limit, Some(state), 0, 80.0);
        assert_eq!(refunded.tokens, 90.0);
        let capped = give_back(&limit, Some(refunded), 0, 80.0);
        assert_eq!(capped.tokens, 100.0);
        let debt = give_back(&limit, Some(state), 0, -30.0);
        assert_eq!(debt.tokens, -20.0);
        match take(&limit, Some(debt), 0, 1.0) {
            Take::Limited { retry_after_ms, .. } => assert_eq!(retry_after_ms, 2_100),
            Take::Admitted { .. } => panic!("a debt holds the next request back"),
        }
    }
}
