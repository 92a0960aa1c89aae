//! Per-VM cache of verified tokens, so an RS256 token costs ~2 ms once, not per request.
//!
//! Keyed by a 128-bit keyed SipHash of the whole token: the key is drawn at random per
//! VM, so a client cannot craft a token that collides with another tenant's entry.
//! An entry is valid until the token's `exp` (plus the verification leeway), never
//! longer than `max_ttl_s`.
//!
//! Eviction is two-generation LRU approximation: new and recently hit entries live
//! in `hot`; when `hot` holds `capacity / 2` entries it becomes `cold` and the old
//! `cold` is dropped; a hit in `cold` is promoted back to `hot`. Lookups and inserts
//! are O(1), memory is bounded by `capacity` entries, and an entry used at least
//! once per `capacity / 2` insertions is never evicted.

use std::hash::Hasher;
use std::rc::Rc;

use hashbrown::HashMap;
use siphasher::sip128::{Hasher128, SipHasher13};

#[derive(Debug, Clone)]
struct Entry {
    tenant: Rc<str>,
    valid_until_s: u64,
}

/// A bounded cache of tokens already verified, per VM.
#[derive(Debug)]
pub struct VerifiedTokenCache {
    hot: HashMap<u128, Entry>,
    cold: HashMap<u128, Entry>,
    generation_size: usize,
    sip_keys: (u64, u64),
}

impl VerifiedTokenCache {
    /// A cache of at most `capacity` tokens; `seed` keys the hash (draw it at random).
    pub fn new(capacity: usize, seed: [u8; 16]) -> Self {
        let generation_size = capacity.div_ceil(2);
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&seed[..8]);
        k1.copy_from_slice(&seed[8..]);
        Self {
            hot: HashMap::with_capacity(generation_size.min(1024)),
            cold: HashMap::new(),
            generation_size,
            sip_keys: (u64::from_le_bytes(k0), u64::from_le_bytes(k1)),
        }
    }

    fn key(&self, token: &str) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.sip_keys.0, self.sip_keys.1);
        h.write(token.as_bytes());
        h.finish128().as_u128()
    }

    /// The tenant of `token` if it was verified before and is still valid at `now_s`.
    pub fn get(&mut self, token: &str, now_s: u64) -> Option<Rc<str>> {
        if self.generation_size == 0 {
            return None;
        }
        let key = self.key(token);
        if let Some(entry) = self.hot.get(&key) {
            if now_s <= entry.valid_until_s {
                return Some(entry.tenant.clone());
            }
            self.hot.remove(&key);
            return None;
        }
        let entry = self.cold.remove(&key)?;
        if now_s > entry.valid_until_s {
            return None;
        }
        let tenant = entry.tenant.clone();
        self.insert_entry(key, entry);
        Some(tenant)
    }

    /// Remembers that `token` was verified for `tenant` until `valid_until_s`.
    pub fn insert(&mut self, token: &str, tenant: Rc<str>, valid_until_s: u64) {
        if self.generation_size == 0 {
            return;
        }
        let key = self.key(token);
        self.insert_entry(
            key,
            Entry {
                tenant,
                valid_until_s,
            },
        );
    }

    fn insert_entry(&mut self, key: u128, entry: Entry) {
        if self.hot.len() >= self.generation_size && !self.hot.contains_key(&key) {
            self.cold = std::mem::take(&mut self.hot);
            self.cold.remove(&key);
        }
        self.hot.insert(key, entry);
    }

    /// Entries held now (both generations).
    pub fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn cache(capacity: usize) -> VerifiedTokenCache {
        VerifiedTokenCache::new(capacity, [7; 16])
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_verified_token_is_served_from_the_cache_until_it_expires() {
        let mut c = cache(8);
        c.insert("tok-a", Rc::from("acme"), 100);
        assert_eq!(c.get("tok-a", 50).as_deref(), Some("acme"));
        assert_eq!(c.get("tok-a", 100).as_deref(), Some("acme"));
        assert_eq!(c.get("tok-a", 101), None);
        assert!(c.is_empty(), "an expired entry is dropped when seen");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unknown_token_misses() {
        let mut c = cache(8);
        c.insert("tok-a", Rc::from("acme"), 100);
        assert_eq!(c.get("tok-b", 50), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_cache_never_holds_more_than_its_capacity() {
        let mut c = cache(10);
        for i in 0..1000 {
            c.insert(&format!("tok-{i}"), Rc::from("t"), 1000);
            assert!(c.len() <= 10, "len {} after {i} inserts", c.len());
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_in_steady_use_survives_a_stream_of_new_tokens() {
        let mut c = cache(10);
        c.insert("hot", Rc::from("acme"), 1000);
        for i in 0..200 {
            c.insert(&format!("tok-{i}"), Rc::from("t"), 1000);
            if i % 4 == 0 {
                assert_eq!(c.get("hot", 1).as_deref(), Some("acme"), "lost at {i}");
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_zero_capacity_cache_stores_nothing() {
        let mut c = cache(0);
        c.insert("tok", Rc::from("acme"), 100);
        assert_eq!(c.get("tok", 1), None);
    }
}
