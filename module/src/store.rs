//! The core's `SharedStore` and `Clock` for the native host.
//!
//! Envoy loads the module once per process, so a static is shared by every worker
//! thread: the store is one map behind a mutex, held only to copy a value in or out
//! (nanoseconds), with the semantics of proxy-wasm shared data that the core's
//! compare-and-swap loop expects: every write gets a new version, a write to an
//! existing key with a stale version is refused, a write to a missing key succeeds
//! whatever version it names. Budgets keyed by tenant therefore hold for the whole
//! Envoy, as in the wasm module.
//!
//! Pools need no encoding natively: `ProcessPools` keeps each pool's `PoolState`
//! itself in one process-wide map, updated in place under its mutex.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use fairgate_core::clock::Clock;
use fairgate_core::fair_queue::{PoolState, Updated};
use fairgate_core::host::{Level, PoolHost};
use fairgate_core::store::{SharedStore, StoreError, Versioned};

use crate::wake;

#[derive(Default)]
struct Entries {
    values: HashMap<String, (Vec<u8>, u32)>,
    last_version: u32,
}

static ENTRIES: Mutex<Option<Entries>> = Mutex::new(None);

/// The process-wide store.
pub struct ProcessStore;

fn poisoned() -> StoreError {
    StoreError::Host("the process store's lock was poisoned by a panic".to_string())
}

impl SharedStore for ProcessStore {
    fn get(&self, key: &str) -> Result<Versioned, StoreError> {
        let entries = ENTRIES.lock().map_err(|_| poisoned())?;
        Ok(entries.as_ref().and_then(|e| e.values.get(key).cloned()))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut guard = ENTRIES.lock().map_err(|_| poisoned())?;
        let entries = guard.get_or_insert_with(Entries::default);
        let version = entries.last_version.wrapping_add(1).max(1);
        match entries.values.get_mut(key) {
            Some(slot) if matches!(cas, Some(c) if c != 0 && c != slot.1) => {
                return Err(StoreError::CasMismatch);
            }
            Some(slot) => *slot = (value.to_vec(), version),
            None => {
                entries
                    .values
                    .insert(key.to_string(), (value.to_vec(), version));
            }
        }
        entries.last_version = version;
        Ok(())
    }
}

/// The pools of each key prefix (each plugin name); a configuration update keeps
/// its prefix, and so its pools and the slots held in them.
static POOLS: Mutex<Option<HashMap<String, Arc<Mutex<PoolMap>>>>> = Mutex::new(None);

type PoolMap = hashbrown::HashMap<String, PoolState>;

/// The pools of one filter configuration (its key prefix), in process-wide state.
pub struct ProcessPools {
    pools: Arc<Mutex<PoolMap>>,
}

impl ProcessPools {
    /// The pools under `prefix`, shared with every configuration of that prefix.
    pub fn new(prefix: &str) -> Self {
        let mut all = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        let pools = all
            .get_or_insert_with(HashMap::new)
            .entry(prefix.to_string())
            .or_default()
            .clone();
        Self { pools }
    }
}

impl PoolHost for ProcessPools {
    fn update_pool<T>(
        &self,
        pool: &str,
        mut op: impl FnMut(&mut PoolState) -> T,
    ) -> Result<Updated<T>, StoreError> {
        let mut pools = self.pools.lock().map_err(|_| poisoned())?;
        let value = match pools.get_mut(pool) {
            Some(state) => op(state),
            None => op(pools.entry(pool.to_string()).or_default()),
        };
        Ok(Updated { value, reset: None })
    }

    fn send_wake(&self, vm: u32, context: u32) -> bool {
        wake::wake(vm, context)
    }

    fn log(&self, level: Level, message: &str) {
        crate::log(level, message);
    }
}

/// The system clock (a vDSO read: no reason to cache a recent reading natively).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_version_is_refused_and_a_missing_key_is_written_whatever_its_version() {
        let store = ProcessStore;
        let key = "test:store.cas";
        store.set(key, b"a", Some(12345)).unwrap();
        let (value, version) = store.get(key).unwrap().unwrap();
        assert_eq!(value, b"a");
        store.set(key, b"b", Some(version)).unwrap();
        assert_eq!(
            store.set(key, b"c", Some(version)),
            Err(StoreError::CasMismatch)
        );
        assert_eq!(store.get(key).unwrap().unwrap().0, b"b");
    }
}
