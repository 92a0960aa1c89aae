//! Fleet mode, the filter's half (SPEC section 9): budgets spent from leases that the
//! sidecar takes from the fleet's buckets in Redis, so that every budget holds across
//! all the Envoys of a fleet with no network call on the request path.
//!
//! Each limited bucket of a tenant (requests, tokens, a model's tokens) has one
//! record in shared data, `<prefix>fleet.<kind>.<id>` ([`Allowance`]), in place of
//! its local token bucket. A request takes from the record's `allowance` with the
//! same host calls as from a bucket (a read and a compare-and-swap). The elected
//! poller ([`FleetPoller`]) reads every record once per poll into the body of
//! `POST /v1/fleet/poll` ([`fairgate_wire::fleet`]) and writes each answer's grants
//! back into them.
//!
//! What a take does depends on the record's [`Phase`]:
//! - `Leased` (the lease has not expired): admit from the allowance; refuse (429)
//!   what it does not cover, noting the amount as `needed` so the next grant covers it.
//! - `Waiting` (no live lease yet, the fleet reachable): refuse with a retry after one
//!   poll, when the grant arrives.
//! - `Outage` (the sidecar said the fleet's buckets are unreachable and the lease ran
//!   out, or the sidecar has not answered for `sidecar.stale_ms`): `safe`, a local
//!   bucket of `1/N` of the limit (N: the Envoys last seen live); `open`, no limit;
//!   `closed`, 503 `fleet_unavailable`.
//!
//! Books, so that the sidecar's `held = granted − spent − expired` always equals the
//! record's `allowance` plus what requests in flight reserved: a grant adds to the
//! allowance once (by `seq`); a request takes from it; requests count as `spent` when
//! taken, tokens when their answer settles (what it used, up to what it reserved; a
//! refund goes back to the allowance; use beyond the reservation is taken from the
//! allowance, or counted as `debt` where it holds too little); at expiry what the
//! allowance holds moves to `expired`. Every total only grows.

use std::collections::BTreeMap;

use fairgate_wire::fleet::{
    BudgetKind as WireKind, Consumption, FleetAnswer, FleetPoll, TenantReport,
};
pub use fairgate_wire::fleet::{FleetState, OutageMode, PoolReport, FLEET_POLL_PATH};

use crate::bucket::{self, BucketState, Quota, Take};
use crate::budget::{BudgetKind, Taken};
use crate::config::RateLimit;
use crate::host::Level;
use crate::store::{
    cas_update, create_if_missing, SharedStore, StoreError, Update, MAX_CAS_ATTEMPTS,
};

/// How long a tenant not in `tenants` keeps its lease after its last request: its
/// record keeps asking for a lease while it may come back.
pub const DEMAND_MS: u64 = 60_000;

/// The most bucket records one Envoy reports (configured tenants and the unlisted ones
/// it has seen): the poll body's bound. Past it, a new tenant's budget is held by the
/// Envoy alone, at `1/N` of its limit ([`FleetBooks::take`] answers `None`).
pub const MAX_RECORDS: usize = 20_000;

/// The fleet settings a filter runs with: `fleet` and `sidecar` of the plugin config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetMode {
    pub outage: OutageMode,
    pub poll_ms: u64,
    pub stale_ms: u64,
}

/// Where a request's budget was taken from, so that its settlement goes back there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// The Envoy's own token bucket (not fleet mode).
    #[default]
    Bucket,
    /// The fleet lease's allowance.
    Lease,
    /// The local `1/N` bucket of `safe` mode.
    Local,
    /// Nothing (`open` mode): nothing to settle.
    Unlimited,
}

/// How a record's budget is enforced at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Leased,
    Waiting,
    Outage { mode: OutageMode, replicas: u32 },
}

/// One bucket's lease at this Envoy (module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allowance {
    /// The bucket's limit, for the poll's report.
    pub rate: f64,
    pub burst: f64,
    /// The configured tenants' records always ask for a lease.
    pub configured: bool,
    pub created_ms: u64,
    /// Granted and neither taken nor expired.
    pub allowance: u64,
    /// The lease's expiry (0: never leased).
    pub expires_ms: u64,
    /// When an answer last carried this record (0: never).
    pub answered_ms: u64,
    pub state: FleetState,
    pub replicas: u32,
    pub applied: u64,
    pub spent: u64,
    pub debt: u64,
    pub expired: u64,
    /// The largest amount a refused request needed since the last poll.
    pub needed: u64,
    /// The last request's time.
    pub demand_ms: u64,
    /// `safe` mode's local bucket (`updated_ms` 0: not started).
    pub local: BucketState,
}

const VERSION: u8 = 1;

fn state_byte(state: FleetState) -> u8 {
    match state {
        FleetState::Exact => 0,
        FleetState::Safe => 1,
        FleetState::Open => 2,
        FleetState::Closed => 3,
    }
}

