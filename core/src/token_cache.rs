//! Per-VM cache of verified tokens, so an RS256 token costs ~2 ms once, not per request.
//! It holds what verification established (`identity::Identity`: the tenant and the
//! policy its token carries, already parsed), so a repeated token is parsed no more.
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
//!
//! In front of it, `RECENT_SLOTS` recently used tokens (up to `RECENT_MAX_BYTES`
//! each) are kept whole in a direct-mapped memo and compared byte for byte: a hit
//! there skips the keyed hash of the whole token, the most expensive step of a cache
//! hit (`core/examples/hot_path.rs`).

use std::hash::Hasher;
use std::rc::Rc;

use hashbrown::HashMap;
use siphasher::sip128::{Hasher128, SipHasher13};

#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    valid_until_s: u64,
}

/// Slots of the memo of recent tokens.
const RECENT_SLOTS: usize = 64;

/// Longer tokens skip the memo (it holds at most `RECENT_SLOTS` × this many bytes).
const RECENT_MAX_BYTES: usize = 2048;

/// A token held whole, so that a hit is an exact match; with its cache key and the
/// generation of `hot` it was last seen in, so that a hit keeps the LRU order
/// without hashing the token.
#[derive(Debug)]
struct Recent<V> {
    token: Box<str>,
    key: u128,
    entry: Entry<V>,
    generation: u64,
}

/// The memo slot of `token`, from its length and last bytes (a JWT's signature:
/// as good as random for distinct tokens). `None` for a token too long to memo.
fn recent_slot(token: &str) -> Option<usize> {
    let bytes = token.as_bytes();
    if bytes.len() > RECENT_MAX_BYTES {
        return None;
    }
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    let mix = tail.iter().fold(bytes.len() as u64, |h, b| {
        h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(*b))
    });
    Some((mix % RECENT_SLOTS as u64) as usize)
}

/// A bounded cache of tokens already verified, per VM, each with what its
/// verification established (`V`, cheap to clone).
#[derive(Debug)]
pub struct VerifiedTokenCache<V = Rc<str>> {
    hot: HashMap<u128, Entry<V>>,
    cold: HashMap<u128, Entry<V>>,
    generation_size: usize,
    sip_keys: (u64, u64),
    recent: Vec<Option<Recent<V>>>,
    /// Counts the times `hot` became `cold`.
    generation: u64,
}

