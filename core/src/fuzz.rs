//! The bodies of the fuzz targets (`fuzz/`, `cargo +nightly fuzz run <target>`), one
//! per parser of untrusted input, here so that the corpora and every input that ever
//! crashed one are replayed on stable by `tests/fuzz_corpus.rs` in CI. Each must
//! return, whatever the bytes (a panic is a crash), and `Err` only where an invariant
//! broke (the targets turn it into a crash).

use std::cell::OnceCell;

use crate::budget::{BudgetKind, Taken};
use crate::config::{Config, RateLimit};
use crate::fair_queue::PoolState;
use crate::fleet::{Allowance, FleetBooks, FleetMode, FleetPoller, OutageMode, Source};
use crate::headroom::Snapshot;
use crate::jwt::{Expectations, KeySet, VerifyingKey};
use crate::llm::{self, Endpoint, LlmRequest};
use crate::policy_claim::PolicyClaim;
use crate::store::{MemoryStore, SharedStore};
use crate::usage::SseScanner;
use fairgate_wire::fleet::{FleetAnswer, Lease};

/// The plugin configuration (JSON from the operator, or from a control plane).
pub fn config(data: &[u8]) -> Result<(), String> {
    let _ = Config::from_json(data);
    Ok(())
}

thread_local! {
    static KEYS: OnceCell<Option<KeySet>> = const { OnceCell::new() };
}

/// A bearer token, against an HS256 key and an Ed25519 one.
pub fn token(data: &[u8]) -> Result<(), String> {
    let token = String::from_utf8_lossy(data);
    let expect = Expectations {
        issuer: Some("https://auth.example.com".to_string()),
        audiences: Some(vec!["llm-gateway".to_string()]),
        claim: "tenant".to_string(),
        leeway_s: 60,
        require_exp: true,
        max_token_bytes: 16 * 1024,
        policy_claim: Some("fairgate".to_string()),
    };
    KEYS.with(|keys| {
        let keys = keys.get_or_init(|| {
            let hs = VerifyingKey::hmac("HS256", b"fairgate-fuzz-hmac-secret-32byte").ok()?;
            // The test Ed25519 key of testdata/keys, as a JWK.
            let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"Dill5992wouEUVrpeVzFmt65K9gyV8Ml_31PzA8IteI"}"#;
            let ed = VerifyingKey::from_jwk("EdDSA", jwk).ok()?;
            Some(KeySet::new(vec![
                (Some("hs-1".to_string()), hs),
                (Some("ed-1".to_string()), ed),
            ]))
        });
        if let Some(keys) = keys {
            let _ = keys.verify(&token, &expect, 1_800_000_000);
        }
    });
    Ok(())
}

thread_local! {
    static CLAIM: OnceCell<Option<PolicyClaim>> = const { OnceCell::new() };
}

/// A policy claim (`identity.jwt.policy_claim`) as a verified token carries it,
/// against bounds on every field and one allowed cluster: whatever it reads as must
/// be within them.
pub fn policy_claim(data: &[u8]) -> Result<(), String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return Ok(());
    };
    CLAIM.with(|claim| {
        let claim = claim.get_or_init(|| {
            let config = Config::from_json(POLICY_CLAIM_CONFIG.as_bytes()).ok()?;
            config.identity.jwt?.policy_claim
        });
        let Some(claim) = claim else {
            return Err("the policy claim target's config is refused".to_string());
        };
        let Ok(policy) = claim.policy(&value) else {
            return Ok(());
        };
        let within = policy.weight <= 8.0
            && policy
                .requests
                .is_some_and(|r| r.per_second <= 100.0 && r.burst <= 200.0)
            && policy.max_concurrency.is_some_and(|m| m <= 16)
            && policy.min_concurrency.is_none()
            && policy.cluster.as_deref().is_none_or(|c| c == "gold");
        match within {
            true => Ok(()),
            false => Err(format!("{value} gave {policy:?}, out of bounds")),
        }
    })
}