fn state_of(byte: u8) -> Option<FleetState> {
    Some(match byte {
        0 => FleetState::Exact,
        1 => FleetState::Safe,
        2 => FleetState::Open,
        3 => FleetState::Closed,
        _ => return None,
    })
}

fn mode_of(state: FleetState, own: OutageMode) -> OutageMode {
    match state {
        FleetState::Safe => OutageMode::Safe,
        FleetState::Open => OutageMode::Open,
        FleetState::Closed => OutageMode::Closed,
        FleetState::Exact => own,
    }
}

/// Reads little-endian fields off a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.take::<8>()
            .map(f64::from_le_bytes)
            .filter(|f| f.is_finite())
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
}

impl Allowance {
    /// A record for a bucket of `limit`, created at `now_ms`, with nothing granted.
    pub fn new(limit: &RateLimit, configured: bool, now_ms: u64) -> Self {
        Self {
            rate: limit.per_second,
            burst: limit.burst,
            configured,
            created_ms: now_ms,
            allowance: 0,
            expires_ms: 0,
            answered_ms: 0,
            state: FleetState::Exact,
            replicas: 1,
            applied: 0,
            spent: 0,
            debt: 0,
            expired: 0,
            needed: 0,
            demand_ms: 0,
            local: BucketState {
                tokens: 0.0,
                updated_ms: 0,
            },
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(VERSION);
        out.push(u8::from(self.configured));
        out.push(state_byte(self.state));
        out.extend_from_slice(&self.replicas.to_le_bytes());
        for f in [self.rate, self.burst, self.local.tokens] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        for n in [
            self.local.updated_ms,
            self.created_ms,
            self.allowance,
            self.expires_ms,
            self.answered_ms,
            self.applied,
            self.spent,
            self.debt,
            self.expired,
            self.needed,
            self.demand_ms,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    /// `None` for bytes that are not a record of this layout.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return None;
        }
        let configured = r.u8()? != 0;
        let state = state_of(r.u8()?)?;
        let replicas = r.u32()?;
        let (rate, burst, local_tokens) = (r.f64()?, r.f64()?, r.f64()?);
        let mut n = [0u64; 11];
        for slot in &mut n {
            *slot = r.u64()?;
        }
        if !r.0.is_empty() {
            return None;
        }
        let [local_ms, created_ms, allowance, expires_ms, answered_ms, applied, spent, debt, expired, needed, demand_ms] =
            n;
        Some(Self {
            rate,
            burst,
            configured,
            created_ms,
            allowance,
            expires_ms,
            answered_ms,
            state,
            replicas,
            applied,
            spent,
            debt,
            expired,
            needed,
            demand_ms,
            local: BucketState {
                tokens: local_tokens,
                updated_ms: local_ms,
            },
        })
    }

    fn limit(&self) -> RateLimit {
        RateLimit {
            per_second: self.rate,
            burst: self.burst,
        }
    }

    /// Moves what an expired lease still holds to `expired`.
    pub fn expire(&mut self, now_ms: u64) {
        if now_ms >= self.expires_ms && self.allowance > 0 {
            self.expired = self.expired.saturating_add(self.allowance);
            self.allowance = 0;
        }
    }

    /// How the budget is enforced at `now_ms` (module documentation).
    pub fn phase(&self, now_ms: u64, mode: &FleetMode) -> Phase {
        if now_ms < self.expires_ms {
            return Phase::Leased;
        }
        let replicas = self.replicas.max(1);
        let heard_ms = self.answered_ms.max(self.created_ms);
        if now_ms.saturating_sub(heard_ms) > mode.stale_ms {
            // The sidecar has not answered for too long.
            return Phase::Outage {
                mode: mode.outage,
                replicas,
            };
        }
        match self.state {
            FleetState::Exact => Phase::Waiting,
            s => Phase::Outage {
                mode: mode_of(s, mode.outage),
                replicas,
            },
        }
    }

    /// `safe` mode's share of the limit.
    fn local_limit(&self, replicas: u32) -> RateLimit {
        let n = f64::from(replicas.max(1));
        RateLimit {
            per_second: self.rate / n,
            burst: (self.burst / n).max(1.0),
        }
    }

    /// Takes `want` (or, with `least`, as much as the lease holds down to `least`) for
    /// a request of `kind` at `now_ms`.
    pub fn take(
        &mut self,
        kind: BudgetKind,
        now_ms: u64,
        want: f64,
        least: Option<f64>,
        mode: &FleetMode,
    ) -> Taken {
        self.expire(now_ms);
        self.demand_ms = self.demand_ms.max(now_ms);
        let want_n = want.max(0.0).ceil() as u64;
        let phase = self.phase(now_ms, mode);
        if !matches!(
            phase,
            Phase::Outage {
                mode: OutageMode::Safe,
                ..
            }
        ) {
            // Out of `safe`: the next outage starts with a full local bucket.
            self.local.updated_ms = 0;
        }
        match phase {
            Phase::Leased => {
                let least_n = least.map(|l| l.max(0.0).ceil() as u64);
                let amount = if self.allowance >= want_n {
                    Some(want_n)
                } else {
                    least_n
                        .filter(|l| self.allowance >= *l && self.allowance > 0)
                        .map(|_| self.allowance)
                };
                match amount {
                    Some(amount) => {
                        self.allowance -= amount;
                        // A request is spent when taken; what a take holds beyond it
                        // (a worker's lease, a token reservation) when settled.
                        if kind == BudgetKind::Requests {
                            self.spent = self.spent.saturating_add(amount.min(1));
                        }
                        Taken::Admitted {
                            amount: amount as f64,
                            source: Source::Lease,
                        }
                    }
                    None => {
                        self.needed = self.needed.max(least_n.unwrap_or(want_n).min(want_n));
                        Taken::Limited {
                            retry_after_ms: self.retry_after_ms(want, mode),
                            quota: self.quota(),
                        }
                    }
                }
            }
            Phase::Waiting => {
                self.needed = self.needed.max(want_n);
                Taken::Limited {
                    retry_after_ms: mode.poll_ms.max(1),
                    quota: self.quota(),
                }
            }
            Phase::Outage {
                mode: OutageMode::Safe,
                replicas,
            } => {
                let limit = self.local_limit(replicas);
                if self.local.updated_ms == 0 {
                    self.local = BucketState::full(&limit, now_ms.max(1));
                }
                let (take, amount) = bucket::take_up_to(
                    &limit,
                    Some(self.local),
                    now_ms,
                    want,
                    least.unwrap_or(want),
                );
                match take {
                    Take::Admitted { state, .. } => {
                        self.local = state;
                        Taken::Admitted {
                            amount,
                            source: Source::Local,
                        }
                    }
                    Take::Limited {
                        retry_after_ms,
                        quota,
                    } => Taken::Limited {
                        retry_after_ms,
                        quota,
                    },
                }
            }
            Phase::Outage {
                mode: OutageMode::Open,
                ..
            } => Taken::Admitted {
                amount: want,
                source: Source::Unlimited,
            },
            Phase::Outage {
                mode: OutageMode::Closed,
                ..
            } => Taken::Unavailable {
                retry_after_ms: mode.poll_ms.max(1000),
            },
        }
    }

    /// A request that took `taken` from `source` used `used` of it (tokens; 0 for a
    /// reservation given back unused).
    pub fn settle(&mut self, source: Source, now_ms: u64, taken: u64, used: u64) {
        match source {
            Source::Lease => {
                self.expire(now_ms);
                if used <= taken {
                    self.spent = self.spent.saturating_add(used);
                    self.allowance = self.allowance.saturating_add(taken - used);
                    // Given back after expiry: it expires at once.
                    self.expire(now_ms);
                } else {
                    let beyond = used - taken;
                    let covered = beyond.min(self.allowance);
                    self.allowance -= covered;
                    self.spent = self.spent.saturating_add(taken + covered);
                    self.debt = self.debt.saturating_add(beyond - covered);
                }
            }
            Source::Local => {
                if self.local.updated_ms != 0 {
                    let limit = self.local_limit(self.replicas);
                    let back = taken as f64 - used as f64;
                    self.local = bucket::give_back(&limit, Some(self.local), now_ms, back);
                }
            }
            Source::Bucket | Source::Unlimited => {}
        }
    }

    /// A request refused for want of allowance may pass once a grant covers it:
    /// about one poll at the fleet's rate, more for a request larger than that.
    fn retry_after_ms(&self, want: f64, mode: &FleetMode) -> u64 {
        let refill = if self.rate > 0.0 {
            (want / self.rate * 1000.0).ceil() as u64
        } else {
            mode.poll_ms
        };
        refill.max(mode.poll_ms).max(1)
    }

    fn quota(&self) -> Quota {
        let limit = self.limit();
        Quota {
            limit: limit.burst.floor() as u64,
            remaining: self.allowance,
            reset_ms: if limit.per_second > 0.0 {
                (limit.burst / limit.per_second * 1000.0).ceil() as u64
            } else {
                0
            },
        }
    }

    /// Whether the poll asks for a lease for it at `now_ms`.
    pub fn demand(&self, now_ms: u64) -> bool {
        self.configured || now_ms.saturating_sub(self.demand_ms) < DEMAND_MS
    }

    /// The totals the poll reports (and the `needed` it resets).
    fn report(&mut self, now_ms: u64) -> Consumption {
        self.expire(now_ms);
        let out = Consumption {
            spent: self.spent,
            debt: self.debt,
            expired: self.expired,
            applied: self.applied,
            needed: self.needed,
        };
        self.needed = 0;
        out
    }

    /// Applies an answer's lease for this record, arrived at `now_ms`.
    fn apply(
        &mut self,
        lease: Option<&fairgate_wire::fleet::Lease>,
        state: FleetState,
        replicas: u32,
        now_ms: u64,
    ) {
        self.expire(now_ms);
        self.answered_ms = now_ms.max(1);
        self.state = state;
        self.replicas = replicas.max(1);
        let Some(lease) = lease else { return };
        for grant in &lease.grants {
            if grant.seq > self.applied {
                self.applied = grant.seq;
                self.allowance = self.allowance.saturating_add(grant.amount);
            }
        }
        self.expires_ms = now_ms.saturating_add(lease.expires_in_ms);
        self.expire(now_ms);
    }
}

fn kind_tag(kind: BudgetKind) -> &'static str {
    match kind {
        BudgetKind::Requests => "requests",
        BudgetKind::Tokens => "tokens",
    }
}

