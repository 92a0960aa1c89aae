//! One lease: what one Envoy holds of one bucket of one tenant, as the sidecar keeps
//! its books, and how much it should hold next (lease sizing). Pure: no store, no
//! clock of its own.
//!
//! Books. The filter reports totals since its start; each poll the differences give
//! what it spent, what it owes (tokens beyond its allowance) and what expired unspent
//! at its end. `held` is what the Envoy may still spend: grants issued, less spent,
//! less expired. Grants it has not acknowledged are repeated in every answer.
//!
//! Sizing (per poll, only while the tenant offers load there):
//!
//! ```text
//! rate     = EWMA, weight 1/2 per poll, of (spent + debt) / time since the last poll
//! need     = 2 × poll × rate                                  (two polls of its own pace)
//! starved  = it spent half or more of what it held, or held nothing
//! need     = max(need, 2 × last grant, 2 × poll × limit.rate / N)   when starved
//! floor    = max(1, burst / (10 × N))                          (a first lease)
//! cap      = floor + 2 × poll × limit.rate                     (two polls of the fleet's rate)
//! target   = min(max(need, floor), cap), and at least `needed` (one request's size)
//! want     = target − held                                     (a top-up, never a give-back)
//! ```
//!
//! So a replica holds about two polls of what it spends, tops up every poll, before
//! it runs out; a replica whose load grows doubles its lease each poll, starting from
//! an even share of the fleet's rate; and what all live replicas hold together stays
//! near two polls of the tenant's rate plus a tenth of its burst, whatever N. A lease
//! is renewed (`expires`) only while the tenant offers load and the store answers:
//! otherwise it runs out, and the filter reports what was left as expired.

use fairgate_wire::fleet::{BucketLimit, BudgetKind, Consumption, Grant, Lease};

use super::store::BucketOp;

/// Polls of consumption a lease is sized to cover.
const HORIZON_POLLS: f64 = 2.0;
/// Share of the burst that all replicas' first leases add up to.
const FLOOR_FRACTION: f64 = 0.1;
/// Weight of the newest poll in the rate estimate.
const RATE_WEIGHT: f64 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct LeaseBook {
    pub limit: BucketLimit,
    /// The totals of the last report.
    seen: Consumption,
    /// The last `seq` issued (or reported applied).
    seq: u64,
    /// Issued and not yet acknowledged, in `seq` order.
    pending: Vec<Grant>,
    /// What the Envoy may still spend.
    held: u64,
    /// Spent per second, smoothed.
    rate: Option<f64>,
    last_grant: u64,
    last_report_ms: u64,
    /// When the allowance expires at the filter, on the sidecar's clock (0: never
    /// leased).
    expires_ms: u64,
    /// Reported and not yet charged to, or handed back to, the store.
    pub owed_debt: u64,
    /// Reported spent and not yet told to the store (which counts it held till then).
    pub owed_spent: u64,
    /// Held by the Envoy from grants of a store that has since lost its data: spent or
    /// expired, it is not the new store's to take back.
    unbacked: u64,
    pub to_return: u64,
}

/// What a report changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reported {
    pub spent: u64,
    pub debt: u64,
    pub expired: u64,
    /// Spent half or more of what it held (or held nothing).
    pub starved: bool,
    pub needed: u64,
}

impl LeaseBook {
    /// A book opened at a first report: its totals are the baseline, and grants
    /// continue after what the filter has applied (the sidecar may have restarted).
    pub fn new(limit: BucketLimit, first: &Consumption, now_ms: u64) -> Self {
        Self {
            limit,
            seen: Consumption {
                needed: 0,
                ..*first
            },
            seq: first.applied,
            pending: Vec::new(),
            held: 0,
            rate: None,
            last_grant: 0,
            last_report_ms: now_ms,
            expires_ms: 0,
            owed_debt: 0,
            owed_spent: 0,
            unbacked: 0,
            to_return: 0,
        }
    }