const POLICY_CLAIM_CONFIG: &str = r#"{
  "identity": {"jwt": {
    "keys": [{"alg": "HS256", "secret_base64": "ZmFpcmdhdGUtZnV6ei1obWFjLXNlY3JldC0zMmJ5dGU="}],
    "policy_claim": {
      "claim": "fairgate",
      "max": {"weight": 8, "requests_per_second": 100, "request_burst": 200,
              "tokens_per_minute": 60000, "token_burst": 60000, "max_concurrency": 16},
      "clusters": ["gold"]
    }
  }}
}"#;

/// An identity provider's JWKS document.
pub fn jwks(data: &[u8]) -> Result<(), String> {
    let _ = crate::jwks::parse(data);
    Ok(())
}

/// An OpenAI-compatible request body (the first byte picks the endpoint), read and,
/// where it reads, rewritten as a clamped request asking for its usage, which must
/// read back as the same request with the cap and the usage asked for.
pub fn llm_body(data: &[u8]) -> Result<(), String> {
    let Some((first, body)) = data.split_first() else {
        return Ok(());
    };
    let endpoint = match first % 4 {
        0 => Endpoint::ChatCompletions,
        1 => Endpoint::Completions,
        2 => Endpoint::Embeddings,
        _ => Endpoint::Responses,
    };
    let Ok((request, object)) = LlmRequest::parse(endpoint, body, 64) else {
        return Ok(());
    };
    let Some(rewritten) = llm::rewrite(&request, object, Some(1), true) else {
        return Ok(());
    };
    // What is forwarded reads as the same request, capped at 1 (where it has an output
    // at all: an embedding has none), asking for its usage.
    let again = LlmRequest::parse(endpoint, &rewritten, 64).map(|(again, _)| again);
    match &again {
        Ok(a)
            if a.model == request.model
                && a.prompt_tokens == request.prompt_tokens
                && a.stream == request.stream
                && (a.max_output == 1 || (request.max_output, a.max_output) == (0, 0))
                && (a.include_usage || !a.stream) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{request:?} rewritten as {:?} reads as {again:?}",
            String::from_utf8_lossy(&rewritten)
        )),
    }
}

/// A streamed answer, cut into chunks of a size the first byte picks, its usage chunk
/// stripped or not: where it is cut changes nothing, so what the client gets, the
/// usage read and the counts are those of the same stream in one piece.
pub fn sse(data: &[u8]) -> Result<(), String> {
    let Some((first, stream)) = data.split_first() else {
        return Ok(());
    };
    let strip = first & 1 == 1;
    let size = usize::from(first >> 1).max(1);
    let cut = scan_sse(strip, stream.chunks(size));
    let whole = scan_sse(strip, std::iter::once(stream));
    match cut == whole {
        true => Ok(()),
        false => Err(format!(
            "{:?} cut every {size} bytes read as {cut:?}, whole as {whole:?}",
            String::from_utf8_lossy(stream)
        )),
    }
}

/// What a client gets of `chunks` through a scanner, and what the scanner read.
fn scan_sse<'a>(
    strip: bool,
    chunks: impl Iterator<Item = &'a [u8]>,
) -> (Vec<u8>, String, u64, bool) {
    let mut scanner = SseScanner::new(strip);
    let mut out = Vec::new();
    let mut chunks = chunks.peekable();
    // An empty stream still ends.
    if chunks.peek().is_none() {
        let _ = scanner.feed(&[], true);
    }
    while let Some(chunk) = chunks.next() {
        match scanner.feed(chunk, chunks.peek().is_none()) {
            crate::usage::Pass::Unchanged => out.extend_from_slice(chunk),
            crate::usage::Pass::Replace(bytes) => out.extend_from_slice(&bytes),
        }
    }
    let usage = format!("{:?}", scanner.usage);
    (out, usage, scanner.content_chunks, scanner.done)
}