/// Applies `f` to the record at `key` under compare-and-swap; `None` where there is
/// no record (or none of this layout).
fn update_record<T>(
    store: &dyn SharedStore,
    key: &str,
    mut f: impl FnMut(&mut Allowance) -> T,
) -> Result<Option<T>, StoreError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some((bytes, cas)) = store.get(key)? else {
            return Ok(None);
        };
        let Some(mut record) = Allowance::decode(&bytes) else {
            return Ok(None);
        };
        let out = f(&mut record);
        match store.set(key, &record.encode(), Some(cas)) {
            Ok(()) => return Ok(Some(out)),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Contended {
        attempts: MAX_CAS_ATTEMPTS,
    })
}

/// The fleet records of one plugin, under one key prefix.
#[derive(Debug, Clone)]
pub struct FleetBooks {
    prefix: String,
    pub mode: FleetMode,
    max_records: usize,
}

impl FleetBooks {
    pub fn new(prefix: &str, mode: FleetMode) -> Self {
        Self {
            prefix: prefix.to_string(),
            mode,
            max_records: MAX_RECORDS,
        }
    }

    /// Lists at most `n` records (tests: `MAX_RECORDS` reached cheaply).
    pub fn with_max_records(mut self, n: usize) -> Self {
        self.max_records = n;
        self
    }