    /// Takes in the filter's totals.
    pub fn report(&mut self, totals: &Consumption, now_ms: u64) -> Reported {
        if totals.applied > self.seq {
            self.seq = totals.applied;
        }
        self.pending.retain(|g| g.seq > totals.applied);
        let reported = Reported {
            spent: totals.spent.saturating_sub(self.seen.spent),
            debt: totals.debt.saturating_sub(self.seen.debt),
            expired: totals.expired.saturating_sub(self.seen.expired),
            starved: self.held == 0
                || totals
                    .spent
                    .saturating_sub(self.seen.spent)
                    .saturating_mul(2)
                    >= self.held,
            needed: totals.needed,
        };
        self.held = self
            .held
            .saturating_sub(reported.spent.saturating_add(reported.expired));
        self.owed_debt = self.owed_debt.saturating_add(reported.debt);
        // What was granted by a store that lost its data is gone from it already.
        let spent_unbacked = reported.spent.min(self.unbacked);
        self.unbacked -= spent_unbacked;
        let expired_unbacked = reported.expired.min(self.unbacked);
        self.unbacked -= expired_unbacked;
        self.owed_spent = self
            .owed_spent
            .saturating_add(reported.spent - spent_unbacked);
        self.to_return = self
            .to_return
            .saturating_add(reported.expired - expired_unbacked);
        let elapsed_ms = now_ms.saturating_sub(self.last_report_ms);
        if elapsed_ms > 0 {
            let pace =
                reported.spent.saturating_add(reported.debt) as f64 * 1000.0 / elapsed_ms as f64;
            self.rate = Some(match self.rate {
                Some(rate) => rate + RATE_WEIGHT * (pace - rate),
                None => pace,
            });
            self.last_report_ms = now_ms;
        }
        self.seen = Consumption {
            needed: 0,
            ..*totals
        };
        reported
    }

    /// How much to take now (see the module's formula); 0 without demand.
    pub fn want(&self, demand: bool, reported: &Reported, poll_ms: u64, replicas: u32) -> u64 {
        if !demand {
            return 0;
        }
        let poll_s = poll_ms as f64 / 1000.0;
        let n = f64::from(replicas.max(1));
        let mut need = HORIZON_POLLS * poll_s * self.rate.unwrap_or(0.0);
        if reported.starved {
            let share = HORIZON_POLLS * poll_s * self.limit.rate / n;
            need = need.max(2.0 * self.last_grant as f64).max(share);
        }
        let floor = (FLOOR_FRACTION * self.limit.burst / n).max(1.0);
        let cap = floor + HORIZON_POLLS * poll_s * self.limit.rate;
        let target = (need.max(floor).min(cap).ceil() as u64).max(reported.needed);
        target.saturating_sub(self.held)
    }

    /// The store operation that takes `want` for `asker` (see [`BucketOp`]) and
    /// settles what is owed.
    pub fn op(&self, kind: BudgetKind, want: u64, asker: u64, fresh_ms: u64) -> BucketOp {
        BucketOp {
            asker,
            fresh_ms,
            kind,
            limit: self.limit,
            want,
            debt: self.owed_debt,
            give_back: self.to_return,
            spent: self.owed_spent,
        }
    }

    /// The store applied `op` and granted `granted`.
    pub fn settled(&mut self, op: &BucketOp, granted: u64) {
        self.owed_debt = self.owed_debt.saturating_sub(op.debt);
        self.owed_spent = self.owed_spent.saturating_sub(op.spent);
        self.to_return = self.to_return.saturating_sub(op.give_back);
        if granted > 0 {
            self.seq += 1;
            self.pending.push(Grant {
                seq: self.seq,
                amount: granted,
            });
            self.held += granted;
            self.last_grant = granted;
        }
    }

    /// Keeps the allowance live until `until_ms`.
    pub fn renew(&mut self, until_ms: u64) {
        self.expires_ms = self.expires_ms.max(until_ms);
    }

    pub fn expires_ms(&self) -> u64 {
        self.expires_ms
    }

    /// What the Envoy may still spend (grants not yet applied included).
    pub fn held(&self) -> u64 {
        self.held
    }

    /// The Envoy is gone and its lease has expired: everything it held, and what was
    /// reported expired, goes back; nothing is held any more.
    pub fn abandon(&mut self) -> u64 {
        self.pending.clear();
        let held = std::mem::take(&mut self.held);
        self.to_return += held.saturating_sub(std::mem::take(&mut self.unbacked));
        self.to_return
    }

    /// The store lost its data (a new epoch): what the Envoy holds is not the store's
    /// any more, and what was owed to the old one is owed to nobody.
    pub fn store_lost(&mut self) {
        self.unbacked = self.held;
        self.owed_spent = 0;
        self.to_return = 0;
    }

