//! Fleet mode (SPEC 9) end to end: a real `redis-server`, several Envoys
//! (`--concurrency 2`), each with its own real sidecar, one recording upstream, all on
//! 127.0.0.1. One tenant's budget holds across all of them.

use std::time::{Duration, Instant};

use fairgate_e2e::envoy::{Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use fairgate_e2e::redis::RedisServer;
use fairgate_e2e::sidecar::Sidecar;
use fairgate_e2e::upstream::Upstream;
use serde_json::{json, Value};

use crate::{client, expect_prometheus, get};

const RATE: f64 = 20.0;
const BURST: f64 = 20.0;
const POLL_MS: u64 = 200;

struct Fleet {
    redis: RedisServer,
    _sidecars: Vec<Sidecar>,
    envoys: Vec<Envoy>,
    upstream: Upstream,
}

fn plugin_config(fleet: Option<&str>) -> String {
    let mut cfg: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({"acme": {"weight": 1, "requests_per_second": RATE, "request_burst": BURST}}),
        None,
    ))
    .expect("json");
    cfg["sidecar"] = json!({"cluster": "fairgate_sidecar", "poll_ms": POLL_MS, "stale_ms": 3000});
    if let Some(outage) = fleet {
        cfg["fleet"] = json!({ "outage": outage });
    }
    cfg.to_string()
}

fn sidecar_config(redis: &RedisServer, i: usize) -> String {
    format!(
        "poll_ms = {POLL_MS}\nstale_ms = 2000\n\n[fleet]\nredis_url = \"{}\"\nreplica = \"sc-{i}\"\ntimeout_ms = 1000\n",
        redis.url()
    )
}

impl Fleet {
    /// `n` Envoys, each with its sidecar; `fleet`: the outage mode, or no fleet mode.
    async fn start(n: usize, fleet: Option<&str>) -> Fleet {
        let redis = RedisServer::start();
        let upstream = Upstream::start().await;
        let sidecars: Vec<Sidecar> = (0..n)
            .map(|i| Sidecar::start(&sidecar_config(&redis, i)))
            .collect();
        let envoys: Vec<Envoy> = sidecars
            .iter()
            .map(|s| {
                Envoy::start(
                    &EnvoyConfig::new(plugin_config(fleet))
                        .concurrency(2)
                        .upstream("backend", upstream.addr)
                        .upstream("fairgate_sidecar", s.addr),
                )
            })
            .collect();
        if fleet.is_some() {
            for envoy in &envoys {
                expect_prometheus(envoy, &["fg_fleet_state{} 0"]).await;
            }
        }
        Fleet {
            redis,
            _sidecars: sidecars,
            envoys,
            upstream,
        }
    }

    /// Requests of acme through Envoy `i` every `pace` for `secs`: (status counts).
    async fn load(&self, envoys: &[usize], secs: f64, pace: Duration) -> Load {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let start = Instant::now();
        let tasks: Vec<_> = envoys
            .iter()
            .map(|&i| {
                let url = self.envoys[i].url("/v1/models");
                tokio::spawn(async move {
                    let client = client();
                    let mut statuses: Vec<(u16, String)> = Vec::new();
                    while Instant::now() < deadline {
                        let reply = get(&client, &url, &[("x-tenant-id", "acme")]).await;
                        let code = if reply.status == 200 {
                            String::new()
                        } else {
                            reply.error_code()
                        };
                        statuses.push((reply.status, code));
                        tokio::time::sleep(pace).await;
                    }
                    statuses
                })
            })
            .collect();
        let mut load = Load::default();
        for (task, &i) in tasks.into_iter().zip(envoys) {
            for (status, code) in task.await.expect("load task") {
                load.sent += 1;
                match status {
                    200 => {
                        load.ok += 1;
                        load.ok_by_envoy[i] += 1;
                    }
                    429 => load.limited += 1,
                    _ => load.other.push(format!("{status} {code}")),
                }
            }
        }
        load.secs = start.elapsed().as_secs_f64();
        load
    }

    fn at_upstream(&self) -> u64 {
        self.upstream.load().get("acme").map_or(0, |l| l.completed)
    }
}

#[derive(Debug, Default)]
struct Load {
    sent: u64,
    ok: u64,
    ok_by_envoy: [u64; 8],
    limited: u64,
    other: Vec<String>,
    secs: f64,
}

fn allowed(secs: f64) -> f64 {
    RATE * secs + BURST
}

