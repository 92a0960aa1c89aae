//! Time, behind a trait so that logic is driven by hand in tests.

use std::cell::Cell;

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock {
    fn now_ms(&self) -> u64;

    /// A reading that may be somewhat older than `now_ms` (in the filter, up to a
    /// tick: the last reading this VM took), for what a few milliseconds do not
    /// change: a token's `exp` and `nbf` (whole seconds), whether a lease is still
    /// held. It costs the filter no host call, where `now_ms` costs one.
    fn recent_ms(&self) -> u64 {
        self.now_ms()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: Cell<u64>,
}

impl ManualClock {
    pub fn at(now_ms: u64) -> Self {
        Self {
            now_ms: Cell::new(now_ms),
        }
    }

    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
}