/// The GPU sidecar's `/v1/headroom` answer: what it reads as holds headroom within
/// 0..1 and no capacity for an unhealthy cluster, and reads the same back from
/// shared data.
pub fn headroom(data: &[u8]) -> Result<(), String> {
    let Ok(snapshot) = Snapshot::parse(data, 7) else {
        return Ok(());
    };
    let bounded = snapshot
        .clusters
        .values()
        .all(|c| (0.0..=1.0).contains(&c.headroom) && (c.healthy || c.capacity == 0));
    let stored = Snapshot::from_store(&Snapshot::store_bytes(data, 7));
    match (bounded, stored) {
        (true, Ok(again)) if again == snapshot => Ok(()),
        (_, stored) => Err(format!(
            "{snapshot:?} out of bounds, or stored as {stored:?}"
        )),
    }
}

/// A pool's state as shared data holds it (another VM's write, or garbage): what
/// reads back encodes to the same state.
pub fn pool_state(data: &[u8]) -> Result<(), String> {
    let Ok(pool) = PoolState::decode(data) else {
        return Ok(());
    };
    match PoolState::decode(&pool.encode()) {
        Ok(again) if again == pool => Ok(()),
        other => Err(format!("{pool:?} re-encoded reads as {other:?}")),
    }
}

/// The time the fleet answer target applies its answers at.
const FLEET_NOW_MS: u64 = 10_000;

/// The records the fleet answer target starts from: `(kind, tenant, applied,
/// allowance, expires_ms)`, one lease live, one expired, one never granted.
const FLEET_RECORDS: [(BudgetKind, &str, u64, u64, u64); 4] = [
    (BudgetKind::Requests, "acme", 3, 5, FLEET_NOW_MS + 1_000),
    (BudgetKind::Tokens, "acme", 7, 400, FLEET_NOW_MS + 1_000),
    (BudgetKind::Requests, "beta", 2, 0, FLEET_NOW_MS - 1),
    (BudgetKind::Requests, "gamma", 0, 0, 0),
];

/// The sidecar's answer to `POST /v1/fleet/poll`, applied by the elected poller to an
/// Envoy's records, then applied again (a repeated answer): it creates no record;
/// each grant is added to an allowance once, by its `seq`, so the allowance and
/// `expired` together gain exactly the grants applied and nothing else in the books
/// moves; the second time changes nothing; a request then takes from a live lease no
/// more than it holds.
pub fn fleet_answer(data: &[u8]) -> Result<(), String> {
    let mode = FleetMode {
        outage: OutageMode::Safe,
        poll_ms: 500,
        stale_ms: 3_000,
    };
    let limit = RateLimit {
        per_second: 10.0,
        burst: 20.0,
    };
    let store = MemoryStore::new();
    let books = FleetBooks::new("f:", mode);
    let poller = FleetPoller::new(books.clone(), "gw".into(), "boot".into());
    for (kind, id, applied, allowance, expires_ms) in FLEET_RECORDS {
        books
            .ensure(&store, kind, id, &limit, true, 1)
            .map_err(|e| e.to_string())?;
        let mut record = Allowance::new(&limit, true, 1);
        record.applied = applied;
        record.allowance = allowance;
        record.expires_ms = expires_ms;
        record.answered_ms = FLEET_NOW_MS - 100;
        record.spent = 11;
        record.expired = 13;
        store
            .set(&books.key(kind, id), &record.encode(), None)
            .map_err(|e| e.to_string())?;
    }
    // N as a last answer left it: an answer only overwrites it.
    store
        .set(&books.replicas_key(), &1u32.to_le_bytes(), None)
        .map_err(|e| e.to_string())?;
    let keys = store.len();
    let before = fleet_records(&store, &books)?;
    let applied = poller.apply_answer(&store, data, FLEET_NOW_MS);
    let once = fleet_records(&store, &books)?;
    let Ok(answer) = serde_json::from_slice::<FleetAnswer>(data) else {
        return match (applied, once == before) {
            (Err(_), true) => Ok(()),
            _ => Err("an answer that does not parse changed the records".into()),
        };
    };
    if applied.is_err() {
        return Err("an answer that parses was refused".into());
    }
    for (i, (kind, id, ..)) in FLEET_RECORDS.into_iter().enumerate() {
        let lease = answer.fleet.tenants.get(id).and_then(|t| {
            t.get(match kind {
                BudgetKind::Requests => fairgate_wire::fleet::BudgetKind::Requests,
                BudgetKind::Tokens => fairgate_wire::fleet::BudgetKind::Tokens,
            })
        });
        let listed = answer.fleet.tenants.contains_key(id);
        fleet_books_agree(&before[i], &once[i], lease, listed)
            .map_err(|e| format!("{kind:?} {id}: {e}"))?;
    }
    if store.len() != keys {
        return Err(format!("the answer made {} records", store.len() - keys));
    }
    poller
        .apply_answer(&store, data, FLEET_NOW_MS)
        .map_err(|e| format!("applied again: {e}"))?;
    if fleet_records(&store, &books)? != once {
        return Err("the same answer applied twice changed the records again".into());
    }
    for (i, (kind, id, ..)) in FLEET_RECORDS.into_iter().enumerate() {
        let held = once[i].allowance;
        let taken = books
            .take(&store, kind, id, &limit, FLEET_NOW_MS, 1.0, None)
            .map_err(|e| e.to_string())?;
        let after = fleet_records(&store, &books)?[i].allowance;
        if let Some(Taken::Admitted {
            amount,
            source: Source::Lease,
        }) = taken
        {
            if amount > held as f64 || after != held - amount as u64 {
                return Err(format!(
                    "{kind:?} {id}: took {amount} from an allowance of {held}, left {after}"
                ));
            }
        } else if after > held {
            return Err(format!("{kind:?} {id}: a refused take grew the allowance"));
        }
    }
    Ok(())
}

