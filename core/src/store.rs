//! Shared state across worker VMs: the `SharedStore` trait over proxy-wasm shared data,
//! and a compare-and-swap update loop on top of it.
//!
//! proxy-wasm shared data is a per-process key/value map where every value carries a
//! CAS version. `cas_update` reads a value, computes the new one, and writes it only
//! if the version is unchanged, retrying a bounded number of times.
//!
//! A missing key has no version, and the host writes a missing key whatever `cas` it
//! is given, but checks `cas` against an existing one. So `cas_update` creates a key
//! with a write conditional on a version that no existing key can have: the host
//! gives every write a new version from one process-wide counter, so the version of
//! the last write to a guard key (`CREATE_GUARD_KEY`, written just before) belongs to
//! that write alone. If another worker created the key in the meantime, the create
//! fails with a CAS mismatch instead of overwriting it, and the loop reads the key
//! again: no update is lost while a key is first created. (The counter is 32 bits: a
//! key would have to be created at the very moment another key was last written
//! exactly 2^32 writes after the guard, which is out of reach in practice.)
//! `MemoryStore` is an in-process store with the host's exact semantics, for tests.

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

/// Written (unconditionally) before each key is created, for its fresh version; its
/// value means nothing. One key for every plugin that shares the shared-data map.
pub const CREATE_GUARD_KEY: &str = "fairgate:create-guard";

/// Creates `key` with `value` unless it exists (then leaves it alone), even when
/// another worker creates it at the same moment.
pub fn create_if_missing<S>(store: &S, key: &str, value: &[u8]) -> Result<(), StoreError>
where
    S: SharedStore + ?Sized,
{
    store.set(CREATE_GUARD_KEY, b"guard", None)?;
    let Some((_, fresh)) = store.get(CREATE_GUARD_KEY)? else {
        return Err(StoreError::Host("the create guard key vanished".into()));
    };
    match store.set(key, value, Some(fresh)) {
        Ok(()) | Err(StoreError::CasMismatch) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What an update function decides for the current value.
pub enum Update<T> {
    /// Store this value (under CAS) and return `T`.
    Write(Vec<u8>, T),
    /// Leave the value alone and return `T` (no write: one host call saved).
    Keep(T),
}

/// Applies `f` to the value at `key` under compare-and-swap. A missing key is first
/// created with `initial` (unless another worker creates it first); `f` always sees
/// an existing value.
pub fn cas_update<S, T, F>(store: &S, key: &str, initial: &[u8], mut f: F) -> Result<T, StoreError>
where
    S: SharedStore + ?Sized,
    F: FnMut(&[u8]) -> Update<T>,
{
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some((value, cas)) = store.get(key)? else {
            create_if_missing(store, key, initial)?;
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

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
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

    /// A racing store that starts empty and loses `races` races.
    fn racing(races: u32) -> RacingStore {
        RacingStore {
            inner: MemoryStore::new(),
            races: Cell::new(races),
        }
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
        let store = racing(0);
        assert_eq!(counter_increment(&store), Ok(1));
        store.races.set(5);
        // 5 concurrent increments land between our reads; ours comes last.
        assert_eq!(counter_increment(&store), Ok(7));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_key_another_worker_creates_and_updates_first_keeps_that_update() {
        let store = racing(1);
        // Our read finds no key; before our create, the other worker creates it and
        // counts 1. Our create must not reset it to 0: ours counts 2.
        assert_eq!(counter_increment(&store), Ok(2));
        assert_eq!(counter_increment(&store.inner), Ok(3));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn creating_a_key_never_overwrites_an_existing_one() {
        let store = MemoryStore::new();
        store.set("k", b"theirs", None).unwrap();
        create_if_missing(&store, "k", b"ours").unwrap();
        assert_eq!(store.get("k").unwrap().unwrap().0, b"theirs");
        create_if_missing(&store, "fresh", b"ours").unwrap();
        assert_eq!(store.get("fresh").unwrap().unwrap().0, b"ours");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn endless_contention_gives_up_after_a_bounded_number_of_attempts() {
        let store = racing(u32::MAX);
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
