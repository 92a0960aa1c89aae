//! A fleet bucket's arithmetic, as the Redis script (`settle.lua`) runs it and the
//! in-memory store reproduces it: a token bucket of `rate` per second up to `burst`,
//! refilled lazily from the time of its last change. A bucket never seen reads as
//! full. Grants are whole units, debited before they are handed out, so over any
//! window of t seconds the grants of the whole fleet sum to at most `rate × t +
//! burst` (plus the debt they were charged, which is real use that already happened),
//! and since the refill stops at the burst less what the Envoys hold, what they
//! spend in any window is bounded the same way.
//! O(1) per bucket.

use super::store::{BucketOp, BucketTake};

/// The stored state of one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    pub level: f64,
    /// The store's clock, in ms, when `level` was last refilled.
    pub at_ms: u64,
    /// Granted to Envoys and not yet reported spent or handed back: the refill stops
    /// at `burst − held`, so that what the bucket holds and what the Envoys hold
    /// together never pass the burst.
    pub held: f64,
    /// What each Envoy asked for and did not get: `(asker, unmet, at_ms, since_ms)`,
    /// `since_ms` when it was last granted anything (or first asked).
    pub asks: Vec<(u64, u64, u64, u64)>,
}

/// Applies `op` at `now_ms` to `state` (`None`: never seen, full); returns the new
/// state and what was granted. A clock that steps back refills nothing.
pub fn settle(state: Option<BucketState>, op: &BucketOp, now_ms: u64) -> (BucketState, BucketTake) {
    let (rate, burst) = (op.limit.rate, op.limit.burst);
    let BucketState {
        mut level,
        mut at_ms,
        mut held,
        mut asks,
    } = state.unwrap_or(BucketState {
        level: burst,
        at_ms: now_ms,
        held: 0.0,
        asks: Vec::new(),
    });
    if now_ms > at_ms {
        level = (burst - held).min(level + (now_ms - at_ms) as f64 * rate / 1000.0);
        at_ms = now_ms;
    }
    held = (held - op.spent as f64 - op.give_back as f64).max(0.0);
    level = (burst - held).min(level + op.give_back as f64) - op.debt as f64;
    asks.retain(|&(_, _, at, _)| now_ms.saturating_sub(at) <= op.fresh_ms);
    let since = asks
        .iter()
        .find(|a| a.0 == op.asker)
        .map_or(now_ms, |a| a.3);
    asks.retain(|a| a.0 != op.asker);
    let others: u64 = asks.iter().map(|a| a.1).sum();
    let granted = if op.want > 0 && level >= 1.0 {
        let all = level.floor() as u64;
        let asked = op.want.saturating_add(others);
        let share = if asked <= all {
            op.want
        } else {
            // Less than one unit each: the unit goes to whoever has waited longest.
            let share = (level * op.want as f64 / asked as f64).floor() as u64;
            let longest = asks.iter().all(|a| since <= a.3);
            if share == 0 && longest {
                1
            } else {
                share
            }
        };
        op.want.min(share).min(all)
    } else {
        0
    };
    level -= granted as f64;
    held += granted as f64;
    if op.asker != 0 && op.want > granted {
        let since = if granted > 0 { now_ms } else { since };
        asks.push((op.asker, op.want - granted, now_ms, since));
    }
    let state = BucketState {
        level,
        at_ms,
        held,
        asks,
    };
    (state, BucketTake { granted, level })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairgate_wire::fleet::{BucketLimit, BudgetKind};

    fn op(want: u64, debt: u64, give_back: u64) -> BucketOp {
        BucketOp {
            kind: BudgetKind::Requests,
            limit: BucketLimit {
                rate: 10.0,
                burst: 20.0,
            },
            want,
            debt,
            give_back,
            spent: 0,
            asker: 1,
            fresh_ms: 1_000,
        }
    }

    #[test]
    fn a_new_bucket_is_full_and_grants_whole_units_up_to_its_level() {
        let (state, take) = settle(None, &op(50, 0, 0), 1_000);
        assert_eq!(take.granted, 20);
        assert_eq!(state.level, 0.0);
        // The 20 reported spent: the refill resumes.
        let spent = BucketOp {
            spent: 20,
            ..op(0, 0, 0)
        };
        let (state, _) = settle(Some(state), &spent, 1_000);
        let (state, take) = settle(Some(state), &op(50, 0, 0), 1_150);
        assert_eq!(take.granted, 1, "1.5 refilled, one whole unit granted");
        assert!((state.level - 0.5).abs() < 1e-9);
    }

    #[test]
    fn what_envoys_hold_counts_against_the_burst_until_spent_or_given_back() {
        let (state, take) = settle(None, &op(8, 0, 0), 0);
        assert_eq!((take.granted, state.level, state.held), (8, 12.0, 8.0));
        // A minute later the bucket is full but for the 8 held.
        let (state, _) = settle(Some(state), &op(0, 0, 0), 60_000);
        assert_eq!(state.level, 12.0);
        // 5 spent, 3 handed back: nothing held, 3 back in the bucket.
        let spent = BucketOp {
            spent: 5,
            ..op(0, 0, 3)
        };
        let (state, _) = settle(Some(state), &spent, 60_000);
        assert_eq!((state.level, state.held), (15.0, 0.0));
        let (state, _) = settle(Some(state), &op(0, 0, 0), 120_000);
        assert_eq!(state.level, 20.0);
    }

    #[test]
    fn a_contended_bucket_is_shared_in_proportion_to_what_each_envoy_asks() {
        // Empty, then 10 refilled; Envoy 1 asked for 15 and got nothing.
        let (state, _) = settle(None, &op(20, 0, 0), 0);
        let spent = BucketOp {
            spent: 20,
            ..op(15, 0, 0)
        };
        let (state, take) = settle(Some(state), &spent, 0);
        assert_eq!((take.granted, state.asks.clone()), (0, vec![(1, 15, 0, 0)]));
        // Envoy 2 asks for 5 of the 10 there: 5 of 20 asked, a quarter.
        let second = BucketOp {
            asker: 2,
            ..op(5, 0, 0)
        };
        let (state, take) = settle(Some(state), &second, 1_000);
        assert_eq!(take.granted, 2);
        // Envoy 1 comes back for its 15: its share of the 8 left, 15 of 18.
        let (state, take) = settle(Some(state), &op(15, 0, 0), 1_000);
        assert_eq!(take.granted, 6);
        // An ask older than fresh_ms no longer counts: all there is, up to the want.
        let (_, take) = settle(Some(state), &second, 3_000);
        assert_eq!(take.granted, 5);
    }

    #[test]
    fn under_one_unit_each_the_unit_goes_to_who_waited_longest() {
        let slow = |asker| BucketOp {
            asker,
            limit: BucketLimit {
                rate: 1.0,
                burst: 20.0,
            },
            ..op(1, 0, 0)
        };
        // Empty bucket, nothing held: both ask for one; 1 refills each second.
        let (mut state, _) = settle(
            None,
            &BucketOp {
                spent: 0,
                ..op(20, 0, 0)
            },
            0,
        );
        state.held = 0.0;
        let (mut state, _) = settle(Some(state), &slow(1), 0);
        let mut got = [0u64; 3];
        for t in 0..10u64 {
            // Envoy 1 always asks first after the refill, Envoy 2 just after.
            for asker in [1, 2] {
                let (next, take) = settle(Some(state), &slow(asker), 1_000 * (t + 1) + asker);
                got[asker as usize] += take.granted;
                state = next;
                state.held = 0.0;
            }
        }
        assert!(got[1].abs_diff(got[2]) <= 1, "{got:?}");
    }

    #[test]
    fn refill_is_capped_at_the_burst_and_so_is_what_comes_back() {
        let (state, _) = settle(None, &op(5, 0, 0), 0);
        let (state, take) = settle(Some(state), &op(0, 0, 0), 60_000);
        assert_eq!((state.level, take.granted), (15.0, 0), "5 held");
        // The 5 come back, and 2 more than were held: the level stops at the burst.
        let (state, _) = settle(Some(state), &op(0, 0, 7), 60_000);
        assert_eq!((state.level, state.held), (20.0, 0.0));
    }

    #[test]
    fn debt_is_charged_in_full_and_paid_off_by_the_refill() {
        let (state, take) = settle(None, &op(5, 30, 0), 0);
        assert_eq!((take.granted, state.level), (0, -10.0));
        let (state, take) = settle(Some(state), &op(5, 0, 0), 1_500);
        assert_eq!((take.granted, state.level), (5, 0.0));
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let (state, _) = settle(None, &op(20, 0, 0), 5_000);
        let (state, take) = settle(Some(state), &op(20, 0, 0), 4_000);
        assert_eq!((take.granted, state.at_ms), (0, 5_000));
    }
}
