//! Accounting: what the server is doing now and has done, in total and per tenant
//! (the `x-fairgate-tenant` header, `anonymous` without one).
//!
//! Every inference request holds a [`Ticket`] from the moment it arrives. The ticket
//! moves the request through the gauges (arrived → waiting for a slot → running) and,
//! when it is dropped — the answer sent, an error answered, the client gone, the
//! connection reset — takes it off them and counts how it ended. Ending by drop is
//! what makes every path count, a client that goes away included. One mutex guards
//! it all; each request touches it a handful of times.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// One tenant's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantStats {
    /// Inference requests received.
    pub requests: u64,
    /// Requests now waiting for a slot or in one.
    pub in_flight: u64,
    /// The most ever in flight at once.
    pub max_in_flight: u64,
    /// Requests now waiting for a slot.
    pub waiting: u64,
    /// Requests now in a slot.
    pub running: u64,
    /// The most ever in a slot at once.
    pub max_running: u64,
    /// Answered in full.
    pub completed: u64,
    /// Answered with an error status: bad input (400), an injected `x-mock-status`.
    pub failed: u64,
    /// Refused with 503 `overloaded`: the queue was full.
    pub rejected: u64,
    /// Ended without a full answer: `x-mock-reset-after`, or the client went away.
    pub aborted: u64,
    /// Prompt tokens of the requests that got a slot.
    pub prompt_tokens: u64,
    /// Answer tokens sent to the client (an aborted stream counts what it sent).
    pub completion_tokens: u64,
    /// Prompt tokens reported as cached (`x-mock-cached-tokens`).
    pub cached_tokens: u64,
}

/// A snapshot of the server's accounting (`GET /mock/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The server's name (`--name`).
    pub name: String,
    /// GPU slots.
    pub slots: u64,
    /// Requests now in a slot.
    pub running: u64,
    /// Requests now waiting for a slot.
    pub waiting: u64,
    /// The most ever in a slot at once (never above `slots`).
    pub max_running: u64,
    /// The most ever waiting at once.
    pub max_waiting: u64,
    /// Inference requests received.
    pub requests_total: u64,
    pub tenants: BTreeMap<String, TenantStats>,
}

impl Stats {
    /// Zeroes the counters and peaks, keeping what is in flight now (its tickets will
    /// still take it off the gauges); tenants with nothing in flight are forgotten.
    fn reset(&mut self) {
        self.max_running = self.running;
        self.max_waiting = self.waiting;
        self.requests_total = 0;
        self.tenants.retain(|_, t| t.in_flight > 0);
        for t in self.tenants.values_mut() {
            *t = TenantStats {
                in_flight: t.in_flight,
                max_in_flight: t.in_flight,
                waiting: t.waiting,
                running: t.running,
                max_running: t.running,
                ..TenantStats::default()
            };
        }
    }
}

/// How a request ended; a ticket dropped without one was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Rejected,
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Arrived,
    Waiting,
    Running,
}

/// The server's accounting, shared by its requests and its handle.
#[derive(Debug)]
pub struct Ledger {
    stats: Mutex<Stats>,
    max_queue: u64,
}

impl Ledger {
    pub fn new(name: &str, slots: usize, max_queue: usize) -> Self {
        Self {
            stats: Mutex::new(Stats {
                name: name.to_owned(),
                slots: slots as u64,
                ..Stats::default()
            }),
            max_queue: max_queue as u64,
        }
    }

    // A panic while the lock is held cannot leave the counters half-updated in a way
    // worth refusing service for, so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Stats {
        self.lock().clone()
    }

    pub fn reset(&self) {
        self.lock().reset();
    }

    /// A request of `tenant` arrives.
    pub fn arrive(self: &Arc<Self>, tenant: &str) -> Ticket {
        let mut stats = self.lock();
        stats.requests_total += 1;
        let t = stats.tenants.entry(tenant.to_owned()).or_default();
        t.requests += 1;
        t.in_flight += 1;
        t.max_in_flight = t.max_in_flight.max(t.in_flight);
        Ticket {
            ledger: Arc::clone(self),
            tenant: tenant.to_owned(),
            phase: Phase::Arrived,
            outcome: Outcome::Aborted,
        }
    }
}

/// One inference request in the ledger; see the module doc.
#[derive(Debug)]
pub struct Ticket {
    ledger: Arc<Ledger>,
    tenant: String,
    phase: Phase,
    outcome: Outcome,
}

