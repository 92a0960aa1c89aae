//! The fleet on a real `redis-server` (Debian's `redis-server`; `ensure_redis` in
//! scripts/lib.sh installs it), started on a free port by each test and killed
//! however the test ends. Real time: filters poll every 50 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fairgate_wire::fleet::{BucketLimit, BudgetKind, FleetState};

use super::clock::{Clock, SystemClock};
use super::manager::FleetManager;
use super::redis::RedisStore;
use super::store::{BucketOp, FleetStore, StoreError};
use super::testkit::{manager, FilterSim, RedisCluster, RedisServer, TENANT};

const POLL_MS: u64 = 50;
const TIMEOUT: Duration = Duration::from_millis(100);

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::open(&server.url(), false, "fairgate", TIMEOUT).unwrap()
}

fn sidecar(
    server: &RedisServer,
    clock: &Arc<dyn Clock>,
    envoy_ttl: Duration,
) -> FleetManager<RedisStore> {
    manager(store(server), clock.clone(), "sidecar", TIMEOUT, envoy_ttl)
}

/// Runs `filters` (filter i on sidecar i % n) for `duration`: every 5 ms each offers
/// `offer`; each polls every 50 ms (staggered); the sidecars tick every 50 ms.
/// Returns what was admitted.
async fn run(
    sidecars: &[FleetManager<RedisStore>],
    filters: &mut [FilterSim],
    clock: &Arc<dyn Clock>,
    duration: Duration,
    offer: u64,
) -> u64 {
    let started = Instant::now();
    let mut admitted = 0;
    let mut step = 0u64;
    while started.elapsed() < duration {
        for (i, filter) in filters.iter_mut().enumerate() {
            if (step + i as u64).is_multiple_of(POLL_MS / 5) {
                filter
                    .round(&sidecars[i % sidecars.len()], clock.now_ms())
                    .await;
            }
            admitted += filter.offer(offer, clock.now_ms());
        }
        if step.is_multiple_of(POLL_MS / 5) {
            for sidecar in sidecars {
                sidecar.tick().await;
            }
        }
        step += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    admitted
}

#[tokio::test]
async fn two_sidecars_on_one_redis_hold_the_budget_and_grant_95_percent_of_it() {
    let server = RedisServer::start();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let sidecars = [
        sidecar(&server, &clock, Duration::from_secs(3)),
        sidecar(&server, &clock, Duration::from_secs(3)),
    ];
    let (rate, burst) = (200.0, 200.0);
    let mut filters: Vec<FilterSim> = (0..4)
        .map(|i| FilterSim::new(&format!("envoy-{i}"), POLL_MS, rate, burst))
        .collect();
    let started = Instant::now();
    // Each Envoy is offered 400/s: 8 × the fleet's rate in all.
    let admitted = run(&sidecars, &mut filters, &clock, Duration::from_secs(3), 2).await;
    let allowed = rate * started.elapsed().as_secs_f64() + burst;
    let granted: u64 = filters.iter().map(|f| f.granted).sum();
    eprintln!(
        "allowed {allowed:.0}, granted {granted}, admitted {admitted} ({:.1} %)",
        100.0 * admitted as f64 / allowed
    );
    assert!(
        granted as f64 <= allowed,
        "granted {granted} > allowed {allowed:.0}"
    );
    assert!(
        admitted as f64 >= 0.95 * allowed,
        "admitted {admitted} < 95 % of {allowed:.0}"
    );
    assert_eq!(sidecars[0].replicas(), 4);
}

#[tokio::test]
async fn redis_stopped_then_restarted_outage_then_exact_again() {
    let mut server = RedisServer::start();
    let port = server.port;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let sidecars = [sidecar(&server, &clock, Duration::from_secs(3))];
    let mut filters = [FilterSim::new("envoy-0", POLL_MS, 100.0, 50.0)];
    let admitted = run(
        &sidecars,
        &mut filters,
        &clock,
        Duration::from_millis(300),
        1,
    )
    .await;
    assert!(admitted > 0);
    assert_eq!(filters[0].state, Some(FleetState::Exact));

    server.stop();
    run(
        &sidecars,
        &mut filters,
        &clock,
        Duration::from_millis(150),
        1,
    )
    .await;
    assert_eq!(filters[0].state, Some(FleetState::Safe), "within 3 polls");
    assert!(!sidecars[0].store_up());
    // The lease (3 polls) has run out: nothing is admitted from it any more.
    let during = run(
        &sidecars,
        &mut filters,
        &clock,
        Duration::from_millis(250),
        1,
    )
    .await;
    let after_expiry = run(
        &sidecars,
        &mut filters,
        &clock,
        Duration::from_millis(100),
        1,
    )
    .await;
    assert_eq!(after_expiry, 0, "admitted {during} then {after_expiry}");

    let _server = RedisServer::start_on(port);
    let back = Instant::now();
    while filters[0].state != Some(FleetState::Exact) {
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "still {:?}",
            filters[0].state
        );
        run(
            &sidecars,
            &mut filters,
            &clock,
            Duration::from_millis(POLL_MS),
            1,
        )
        .await;
    }
    let recovered = back.elapsed();
    eprintln!("exact again {recovered:?} after Redis restarted");
    let admitted = run(
        &sidecars,
        &mut filters,
        &clock,
        Duration::from_millis(200),
        1,
    )
    .await;
    assert!(
        admitted > 0,
        "exact again after {recovered:?}, and admitting"
    );
    assert!(sidecars[0].store_up());
}