    /// Where the last answer's N is kept (for [`Self::local_share`]).
    pub fn replicas_key(&self) -> String {
        format!("{}fleet.replicas", self.prefix)
    }

    /// `limit` for a bucket this Envoy holds alone (one past `MAX_RECORDS`): `1/N` of
    /// it, N the Envoys the last answer counted (1 before any).
    pub fn local_share(
        &self,
        store: &dyn SharedStore,
        limit: &RateLimit,
    ) -> Result<RateLimit, StoreError> {
        let replicas = store
            .get(&self.replicas_key())?
            .and_then(|(bytes, _)| Some(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)))
            .unwrap_or(1)
            .max(1);
        let n = f64::from(replicas);
        Ok(RateLimit {
            per_second: limit.per_second / n,
            burst: (limit.burst / n).max(1.0),
        })
    }
    pub fn key(&self, kind: BudgetKind, id: &str) -> String {
        format!("{}fleet.{}.{}", self.prefix, kind_tag(kind), id)
    }

    fn index_key(&self) -> String {
        format!("{}fleet.index", self.prefix)
    }

    /// Creates the record of a bucket if it has none, and lists it in the index the
    /// poller reads. False where the index is full (`MAX_RECORDS`).
    pub fn ensure(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        id: &str,
        limit: &RateLimit,
        configured: bool,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let key = self.key(kind, id);
        let fresh = Allowance::new(limit, configured, now_ms).encode();
        match store.get(&key)? {
            Some((bytes, _)) if Allowance::decode(&bytes).is_some() => return Ok(true),
            // Not a record of this layout: replaced.
            Some(_) => {
                store.set(&key, &fresh, None)?;
                return Ok(true);
            }
            None => {}
        }
        let entry = format!("{} {id}", kind_tag(kind));
        let listed = cas_update(store, &self.index_key(), b"", |index| {
            let text = std::str::from_utf8(index).unwrap_or_default();
            if text.lines().any(|l| l == entry) {
                return Update::Keep(true);
            }
            if text.lines().count() >= self.max_records {
                return Update::Keep(false);
            }
            let mut next = index.to_vec();
            next.extend_from_slice(entry.as_bytes());
            next.push(b'\n');
            Update::Write(next, true)
        })?;
        if listed {
            create_if_missing(store, &key, &fresh)?;
        }
        Ok(listed)
    }

    /// Takes for a request (module documentation). `None`: the bucket has no record
    /// and the index is full (`MAX_RECORDS`): the caller holds it locally
    /// ([`Self::local_share`]).
    #[allow(clippy::too_many_arguments)]
    pub fn take(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        id: &str,
        limit: &RateLimit,
        now_ms: u64,
        want: f64,
        least: Option<f64>,
    ) -> Result<Option<Taken>, StoreError> {
        let key = self.key(kind, id);
        let mode = self.mode;
        for _ in 0..2 {
            let taken = update_record(store, &key, |record| {
                record.rate = limit.per_second;
                record.burst = limit.burst;
                record.take(kind, now_ms, want, least, &mode)
            })?;
            if taken.is_some() {
                return Ok(taken);
            }
            if !self.ensure(store, kind, id, limit, false, now_ms)? {
                break;
            }
        }
        // Not listed: nobody reports it, so nobody leases it.
        Ok(None)
    }

    /// Settles what a request took (see [`Allowance::settle`]).
    #[allow(clippy::too_many_arguments)]
    pub fn settle(
        &self,
        store: &dyn SharedStore,
        kind: BudgetKind,
        id: &str,
        source: Source,
        now_ms: u64,
        taken: u64,
        used: u64,
    ) -> Result<(), StoreError> {
        if matches!(source, Source::Bucket | Source::Unlimited) {
            return Ok(());
        }
        update_record(store, &self.key(kind, id), |record| {
            record.settle(source, now_ms, taken, used)
        })
        .map(|_| ())
    }

    fn entries(&self, store: &dyn SharedStore) -> Result<Vec<(BudgetKind, String)>, StoreError> {
        let Some((index, _)) = store.get(&self.index_key())? else {
            return Ok(Vec::new());
        };
        let text = String::from_utf8_lossy(&index);
        Ok(text
            .lines()
            .filter_map(|line| {
                let (kind, id) = line.split_once(' ')?;
                let kind = match kind {
                    "requests" => BudgetKind::Requests,
                    "tokens" => BudgetKind::Tokens,
                    _ => return None,
                };
                Some((kind, id.to_string()))
            })
            .collect())
    }
}

