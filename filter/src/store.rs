//! Shared state across worker VMs: the `SharedStore` trait over proxy-wasm shared data,
//! and a compare-and-swap update loop on top of it.
//!
//! proxy-wasm shared data is a per-process key/value map where every value carries a
//! CAS version. `cas_update` reads a value, computes the new one, and writes it only
//! if the version is unchanged, retrying a bounded number of times. A missing key
//! has no version, so its first write cannot be conditional: `cas_update` first
//! creates the key with the caller's initial value (the same value whoever writes
//! it, e.g. a full bucket), reads it back, and only then applies the change under
//! CAS. What remains is a window of two back-to-back host calls: a worker that found
//! the key missing and re-creates it just after another worker created *and* updated
//! it undoes that one update. It can happen only while a key is first created, at
//! most once per worker; the glue narrows it further by creating the keys of every
//! configured tenant when the plugin is configured, before traffic flows.
//! `MemoryStore` is an in-process store with Envoy's exact semantics, for tests.

use std::cell::RefCell;
use std::collections::HashMap;

/// Why a shared-store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The value changed since it was read.
    CasMismatch,
    /// The host refused the operation.
    Host(String),
    /// Too many concurrent writers: the bounded retry loop gave up.
    Contended { attempts: u32 },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CasMismatch => f.write_str("shared data changed concurrently"),
            Self::Host(e) => write!(f, "shared data error: {e}"),
            Self::Contended { attempts } => {
                write!(f, "shared data still contended after {attempts} attempts")
            }
        }
    }
}

/// A value and its CAS version; `None` when the key does not exist.
pub type Versioned = Option<(Vec<u8>, u32)>;

/// The process-wide key/value store shared by all worker VMs.
pub trait SharedStore {
    fn get(&self, key: &str) -> Result<Versioned, StoreError>;
    /// Writes `value` if the key's version is still `cas`; `None` writes unconditionally.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// How many times `cas_update` tries before giving up.
pub const MAX_CAS_ATTEMPTS: u32 = 64;

/// What an update function decides for the current value.
pub enum Update<T> {
    /// Store this value (under CAS) and return `T`.
    Write(Vec<u8>, T),
    /// Leave the value alone and return `T` (no write: one host call saved).
    Keep(T),
}

/// Applies `f` to the value at `key` under compare-and-swap. A missing key is first
/// created with `initial`; `f` always sees an existing value.
pub fn cas_update<S, T, F>(store: &S, key: &str, initial: &[u8], mut f: F) -> Result<T, StoreError>
where
    S: SharedStore + ?Sized,
    F: FnMut(&[u8]) -> Update<T>,
{
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some((value, cas)) = store.get(key)? else {
            store.set(key, initial, None)?;
            continue;
        };
        match f(&value) {
            Update::Keep(out) => return Ok(out),
            Update::Write(new, out) => match store.set(key, &new, Some(cas)) {
                Ok(()) => return Ok(out),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            },
        }
    }
    Err(StoreError::Contended {
        attempts: MAX_CAS_ATTEMPTS,
    })
}

/// An in-process store with the host's semantics: versions start at 1 and grow
/// with every write; writing a missing key ignores `cas`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: std::cell::Cell<u32>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Versioned, StoreError> {
        Ok(self.map.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut map = self.map.borrow_mut();
        let version = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(version);
        match map.get_mut(key) {
            Some(slot) => {
                if matches!(cas, Some(c) if c != 0 && c != slot.1) {
                    return Err(StoreError::CasMismatch);
                }
                *slot = (value.to_vec(), version);
            }
            None => {
                map.insert(key.to_string(), (value.to_vec(), version));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn counter_increment(store: &dyn SharedStore) -> Result<u64, StoreError> {
        cas_update(store, "n", &0u64.to_le_bytes(), |v| {
            let n = u64::from_le_bytes(v.try_into().unwrap_or([0; 8])) + 1;
            Update::Write(n.to_le_bytes().to_vec(), n)
        })
    }

    /// A store where another "worker" writes between this worker's read and write,
    /// `races` times, as a second VM would.
    struct RacingStore {
        inner: MemoryStore,
        races: Cell<u32>,
    }

    impl SharedStore for RacingStore {
        fn get(&self, key: &str) -> Result<Versioned, StoreError> {
            let got = self.inner.get(key)?;
            if self.races.get() > 0 {
                self.races.set(self.races.get() - 1);
                counter_increment(&self.inner)?;
            }
            Ok(got)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            self.inner.set(key, value, cas)
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_missing_key_is_created_then_updated() {
        let store = MemoryStore::new();
        assert_eq!(counter_increment(&store), Ok(1));
        assert_eq!(counter_increment(&store), Ok(2));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_lost_race_is_retried_and_no_update_is_lost() {
        let store = RacingStore {
            inner: MemoryStore::new(),
            races: Cell::new(0),
        };
        assert_eq!(counter_increment(&store), Ok(1));
        store.races.set(5);
        // 5 concurrent increments land between our reads; ours comes last.
        assert_eq!(counter_increment(&store), Ok(7));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn endless_contention_gives_up_after_a_bounded_number_of_attempts() {
        let store = RacingStore {
            inner: MemoryStore::new(),
            races: Cell::new(u32::MAX),
        };
        assert_eq!(
            counter_increment(&store),
            Err(StoreError::Contended {
                attempts: MAX_CAS_ATTEMPTS
            })
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keep_writes_nothing() {
        let store = MemoryStore::new();
        store.set("k", b"v", None).unwrap();
        let before = store.get("k").unwrap();
        let out = cas_update(&store, "k", b"init", |_| Update::Keep(7)).unwrap();
        assert_eq!(out, 7);
        assert_eq!(store.get("k").unwrap(), before);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_stale_version_is_refused() {
        let store = MemoryStore::new();
        store.set("k", b"a", None).unwrap();
        let (_, cas) = store.get("k").unwrap().unwrap();
        store.set("k", b"b", Some(cas)).unwrap();
        assert_eq!(
            store.set("k", b"c", Some(cas)),
            Err(StoreError::CasMismatch)
        );
    }
}