impl<V: Clone> VerifiedTokenCache<V> {
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
            recent: (0..RECENT_SLOTS).map(|_| None).collect(),
            generation: 0,
        }
    }

    /// Forgets every token (the signing keys changed: a token verified with a key
    /// that is gone must be checked again).
    pub fn clear(&mut self) {
        self.hot.clear();
        self.cold.clear();
        for slot in &mut self.recent {
            *slot = None;
        }
    }

    /// Memos `token`, whose entry is in `hot` now.
    fn remember(&mut self, token: &str, key: u128, entry: &Entry<V>) {
        if let Some(slot) = recent_slot(token) {
            self.recent[slot] = Some(Recent {
                token: token.into(),
                key,
                entry: entry.clone(),
                generation: self.generation,
            });
        }
    }

    /// A memo hit on `slot`: its entry moves back to `hot` if it has left it, as a
    /// hit in the cache itself would.
    fn refresh(&mut self, slot: usize) {
        let Some((key, entry)) = self.recent[slot]
            .as_ref()
            .filter(|r| r.generation != self.generation)
            .map(|r| (r.key, r.entry.clone()))
        else {
            return;
        };
        if !self.hot.contains_key(&key) {
            let entry = self.cold.remove(&key).unwrap_or(entry);
            self.insert_entry(key, entry);
        }
        if let Some(recent) = self.recent[slot].as_mut() {
            recent.generation = self.generation;
        }
    }

    fn key(&self, token: &str) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.sip_keys.0, self.sip_keys.1);
        h.write(token.as_bytes());
        h.finish128().as_u128()
    }

    /// What `token` established if it was verified before and is still valid at
    /// `now_s`.
    pub fn get(&mut self, token: &str, now_s: u64) -> Option<V> {
        if self.generation_size == 0 {
            return None;
        }
        if let Some(slot) = recent_slot(token) {
            let hit = self.recent[slot]
                .as_ref()
                .filter(|r| *r.token == *token)
                .map(|r| (now_s <= r.entry.valid_until_s).then(|| r.entry.value.clone()));
            match hit {
                Some(Some(value)) => {
                    self.refresh(slot);
                    return Some(value);
                }
                // Expired: forgotten here, and below when the cache sees it.
                Some(None) => self.recent[slot] = None,
                None => {}
            }
        }
        let key = self.key(token);
        if let Some(entry) = self.hot.get(&key) {
            if now_s <= entry.valid_until_s {
                let entry = entry.clone();
                self.remember(token, key, &entry);
                return Some(entry.value);
            }
            self.hot.remove(&key);
            return None;
        }
        let entry = self.cold.remove(&key)?;
        if now_s > entry.valid_until_s {
            return None;
        }
        let value = entry.value.clone();
        self.insert_entry(key, entry.clone());
        self.remember(token, key, &entry);
        Some(value)
    }

    /// Remembers that `token` was verified, establishing `value`, until
    /// `valid_until_s`.
    pub fn insert(&mut self, token: &str, value: V, valid_until_s: u64) {
        if self.generation_size == 0 {
            return;
        }
        let key = self.key(token);
        let entry = Entry {
            value,
            valid_until_s,
        };
        self.insert_entry(key, entry.clone());
        self.remember(token, key, &entry);
    }

    fn insert_entry(&mut self, key: u128, entry: Entry<V>) {
        if self.hot.len() >= self.generation_size && !self.hot.contains_key(&key) {
            self.cold = std::mem::take(&mut self.hot);
            self.cold.remove(&key);
            self.generation += 1;
        }
        self.hot.insert(key, entry);
    }

    /// Entries held now (both generations; the memo only repeats some of them).
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

    fn cache(capacity: usize) -> VerifiedTokenCache<Rc<str>> {
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
    fn the_memo_answers_only_the_exact_token_and_only_until_it_expires() {
        let mut c = cache(8);
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnQiOiJhY21lIn0.c2lnbmF0dXJlLWJ5dGVz";
        c.insert(token, Rc::from("acme"), 100);
        assert_eq!(c.get(token, 50).as_deref(), Some("acme"));
        // Same length and the same last bytes (the same memo slot), one byte off.
        let forged = token.replacen("eyJ0", "eyJ1", 1);
        assert_eq!(recent_slot(&forged), recent_slot(token));
        assert_eq!(c.get(&forged, 50), None, "a near-copy is not a hit");
        assert_eq!(c.get(token, 101), None, "expired in the memo too");
        assert_eq!(c.get(token, 50), None, "and dropped from both");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn tokens_sharing_a_memo_slot_are_both_still_served() {
        let mut c = cache(64);
        // Same length and last bytes: the same slot; each evicts the other there.
        let (a, b) = ("aaaa.bbbb.tail1234", "cccc.dddd.tail1234");
        assert_eq!(recent_slot(a), recent_slot(b));
        c.insert(a, Rc::from("acme"), 100);
        c.insert(b, Rc::from("globex"), 100);
        for _ in 0..3 {
            assert_eq!(c.get(a, 1).as_deref(), Some("acme"));
            assert_eq!(c.get(b, 1).as_deref(), Some("globex"));
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_long_token_skips_the_memo_and_is_still_cached() {
        let mut c = cache(8);
        let long = "x".repeat(RECENT_MAX_BYTES + 1);
        assert_eq!(recent_slot(&long), None);
        c.insert(&long, Rc::from("acme"), 100);
        assert_eq!(c.get(&long, 1).as_deref(), Some("acme"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_zero_capacity_cache_stores_nothing() {
        let mut c = cache(0);
        c.insert("tok", Rc::from("acme"), 100);
        assert_eq!(c.get("tok", 1), None);
    }
}