impl Ticket {
    fn update(&self, f: impl FnOnce(&mut Stats, &mut TenantStats)) {
        let mut stats = self.ledger.lock();
        let mut tenant = stats.tenants.remove(&self.tenant).unwrap_or_default();
        f(&mut stats, &mut tenant);
        stats.tenants.insert(self.tenant.clone(), tenant);
    }

    /// Joins the queue for a slot; false when `max_queue` requests already wait.
    pub fn queue(&mut self) -> bool {
        if self.phase != Phase::Arrived {
            return self.phase == Phase::Waiting;
        }
        let mut joined = false;
        let max_queue = self.ledger.max_queue;
        self.update(|s, t| {
            if s.waiting < max_queue {
                s.waiting += 1;
                s.max_waiting = s.max_waiting.max(s.waiting);
                t.waiting += 1;
                joined = true;
            }
        });
        if joined {
            self.phase = Phase::Waiting;
        }
        joined
    }

    /// Has a slot: counts its prompt.
    pub fn start(&mut self, prompt_tokens: u64, cached_tokens: u64) {
        let was_waiting = self.phase == Phase::Waiting;
        if self.phase == Phase::Running {
            return;
        }
        self.update(|s, t| {
            if was_waiting {
                s.waiting = s.waiting.saturating_sub(1);
                t.waiting = t.waiting.saturating_sub(1);
            }
            s.running += 1;
            s.max_running = s.max_running.max(s.running);
            t.running += 1;
            t.max_running = t.max_running.max(t.running);
            t.prompt_tokens += prompt_tokens;
            t.cached_tokens += cached_tokens;
        });
        self.phase = Phase::Running;
    }

    /// `tokens` answer tokens went to the client.
    pub fn sent(&self, tokens: u64) {
        self.update(|_, t| t.completion_tokens += tokens);
    }

    /// How the request ends, counted when the ticket is dropped.
    pub fn end(&mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let (phase, outcome) = (self.phase, self.outcome);
        self.update(|s, t| {
            match phase {
                Phase::Arrived => {}
                Phase::Waiting => {
                    s.waiting = s.waiting.saturating_sub(1);
                    t.waiting = t.waiting.saturating_sub(1);
                }
                Phase::Running => {
                    s.running = s.running.saturating_sub(1);
                    t.running = t.running.saturating_sub(1);
                }
            }
            t.in_flight = t.in_flight.saturating_sub(1);
            match outcome {
                Outcome::Completed => t.completed += 1,
                Outcome::Failed => t.failed += 1,
                Outcome::Rejected => t.rejected += 1,
                Outcome::Aborted => t.aborted += 1,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_moves_through_the_gauges_and_counts_its_ending() {
        let ledger = Arc::new(Ledger::new("m", 1, 1));
        let mut a = ledger.arrive("acme");
        let mut b = ledger.arrive("acme");
        assert!(b.queue());
        let mut c = ledger.arrive("globex");
        assert!(!c.queue(), "one may wait, and one does");
        c.end(Outcome::Rejected);
        drop(c);
        a.start(10, 4);
        let s = ledger.snapshot();
        assert_eq!((s.running, s.waiting, s.requests_total), (1, 1, 3));
        assert_eq!(s.tenants["acme"].in_flight, 2);
        assert_eq!(s.tenants["globex"].rejected, 1);
        a.sent(3);
        drop(a);
        b.start(1, 0);
        b.end(Outcome::Completed);
        drop(b);
        let acme = &ledger.snapshot().tenants["acme"];
        assert_eq!((acme.in_flight, acme.max_in_flight), (0, 2));
        assert_eq!((acme.aborted, acme.completed), (1, 1));
        assert_eq!(
            (
                acme.prompt_tokens,
                acme.cached_tokens,
                acme.completion_tokens
            ),
            (11, 4, 3)
        );
    }

    #[test]
    fn reset_keeps_what_is_in_flight() {
        let ledger = Arc::new(Ledger::new("m", 2, 8));
        let mut running = ledger.arrive("acme");
        running.start(5, 0);
        drop(ledger.arrive("globex"));
        ledger.reset();
        let s = ledger.snapshot();
        assert_eq!((s.running, s.max_running, s.requests_total), (1, 1, 0));
        assert!(!s.tenants.contains_key("globex"));
        assert_eq!(s.tenants["acme"].prompt_tokens, 0);
        assert_eq!(s.tenants["acme"].in_flight, 1);
        drop(running);
        assert_eq!(ledger.snapshot().tenants["acme"].aborted, 1);
    }
}