fn fleet_records(store: &MemoryStore, books: &FleetBooks) -> Result<Vec<Allowance>, String> {
    FLEET_RECORDS
        .into_iter()
        .map(|(kind, id, ..)| {
            let bytes = store
                .get(&books.key(kind, id))
                .map_err(|e| e.to_string())?
                .map(|(bytes, _)| bytes)
                .unwrap_or_default();
            Allowance::decode(&bytes).ok_or_else(|| format!("{kind:?} {id}: record lost"))
        })
        .collect()
}

/// One record's books before and after an answer that carried `lease` for it.
fn fleet_books_agree(
    before: &Allowance,
    after: &Allowance,
    lease: Option<&Lease>,
    listed: bool,
) -> Result<(), String> {
    if !listed {
        return match before == after {
            true => Ok(()),
            false => Err("a tenant the answer does not name changed".into()),
        };
    }
    let mut applied = before.applied;
    let mut added: u128 = 0;
    for grant in lease.map(|l| l.grants.as_slice()).unwrap_or_default() {
        if grant.seq > applied {
            applied = grant.seq;
            added += u128::from(grant.amount);
        }
    }
    let held = |r: &Allowance| u128::from(r.allowance) + u128::from(r.expired);
    let conserved = held(after) == held(before) + added
        // Saturated totals stop at the largest count.
        || (held(before) + added > u128::from(u64::MAX) && after.allowance.max(after.expired) > 0);
    let live = after.expires_ms > FLEET_NOW_MS;
    if after.applied != applied
        || !conserved
        || (after.spent, after.debt) != (before.spent, before.debt)
        || after.replicas == 0
        || (!live && after.allowance > 0)
        || after.expired < before.expired
    {
        return Err(format!(
            "{before:?} with {lease:?} gave {after:?} (applied {applied}, added {added})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_claim_target_has_its_bounds_and_checks_them() {
        assert_eq!(policy_claim(br#"{"weight": 2, "cluster": "gold"}"#), Ok(()));
        assert_eq!(policy_claim(br#"{"weight": 9}"#), Ok(()));
        CLAIM.with(|claim| assert!(claim.get().is_some_and(Option::is_some)));
    }

    #[test]
    fn the_token_target_has_its_keys() {
        assert_eq!(token(b"not.a.token"), Ok(()));
        KEYS.with(|keys| {
            assert!(keys
                .get()
                .is_some_and(|k| k.as_ref().map(KeySet::len) == Some(2)))
        });
    }
}