fn secs_from_env(default: f64) -> f64 {
    std::env::var("FAIRGATE_FLEET_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_envoys_hold_one_budget_and_admit_95_percent_of_it() {
    let fleet = Fleet::start(4, Some("safe")).await;
    let load = fleet
        .load(
            &[0, 1, 2, 3],
            secs_from_env(15.0),
            Duration::from_millis(10),
        )
        .await;
    let allowed = allowed(load.secs);
    let upstream = fleet.at_upstream();
    eprintln!(
        "fleet of 4: {} of {} sent admitted ({:?} per Envoy), upstream {upstream}, allowed {allowed:.1} over {:.2} s: {:.1} %",
        load.ok,
        load.sent,
        &load.ok_by_envoy[..4],
        load.secs,
        100.0 * load.ok as f64 / allowed
    );
    assert!(load.other.is_empty(), "only 200 and 429: {:?}", load.other);
    assert_eq!(upstream, load.ok, "the clients and the upstream agree");
    assert!(
        load.ok as f64 <= allowed + 1.0,
        "{} > {allowed:.1}",
        load.ok
    );
    assert!(
        load.ok as f64 >= 0.95 * allowed,
        "{} < 95 % of {allowed:.1}",
        load.ok
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_fleet_mode_four_envoys_admit_about_four_budgets() {
    let fleet = Fleet::start(4, None).await;
    let load = fleet
        .load(&[0, 1, 2, 3], 4.0, Duration::from_millis(10))
        .await;
    let allowed = allowed(load.secs);
    eprintln!(
        "4 Envoys, no fleet: {} admitted, one budget allows {allowed:.1}: {:.2}x",
        load.ok,
        load.ok as f64 / allowed
    );
    assert!(
        load.ok as f64 > 3.0 * allowed,
        "{} is not about 4 x {allowed:.1}",
        load.ok
    );
}

/// Redis stopped: the leases run out, then each outage mode; Redis back: exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_follows_the_outage_mode_and_exact_returns_after() {
    for mode in ["safe", "open", "closed"] {
        let mut fleet = Fleet::start(2, Some(mode)).await;
        // Both Envoys counted in Redis: N = 2 during the outage.
        for envoy in &fleet.envoys {
            expect_prometheus(envoy, &["fg_fleet_replicas{} 2"]).await;
        }
        let port = fleet.redis.port;
        fleet.redis.stop();
        // The leases run out (three polls), the sidecars see Redis gone.
        for envoy in &fleet.envoys {
            let state = match mode {
                "safe" => "fg_fleet_state{} 1",
                "open" => "fg_fleet_state{} 2",
                _ => "fg_fleet_state{} 3",
            };
            expect_prometheus(envoy, &[state]).await;
        }
        tokio::time::sleep(Duration::from_millis(4 * POLL_MS)).await;
        let load = fleet.load(&[0, 1], 3.0, Duration::from_millis(10)).await;
        eprintln!(
            "{mode}, Redis down: {} of {} admitted {:?}, {} refused 429, others {:?}",
            load.ok,
            load.sent,
            &load.ok_by_envoy[..2],
            load.limited,
            load.other.iter().take(3).collect::<Vec<_>>()
        );
        match mode {
            "safe" => {
                assert!(load.other.is_empty(), "{:?}", load.other);
                // Each Envoy holds half the budget.
                for &n in &load.ok_by_envoy[..2] {
                    let share = allowed(load.secs) / 2.0;
                    assert!(n as f64 <= share + 1.0, "{n} > {share:.1}");
                    assert!(n as f64 >= 0.8 * share, "{n} < 80 % of {share:.1}");
                }
            }
            "open" => {
                assert!(load.other.is_empty(), "{:?}", load.other);
                assert_eq!(load.ok, load.sent, "nothing enforced");
            }
            _ => {
                assert_eq!(load.ok, 0);
                assert!(
                    load.other.iter().all(|o| o == "503 fleet_unavailable"),
                    "{:?}",
                    load.other
                );
            }
        }
        // Redis back: exact again within a few polls.
        fleet.redis = RedisServer::start_on(port);
        let back = Instant::now();
        for envoy in &fleet.envoys {
            expect_prometheus(envoy, &["fg_fleet_state{} 0"]).await;
        }
        eprintln!(
            "{mode}: exact again {:?} after Redis returned",
            back.elapsed()
        );
        let load = fleet.load(&[0, 1], 3.0, Duration::from_millis(10)).await;
        // The restarted Redis is empty: its buckets start full when it returns.
        let allowed = allowed(back.elapsed().as_secs_f64());
        eprintln!(
            "{mode}, Redis back: {} admitted, {allowed:.1} allowed since it returned",
            load.ok
        );
        assert!(load.other.is_empty(), "{:?}", load.other);
        assert!(
            load.ok as f64 <= allowed + 1.0,
            "{} > {allowed:.1}",
            load.ok
        );
        assert!(load.ok > 0, "admitted again");
    }
}