#[tokio::test]
async fn a_replica_that_stops_heartbeating_leaves_n() {
    let server = RedisServer::start();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let ttl = Duration::from_millis(300);
    let sidecars = [sidecar(&server, &clock, ttl), sidecar(&server, &clock, ttl)];
    let mut filters: Vec<FilterSim> = (0..2)
        .map(|i| FilterSim::new(&format!("envoy-{i}"), POLL_MS, 100.0, 50.0))
        .collect();
    // Two heartbeats, then a poll that carries what they found.
    run(
        &sidecars,
        &mut filters,
        &clock,
        Duration::from_millis(300),
        1,
    )
    .await;
    assert_eq!(sidecars[0].replicas(), 2);
    assert_eq!(filters[0].replicas, 2);
    // Sidecar 1 and its Envoy die without a word: only sidecar 0 runs on.
    run(
        &sidecars[..1],
        &mut filters[..1],
        &clock,
        Duration::from_millis(500),
        1,
    )
    .await;
    assert_eq!(sidecars[0].replicas(), 1);
    assert_eq!(filters[0].replicas, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_script_is_atomic_under_concurrent_takers() {
    let server = RedisServer::start();
    let op = BucketOp {
        kind: BudgetKind::Requests,
        // No refill: whatever the interleaving, exactly the burst is granted.
        limit: BucketLimit {
            rate: 0.0,
            burst: 500.0,
        },
        want: 3,
        debt: 0,
        give_back: 0,
        spent: 0,
        asker: 0,
        fresh_ms: 0,
    };
    let mut takers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store(&server);
        takers.spawn(async move {
            let mut granted = 0;
            for _ in 0..40 {
                let takes = store.settle(TENANT, &[op]).await.unwrap();
                granted += takes[0].granted;
            }
            granted
        });
    }
    let mut granted = 0;
    while let Some(taker) = takers.join_next().await {
        granted += taker.unwrap();
    }
    assert_eq!(granted, 500, "8 × 40 × 3 asked of 500");
    let last = store(&server).settle(TENANT, &[op]).await.unwrap();
    assert_eq!((last[0].granted, last[0].level), (0, 0.0));
}

#[tokio::test]
async fn garbage_from_redis_is_an_outage() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = store(&server).bucket_key(TENANT, BudgetKind::Requests);
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("not a hash")
        .query_async(&mut connection)
        .await
        .unwrap();
    let op = BucketOp {
        kind: BudgetKind::Requests,
        limit: BucketLimit {
            rate: 1.0,
            burst: 5.0,
        },
        want: 1,
        debt: 0,
        give_back: 0,
        spent: 0,
        asker: 0,
        fresh_ms: 0,
    };
    let error = store(&server).settle(TENANT, &[op]).await.unwrap_err();
    assert!(matches!(error, StoreError::Garbage(_)), "{error:?}");

    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let sidecar = sidecar(&server, &clock, Duration::from_secs(3));
    let mut filter = FilterSim::new("envoy-0", POLL_MS, 1.0, 5.0);
    filter.round(&sidecar, clock.now_ms()).await;
    assert_eq!(filter.state, Some(FleetState::Safe));
}