    /// The lease as the answer carries it.
    pub fn lease(&self, now_ms: u64) -> Lease {
        Lease {
            grants: self.pending.clone(),
            expires_in_ms: self.expires_ms.saturating_sub(now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: BucketLimit = BucketLimit {
        rate: 100.0,
        burst: 200.0,
    };

    fn totals(spent: u64, applied: u64) -> Consumption {
        Consumption {
            spent,
            applied,
            ..Consumption::default()
        }
    }

    /// Grants `want` at once, as a store with plenty would.
    fn grant_all(book: &mut LeaseBook, want: u64) {
        let op = book.op(BudgetKind::Requests, want, 1, 1_000);
        book.settled(&op, want);
    }

    #[test]
    fn a_first_lease_is_a_tenth_of_the_burst_shared_by_the_replicas() {
        let book = LeaseBook::new(LIMIT, &Consumption::default(), 0);
        let reported = Reported {
            starved: false,
            ..Reported::default()
        };
        assert_eq!(book.want(true, &reported, 100, 4), 5);
        assert_eq!(book.want(false, &reported, 100, 4), 0);
    }

    #[test]
    fn a_starved_replica_gets_an_even_share_then_doubles() {
        let mut book = LeaseBook::new(LIMIT, &Consumption::default(), 0);
        let reported = book.report(&totals(0, 0), 100);
        // Held nothing: starved; even share of two polls at 100/s over 4 replicas.
        assert_eq!(book.want(true, &reported, 100, 4), 5);
        grant_all(&mut book, 5);
        let reported = book.report(&totals(5, 1), 200);
        assert!(reported.starved);
        assert_eq!(book.want(true, &reported, 100, 4), 10, "2 × last grant");
        grant_all(&mut book, 10);
        let reported = book.report(&totals(15, 2), 300);
        assert_eq!(book.want(true, &reported, 100, 4), 20);
    }

    #[test]
    fn a_steady_replica_holds_about_two_polls_of_its_pace_capped_by_the_fleet_rate() {
        let mut book = LeaseBook::new(LIMIT, &Consumption::default(), 0);
        let mut spent = 0;
        for poll in 1..=20 {
            spent += 3; // 30/s at a 100 ms poll
            let reported = book.report(&totals(spent, poll), poll * 100);
            let want = book.want(true, &reported, 100, 1);
            grant_all(&mut book, want);
        }
        // Two polls at 30/s is 6; the floor (a tenth of the burst) is 20.
        assert_eq!(book.held(), 20);
        let mut fast = LeaseBook::new(LIMIT, &Consumption::default(), 0);
        let mut spent = 0;
        for poll in 1..=20 {
            spent += 500; // far beyond what the fleet may spend
            let reported = fast.report(&totals(spent, poll), poll * 100);
            let want = fast.want(true, &reported, 100, 1);
            grant_all(&mut fast, want);
        }
        assert!(fast.held() <= 20 + 20, "held {}", fast.held());
    }

    #[test]
    fn a_large_request_gets_what_it_needs() {
        let mut book = LeaseBook::new(LIMIT, &Consumption::default(), 0);
        let totals = Consumption {
            needed: 150,
            ..Consumption::default()
        };
        let reported = book.report(&totals, 100);
        assert_eq!(book.want(true, &reported, 100, 1), 150);
    }

    #[test]
    fn grants_are_repeated_until_acknowledged_then_dropped() {
        let mut book = LeaseBook::new(LIMIT, &totals(0, 7), 0);
        grant_all(&mut book, 4);
        grant_all(&mut book, 6);
        book.renew(500);
        let lease = book.lease(100);
        assert_eq!(
            lease.grants,
            vec![Grant { seq: 8, amount: 4 }, Grant { seq: 9, amount: 6 }]
        );
        assert_eq!(lease.expires_in_ms, 400);
        book.report(&totals(0, 8), 200);
        assert_eq!(book.lease(200).grants, vec![Grant { seq: 9, amount: 6 }]);
        // The same report again (a retried poll) changes nothing.
        book.report(&totals(0, 8), 200);
        assert_eq!(book.lease(200).grants.len(), 1);
        assert_eq!(book.held(), 10);
    }

    #[test]
    fn totals_are_differenced_so_a_repeated_report_counts_once() {
        let mut book = LeaseBook::new(LIMIT, &Consumption::default(), 0);
        grant_all(&mut book, 10);
        let report = Consumption {
            spent: 3,
            debt: 40,
            expired: 2,
            applied: 1,
            needed: 0,
        };
        book.report(&report, 100);
        book.report(&report, 200);
        assert_eq!(book.held(), 5);
        assert_eq!((book.owed_debt, book.to_return), (40, 2));
        let op = book.op(BudgetKind::Tokens, 0, 1, 1_000);
        book.settled(&op, 0);
        assert_eq!((book.owed_debt, book.to_return), (0, 0));
        assert_eq!(book.abandon(), 5);
        assert_eq!(book.held(), 0);
    }
}