/// What the elected poller does in fleet mode: build the poll's body from every
/// record, and write an answer's grants into them.
#[derive(Debug, Clone)]
pub struct FleetPoller {
    books: FleetBooks,
    /// The Envoy's name (`node.id`, else `boot`).
    pub envoy: String,
    pub boot: String,
}

impl FleetPoller {
    pub fn new(books: FleetBooks, envoy: String, boot: String) -> Self {
        Self { books, envoy, boot }
    }

    /// The Envoy's boot id: drawn once per Envoy process (`seed`), kept in shared data
    /// so every worker and every configuration of the plugin names it alike.
    pub fn boot_id(store: &dyn SharedStore, prefix: &str, seed: u64) -> Result<String, StoreError> {
        let key = format!("{prefix}fleet.boot");
        create_if_missing(store, &key, format!("{seed:016x}").as_bytes())?;
        let Some((bytes, _)) = store.get(&key)? else {
            return Err(StoreError::Host("the boot id vanished".into()));
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The body of `POST /v1/fleet/poll` at `now_ms`, with the pools' demand for slots
    /// (`Pools::fleet_reports`).
    pub fn poll_body(
        &self,
        store: &dyn SharedStore,
        pools: BTreeMap<String, PoolReport>,
        now_ms: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let mut poll = FleetPoll {
            envoy: self.envoy.clone(),
            boot: self.boot.clone(),
            outage: self.books.mode.outage,
            poll_ms: self.books.mode.poll_ms,
            tenants: Default::default(),
            pools,
        };
        for (kind, id) in self.books.entries(store)? {
            let key = self.books.key(kind, &id);
            let read = update_record(store, &key, |record| {
                (record.report(now_ms), record.demand(now_ms), record.limit())
            })?;
            let Some((totals, demand, limit)) = read else {
                continue;
            };
            let report: &mut TenantReport = poll.tenants.entry(id).or_default();
            report.demand |= demand;
            match kind {
                BudgetKind::Requests => {
                    report.limits.requests_per_second = Some(limit.per_second);
                    report.limits.request_burst = Some(limit.burst);
                    report.requests = totals;
                }
                BudgetKind::Tokens => {
                    report.limits.tokens_per_minute = Some(limit.per_second * 60.0);
                    report.limits.token_burst = Some(limit.burst);
                    report.tokens = totals;
                }
            }
        }
        serde_json::to_vec(&poll).map_err(|e| StoreError::Host(e.to_string()))
    }

    /// Writes the grants of an answer that arrived at `now_ms`; returns its state.
    pub fn apply_answer(
        &self,
        store: &dyn SharedStore,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(FleetState, u32), String> {
        let answer: FleetAnswer =
            serde_json::from_slice(body).map_err(|e| format!("fleet answer: {e}"))?;
        let fleet = answer.fleet;
        let replicas = fleet.replicas.to_le_bytes();
        let key = self.books.replicas_key();
        if store.get(&key).map_err(|e| e.to_string())?.map(|(b, _)| b) != Some(replicas.to_vec()) {
            store
                .set(&key, &replicas, None)
                .map_err(|e| e.to_string())?;
        }
        for (id, leases) in &fleet.tenants {
            for (kind, wire) in [
                (BudgetKind::Requests, WireKind::Requests),
                (BudgetKind::Tokens, WireKind::Tokens),
            ] {
                let key = self.books.key(kind, id);
                let lease = leases.get(wire);
                update_record(store, &key, |record| {
                    record.apply(lease, fleet.state, fleet.replicas, now_ms)
                })
                .map_err(|e| e.to_string())?;
            }
        }
        Ok((fleet.state, fleet.replicas))
    }
}

/// The fleet's state as the polling worker sees it: the last answer's state, or the
/// outage mode once the sidecar has been silent for `stale_ms`. Logs each turn.
#[derive(Debug)]
pub struct FleetWatch {
    mode: FleetMode,
    started_ms: u64,
    answered_ms: u64,
    state: FleetState,
    replicas: u32,
    shown: Option<FleetState>,
}

impl FleetWatch {
    pub fn new(mode: FleetMode, now_ms: u64) -> Self {
        Self {
            mode,
            started_ms: now_ms,
            answered_ms: 0,
            state: FleetState::Exact,
            replicas: 1,
            shown: None,
        }
    }

    /// An answer arrived.
    pub fn answered(&mut self, state: FleetState, replicas: u32, now_ms: u64) {
        self.answered_ms = now_ms;
        self.state = state;
        self.replicas = replicas.max(1);
    }

    /// The state at `now_ms`: what the requests whose leases ran out follow.
    pub fn state(&self, now_ms: u64) -> FleetState {
        let heard_ms = self.answered_ms.max(self.started_ms);
        if now_ms.saturating_sub(heard_ms) > self.mode.stale_ms {
            FleetState::outage(self.mode.outage)
        } else {
            self.state
        }
    }

    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// The line to log when the state turned since the last call.
    pub fn turn(&mut self, now_ms: u64) -> Option<(Level, String)> {
        let state = self.state(now_ms);
        if self.shown == Some(state) {
            return None;
        }
        let first = self.shown.is_none();
        self.shown = Some(state);
        let silent = self.answered_ms.max(self.started_ms) + self.mode.stale_ms < now_ms;
        match state {
            FleetState::Exact if first => None,
            FleetState::Exact => Some((
                Level::Info,
                format!(
                    "fairgate: fleet budgets are exact again ({} replicas live)",
                    self.replicas
                ),
            )),
            other => Some((
                Level::Warn,
                format!(
                    "fairgate: fleet budgets unreachable ({}): once its leases run out each \
                     budget follows outage mode {:?}, {} replicas last seen",
                    if silent {
                        "the sidecar does not answer"
                    } else {
                        "the sidecar cannot reach Redis"
                    },
                    other.as_str(),
                    self.replicas
                ),
            )),
        }
    }
}

/// `fg_fleet_state`: 0 exact, 1 safe, 2 open, 3 closed.
pub fn state_gauge(state: FleetState) -> u64 {
    u64::from(state_byte(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use fairgate_wire::fleet::{FleetGrants, Grant, Lease, TenantLeases};
    use fairgate_wire::Headroom;
    use wasm_bindgen_test::wasm_bindgen_test;

    const MODE: FleetMode = FleetMode {
        outage: OutageMode::Safe,
        poll_ms: 500,
        stale_ms: 3000,
    };
    const LIMIT: RateLimit = RateLimit {
        per_second: 10.0,
        burst: 20.0,
    };

    struct Envoy {
        store: MemoryStore,
        books: FleetBooks,
        poller: FleetPoller,
    }

    impl Envoy {
        fn new(mode: FleetMode) -> Self {
            let books = FleetBooks::new("p:", mode);
            let poller = FleetPoller::new(books.clone(), "gw-a".into(), "b1".into());
            Self {
                store: MemoryStore::new(),
                books,
                poller,
            }
        }

        fn take(&self, kind: BudgetKind, now_ms: u64, want: f64) -> Taken {
            let (s, b) = (&self.store, &self.books);
            b.take(s, kind, "acme", &LIMIT, now_ms, want, None)
                .unwrap()
                .unwrap()
        }

        fn record(&self, kind: BudgetKind) -> Allowance {
            let (bytes, _) = self
                .store
                .get(&self.books.key(kind, "acme"))
                .unwrap()
                .unwrap();
            Allowance::decode(&bytes).unwrap()
        }

        fn poll(&self, now_ms: u64) -> FleetPoll {
            let body = self
                .poller
                .poll_body(&self.store, BTreeMap::new(), now_ms)
                .unwrap();
            serde_json::from_slice(&body).unwrap()
        }

        /// Answers with `grants` of requests for acme, in `state`.
        fn answer(&self, now_ms: u64, state: FleetState, grants: &[(u64, u64)], ttl: u64) {
            let lease = Lease {
                grants: grants
                    .iter()
                    .map(|&(seq, amount)| Grant { seq, amount })
                    .collect(),
                expires_in_ms: ttl,
            };
            let mut tenants = std::collections::BTreeMap::new();
            tenants.insert(
                "acme".to_string(),
                TenantLeases {
                    requests: Some(lease.clone()),
                    tokens: Some(lease),
                },
            );
            let answer = FleetAnswer {
                headroom: Headroom {
                    version: 1,
                    generated_at_ms: 0,
                    source: "sim".into(),
                    clusters: Default::default(),
                },
                fleet: FleetGrants {
                    state,
                    replicas: 4,
                    sidecar: "s".into(),
                    tenants,
                    pools: BTreeMap::new(),
                },
            };
            let body = serde_json::to_vec(&answer).unwrap();
            self.poller
                .apply_answer(&self.store, &body, now_ms)
                .unwrap();
        }
    }

    fn admitted(t: Taken) -> Option<(f64, Source)> {
        match t {
            Taken::Admitted { amount, source } => Some((amount, source)),
            _ => None,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_record_survives_its_encoding_and_garbage_is_no_record() {
        let mut r = Allowance::new(&LIMIT, true, 7);
        r.allowance = 3;
        r.state = FleetState::Closed;
        r.local.updated_ms = 9;
        assert_eq!(Allowance::decode(&r.encode()), Some(r));
        assert_eq!(Allowance::decode(b"garbage"), None);
        let mut long = r.encode();
        long.push(0);
        assert_eq!(Allowance::decode(&long), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn grants_are_spent_once_and_reported_as_totals() {
        let envoy = Envoy::new(MODE);
        let ensured =
            envoy
                .books
                .ensure(&envoy.store, BudgetKind::Requests, "acme", &LIMIT, true, 0);
        assert_eq!(ensured, Ok(true));
        let poll = envoy.poll(0);
        let acme = &poll.tenants["acme"];
        assert!(acme.demand, "a configured tenant always asks");
        assert_eq!(acme.limits.requests_per_second, Some(10.0));
        // Before its first grant a request waits one poll.
        match envoy.take(BudgetKind::Requests, 10, 1.0) {
            Taken::Limited { retry_after_ms, .. } => assert_eq!(retry_after_ms, 500),
            t => panic!("{t:?}"),
        }
        envoy.answer(20, FleetState::Exact, &[(1, 3)], 1500);
        envoy.answer(30, FleetState::Exact, &[(1, 3)], 1500); // repeated: skipped
        for _ in 0..3 {
            assert_eq!(
                admitted(envoy.take(BudgetKind::Requests, 40, 1.0)),
                Some((1.0, Source::Lease))
            );
        }
        assert!(matches!(
            envoy.take(BudgetKind::Requests, 40, 1.0),
            Taken::Limited { .. }
        ));
        let report = envoy.poll(50).tenants["acme"].requests;
        assert_eq!((report.spent, report.applied, report.needed), (3, 1, 1));
        assert_eq!(
            envoy.poll(60).tenants["acme"].requests.needed,
            0,
            "needed is per poll"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn what_a_lease_holds_at_expiry_is_reported_expired() {
        let envoy = Envoy::new(MODE);
        envoy
            .books
            .ensure(&envoy.store, BudgetKind::Requests, "acme", &LIMIT, true, 0)
            .unwrap();
        envoy.answer(0, FleetState::Exact, &[(1, 5)], 1000);
        envoy.take(BudgetKind::Requests, 100, 1.0);
        let report = envoy.poll(1000).tenants["acme"].requests;
        assert_eq!((report.spent, report.expired), (1, 4));
        assert_eq!(envoy.record(BudgetKind::Requests).allowance, 0);
        // A later grant with a new lease serves again.
        envoy.answer(1100, FleetState::Exact, &[(2, 2)], 1000);
        assert!(admitted(envoy.take(BudgetKind::Requests, 1200, 1.0)).is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn tokens_count_as_spent_when_settled_and_overuse_is_debt() {
        let envoy = Envoy::new(MODE);
        let (s, b) = (&envoy.store, &envoy.books);
        b.ensure(s, BudgetKind::Tokens, "acme", &LIMIT, true, 0)
            .unwrap();
        envoy.answer(0, FleetState::Exact, &[(1, 200)], 1000);
        let (taken, source) = admitted(envoy.take(BudgetKind::Tokens, 10, 100.0)).unwrap();
        assert_eq!(
            envoy.record(BudgetKind::Tokens).spent,
            0,
            "reserved, not spent"
        );
        b.settle(s, BudgetKind::Tokens, "acme", source, 20, taken as u64, 30)
            .unwrap();
        let r = envoy.record(BudgetKind::Tokens);
        assert_eq!((r.spent, r.allowance), (30, 170));
        // An answer of 250 on a reservation of 100: 150 more, 170 there.
        let (taken, source) = admitted(envoy.take(BudgetKind::Tokens, 30, 100.0)).unwrap();
        b.settle(s, BudgetKind::Tokens, "acme", source, 40, taken as u64, 250)
            .unwrap();
        let r = envoy.record(BudgetKind::Tokens);
        // 70 of the 150 beyond it from the allowance, 80 a debt.
        assert_eq!((r.spent, r.allowance, r.debt), (200, 0, 80));
        let (taken, source) = (0.0, Source::Lease);
        b.settle(s, BudgetKind::Tokens, "acme", source, 50, taken as u64, 40)
            .unwrap();
        let r = envoy.record(BudgetKind::Tokens);
        assert_eq!(r.debt, 120);
        // The books balance: granted = allowance + spent + expired.
        assert_eq!(r.allowance + r.spent + r.expired, 200);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_clamped_take_gets_what_the_lease_holds() {
        let envoy = Envoy::new(MODE);
        let (s, b) = (&envoy.store, &envoy.books);
        b.ensure(s, BudgetKind::Tokens, "acme", &LIMIT, true, 0)
            .unwrap();
        envoy.answer(0, FleetState::Exact, &[(1, 60)], 1000);
        let t = b.take(s, BudgetKind::Tokens, "acme", &LIMIT, 1, 100.0, Some(50.0));
        assert_eq!(
            t.map(|t| t.and_then(admitted)),
            Ok(Some((60.0, Source::Lease)))
        );
        let t = b.take(s, BudgetKind::Tokens, "acme", &LIMIT, 1, 100.0, Some(50.0));
        assert!(matches!(t, Ok(Some(Taken::Limited { .. }))));
        assert_eq!(envoy.poll(2).tenants["acme"].tokens.needed, 50);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn outages_follow_the_mode_once_the_lease_runs_out() {
        for (outage, expect) in [
            (OutageMode::Safe, "safe"),
            (OutageMode::Open, "open"),
            (OutageMode::Closed, "closed"),
        ] {
            let envoy = Envoy::new(FleetMode { outage, ..MODE });
            let (s, b) = (&envoy.store, &envoy.books);
            b.ensure(s, BudgetKind::Requests, "acme", &LIMIT, true, 0)
                .unwrap();
            envoy.answer(0, FleetState::outage(outage), &[(1, 2)], 1000);
            // The lease is spent first, whatever the state.
            assert_eq!(
                admitted(envoy.take(BudgetKind::Requests, 10, 1.0)).map(|a| a.1),
                Some(Source::Lease)
            );
            // Then the mode: safe holds 1/4 of the burst (20 / 4 replicas).
            let mut served = 0;
            for _ in 0..100 {
                match envoy.take(BudgetKind::Requests, 1000, 1.0) {
                    Taken::Admitted { .. } => served += 1,
                    Taken::Limited { .. } => {}
                    Taken::Unavailable { retry_after_ms } => assert!(retry_after_ms >= 1000),
                }
            }
            let want = match expect {
                "safe" => 5,
                "open" => 100,
                _ => 0,
            };
            assert_eq!(served, want, "{expect}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_silent_sidecar_is_an_outage_after_stale_ms_and_exact_returns_with_a_grant() {
        let envoy = Envoy::new(FleetMode {
            outage: OutageMode::Closed,
            ..MODE
        });
        let (s, b) = (&envoy.store, &envoy.books);
        b.ensure(s, BudgetKind::Requests, "acme", &LIMIT, true, 0)
            .unwrap();
        envoy.answer(0, FleetState::Exact, &[(1, 1)], 1500);
        envoy.take(BudgetKind::Requests, 10, 1.0);
        assert!(
            matches!(
                envoy.take(BudgetKind::Requests, 2000, 1.0),
                Taken::Limited { .. }
            ),
            "waiting"
        );
        assert!(matches!(
            envoy.take(BudgetKind::Requests, 3010, 1.0),
            Taken::Unavailable { .. }
        ));
        envoy.answer(3100, FleetState::Exact, &[(2, 1)], 1500);
        assert!(admitted(envoy.take(BudgetKind::Requests, 3200, 1.0)).is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unlisted_tenant_is_listed_by_its_first_request_and_asks_while_it_sends() {
        let envoy = Envoy::new(MODE);
        assert!(matches!(
            envoy.take(BudgetKind::Requests, 0, 1.0),
            Taken::Limited { .. }
        ));
        let poll = envoy.poll(10);
        assert!(poll.tenants["acme"].demand);
        assert!(!envoy.poll(DEMAND_MS + 10).tenants["acme"].demand, "idle");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_boot_id_is_drawn_once_per_store() {
        let store = MemoryStore::new();
        let a = FleetPoller::boot_id(&store, "p:", 1).unwrap();
        let b = FleetPoller::boot_id(&store, "p:", 2).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, "0000000000000001");
    }
}