#[tokio::test]
async fn on_a_redis_cluster_each_tenant_settles_in_its_own_slot() {
    let cluster = RedisCluster::start();
    let store = RedisStore::open(&cluster.url(), true, "fairgate", Duration::from_secs(2)).unwrap();
    let ops = [BudgetKind::Requests, BudgetKind::Tokens].map(|kind| BucketOp {
        kind,
        limit: BucketLimit {
            rate: 0.0,
            burst: 10.0,
        },
        want: 4,
        debt: 0,
        give_back: 0,
        spent: 0,
        asker: 0,
        fresh_ms: 0,
    });
    // Tenants whose keys land on different nodes; both kinds in one script call.
    for tenant in ["acme", "globex", "initech", "umbrella", "hooli"] {
        let takes = store.settle(tenant, &ops).await.unwrap();
        assert_eq!(takes.iter().map(|t| t.granted).collect::<Vec<_>>(), [4, 4]);
    }
    let live = store
        .heartbeat(
            &["envoy-0".to_string(), "envoy-1".to_string()],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(live, 2);
    store.leave(&["envoy-1".to_string()]).await.unwrap();
    let live = store.heartbeat(&[], Duration::from_secs(5)).await.unwrap();
    assert_eq!(live, 1);
}

/// `user:password@` in the URL: a Redis with a password for its default user, and one
/// with an ACL user of its own; a wrong password is an outage, not a crash.
#[tokio::test]
async fn a_password_and_an_acl_user_in_the_url_authenticate() {
    let op = BucketOp {
        kind: BudgetKind::Requests,
        limit: BucketLimit {
            rate: 1.0,
            burst: 5.0,
        },
        want: 2,
        debt: 0,
        give_back: 0,
        spent: 0,
        asker: 0,
        fresh_ms: 0,
    };
    let server = RedisServer::start_args(&["--requirepass", "s3cret"]);
    let url = |auth: &str| format!("redis://{auth}@127.0.0.1:{}/0", server.port);
    let good = RedisStore::open(&url(":s3cret"), false, "fairgate", TIMEOUT).unwrap();
    let takes = good.settle(TENANT, &[op]).await.unwrap();
    assert_eq!(takes[0].granted, 2);
    let bad = RedisStore::open(&url(":wrong"), false, "fairgate", TIMEOUT).unwrap();
    assert!(bad.settle(TENANT, &[op]).await.is_err());

    let acl = RedisServer::start_args(&["--user", "fairgate", "on", ">pw", "~fairgate:*", "+@all"]);
    let url = format!("redis://fairgate:pw@127.0.0.1:{}/0", acl.port);
    let store = RedisStore::open(&url, false, "fairgate", TIMEOUT).unwrap();
    assert_eq!(store.settle(TENANT, &[op]).await.unwrap()[0].granted, 2);
    assert_eq!(
        store
            .heartbeat(&["gw-a".to_string()], Duration::from_secs(1))
            .await,
        Ok(1)
    );
}

/// `rediss://`: Redis over TLS, its certificate signed by a private CA that the
/// sidecar is given (`tls_ca_file`); without that CA the handshake fails: an outage.
#[tokio::test]
async fn rediss_with_a_private_ca_connects_and_an_unknown_ca_is_refused() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("fairgate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=fairgate test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.crt",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
    let path = |f: &str| dir.join(f).display().to_string();
    let tls_port = super::testkit::free_port().to_string();
    let _server = RedisServer::start_args(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &path("redis.crt"),
        "--tls-key-file",
        &path("redis.key"),
        "--tls-ca-cert-file",
        &path("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    let op = BucketOp {
        kind: BudgetKind::Tokens,
        limit: BucketLimit {
            rate: 1.0,
            burst: 100.0,
        },
        want: 40,
        debt: 0,
        give_back: 0,
        spent: 0,
        asker: 0,
        fresh_ms: 0,
    };
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let timeout = Duration::from_secs(2);
    let store = RedisStore::open_with_ca(&url, false, "fairgate", timeout, Some(ca)).unwrap();
    assert_eq!(store.settle(TENANT, &[op]).await.unwrap()[0].granted, 40);
    let untrusting = RedisStore::open(&url, false, "fairgate", timeout).unwrap();
    assert!(untrusting.settle(TENANT, &[op]).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn concurrent_slot_claims_never_grant_more_than_the_capacity_and_lapsed_ones_free_theirs_after_a_silence(
) {
    use fairgate_wire::fleet::PoolReport;

    use super::store::SlotClaim;

    let server = RedisServer::start();
    let store = Arc::new(store(&server));
    let claim = |target: u32, floor: u32, ttl_ms: u64| SlotClaim {
        report: PoolReport {
            capacity: 10,
            ..PoolReport::default()
        },
        capacity: 10,
        target,
        floor,
        presumed: 0,
        ttl: Duration::from_millis(ttl_ms),
        silent: Duration::ZERO,
        share: 0,
    };
    // Eight Envoys claim 4 slots each at once: 10 in all are granted.
    let claims = (0..8).map(|i| {
        let store = store.clone();
        let claim = claim(4, 0, 60_000);
        async move {
            store
                .claim_slots("shared", &format!("envoy-{i}"), &claim)
                .await
        }
    });
    let grants: Vec<u32> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(grants.iter().sum::<u32>(), 10, "{grants:?}");
    let holders = store.pool_holders("shared", Duration::ZERO).await.unwrap();
    assert_eq!(holders.len(), 8);
    assert_eq!(holders.values().map(|h| h.held).sum::<u32>(), 10);
    assert_eq!(holders["envoy-0"].report.capacity, 10);

    // A claim that keeps a floor holds it even when granted less.
    let small = store
        .claim_slots("other", "a", &claim(2, 6, 200))
        .await
        .unwrap();
    assert_eq!(small, 2);
    let squeezed = store
        .claim_slots("other", "b", &claim(8, 0, 60_000))
        .await
        .unwrap();
    assert_eq!(squeezed, 4, "6 held by a");
    // Once a's claim lapses its slots are free.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let freed = store
        .claim_slots("other", "b", &claim(8, 0, 60_000))
        .await
        .unwrap();
    assert_eq!(freed, 8);
    assert_eq!(
        store
            .pool_holders("other", Duration::ZERO)
            .await
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["b"]
    );

    // A lapsed claim stays silent for the silent period: held at the larger of its
    // slots and the outage share, then forgotten.
    let silent = |claim: SlotClaim| SlotClaim {
        silent: Duration::from_millis(600),
        share: 3,
        ..claim
    };
    let quiet = store
        .claim_slots("third", "c", &silent(claim(2, 0, 200)))
        .await
        .unwrap();
    assert_eq!(quiet, 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let holders = store
        .pool_holders("third", Duration::from_millis(600))
        .await
        .unwrap();
    assert!(holders["c"].silent && holders["c"].held == 2, "{holders:?}");
    let beside = store
        .claim_slots("third", "d", &silent(claim(10, 0, 60_000)))
        .await
        .unwrap();
    assert_eq!(beside, 7, "3 for the silent claim");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all = store
        .claim_slots("third", "d", &silent(claim(10, 0, 60_000)))
        .await
        .unwrap();
    assert_eq!(all, 10);
    let holders = store
        .pool_holders("third", Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(holders.keys().collect::<Vec<_>>(), vec!["d"]);
}
