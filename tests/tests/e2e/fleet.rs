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
    sidecars: Vec<Sidecar>,
    envoys: Vec<Envoy>,
    upstream: Option<Upstream>,
}

fn plugin_config(fleet: Option<&str>, acme: &Value) -> String {
    let mut cfg: Value = serde_json::from_str(&plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({ "acme": acme }),
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
        let upstream = Upstream::start().await;
        let acme = json!({"weight": 1, "requests_per_second": RATE, "request_burst": BURST});
        let mut started = Self::start_with(n, fleet, &acme, upstream.addr).await;
        started.upstream = Some(upstream);
        started
    }

    /// `n` Envoys in front of `backend`, `acme` with `policy`.
    async fn start_with(
        n: usize,
        fleet: Option<&str>,
        policy: &Value,
        backend: std::net::SocketAddr,
    ) -> Fleet {
        let redis = RedisServer::start();
        let sidecars: Vec<Sidecar> = (0..n)
            .map(|i| Sidecar::start(&sidecar_config(&redis, i)))
            .collect();
        let envoys: Vec<Envoy> = sidecars
            .iter()
            .map(|s| {
                Envoy::start(
                    &EnvoyConfig::new(plugin_config(fleet, policy))
                        .concurrency(2)
                        .upstream("backend", backend)
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
            sidecars,
            envoys,
            upstream: None,
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
        let load = self.upstream.as_ref().map(|u| u.load());
        load.and_then(|l| l.get("acme").map(|t| t.completed))
            .unwrap_or(0)
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
    // The same load through each: each gets a fair part of the budget.
    for &n in &load.ok_by_envoy[..4] {
        assert!(
            n as f64 >= 0.5 * load.ok as f64 / 4.0,
            "an Envoy starved: {:?}",
            &load.ok_by_envoy[..4]
        );
    }
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
        let mut fleet = Fleet::start(4, Some(mode)).await;
        // All four counted in Redis: N = 4 during the outage.
        for envoy in &fleet.envoys {
            expect_prometheus(envoy, &["fg_fleet_replicas{} 4"]).await;
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
        let load = fleet
            .load(&[0, 1, 2, 3], 3.0, Duration::from_millis(10))
            .await;
        eprintln!(
            "{mode}, Redis down: {} of {} admitted {:?}, {} refused 429, others {:?}",
            load.ok,
            load.sent,
            &load.ok_by_envoy[..4],
            load.limited,
            load.other.iter().take(3).collect::<Vec<_>>()
        );
        match mode {
            "safe" => {
                assert!(load.other.is_empty(), "{:?}", load.other);
                // Each Envoy holds a quarter of the budget.
                for &n in &load.ok_by_envoy[..4] {
                    let share = allowed(load.secs) / 4.0;
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
        let load = fleet
            .load(&[0, 1, 2, 3], 3.0, Duration::from_millis(10))
            .await;
        // The restarted Redis is empty (a new epoch): the sidecars forget what they
        // handed out before, and the fleet holds to the budget from here.
        let allowed = allowed(load.secs);
        eprintln!(
            "{mode}, Redis back: {} admitted, {allowed:.1} allowed",
            load.ok
        );
        assert!(load.other.is_empty(), "{:?}", load.other);
        assert!(
            load.ok as f64 <= allowed + 1.0,
            "{} > {allowed:.1}",
            load.ok
        );
        assert!(
            load.ok as f64 >= 0.8 * allowed,
            "{} < 80 % of {allowed:.1}",
            load.ok
        );
    }
}

/// The load moves from one Envoy to another: the bound holds throughout, and the new
/// Envoy soon admits at the tenant's rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_that_moves_to_another_envoy_gets_the_rate_there_within_a_second_and_a_half() {
    let fleet = Fleet::start(4, Some("safe")).await;
    let start = Instant::now();
    let before = fleet.load(&[0], 4.0, Duration::from_millis(10)).await;
    let moved = Instant::now();
    // Envoy 1 alone now, its admissions timed.
    let url = fleet.envoys[1].url("/v1/models");
    let client = client();
    let mut admitted_at: Vec<f64> = Vec::new();
    while moved.elapsed() < Duration::from_secs(4) {
        let reply = get(&client, &url, &[("x-tenant-id", "acme")]).await;
        assert!(
            reply.status == 200 || reply.status == 429,
            "{}",
            reply.status
        );
        if reply.status == 200 {
            admitted_at.push(moved.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = before.ok + admitted_at.len() as u64;
    let allowed = allowed(start.elapsed().as_secs_f64());
    // When Envoy 1 has admitted 90 % of the rate over the half second before.
    let reached = (5..40).map(|i| i as f64 * 0.1).find(|&t| {
        let n = admitted_at
            .iter()
            .filter(|&&a| a >= t - 0.5 && a < t)
            .count();
        n as f64 >= 0.9 * RATE * 0.5
    });
    eprintln!(
        "moved load: Envoy 0 admitted {}, then Envoy 1 {} in 4 s, at 90 % of the rate {reached:?} s after the move; {total} of {allowed:.1} allowed",
        before.ok,
        admitted_at.len()
    );
    assert!(total as f64 <= allowed + 1.0, "{total} > {allowed:.1}");
    let reached = reached.expect("Envoy 1 never reached 90 % of the rate");
    assert!(reached <= 1.5, "90 % of the rate after {reached} s");
}

/// Token budgets in real tokens, counted at the model server: JSON and streamed answers
/// through four Envoys, within `rate × t + burst`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_budget_holds_in_real_tokens_across_envoys() {
    let mock = fairgate_mock::spawn(
        fairgate_mock::MockConfig {
            slots: 16,
            prefill_ms: 1,
            token_ms: 1,
            ..fairgate_mock::MockConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("mock");
    // 100 tokens/s, burst 600; each request reserves about 2 + 40 and uses 2 + 30.
    let policy = json!({"weight": 1, "tokens_per_minute": 6000, "token_burst": 600});
    let fleet = Fleet::start_with(4, Some("safe"), &policy, mock.addr).await;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs_from_env(6.0));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let url = fleet.envoys[i].url("/v1/chat/completions");
            tokio::spawn(async move {
                let client = client();
                let mut statuses = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let body = json!({"model": "fairgate-mock-1",
                        "messages": [{"role": "user", "content": "hi there"}],
                        "max_tokens": 40, "stream": n.is_multiple_of(2)});
                    let req = client
                        .post(&url)
                        .header("x-tenant-id", "acme")
                        .header("content-type", "application/json")
                        .body(body.to_string());
                    let reply = crate::send(req, &[("x-mock-completion-tokens", "30")]).await;
                    statuses.push(reply.status);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.expect("load task"));
    }
    let secs = start.elapsed().as_secs_f64();
    // Let the last answers settle at the mock.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = mock.stats();
    let used = stats
        .tenants
        .get("acme")
        .map_or(0, |t| t.prompt_tokens + t.completion_tokens);
    let allowed = 100.0 * secs + 600.0;
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    eprintln!(
        "tokens through 4 Envoys: {used} used at the mock ({ok} answers of {}), {allowed:.0} allowed over {secs:.2} s: {:.1} %",
        statuses.len(),
        100.0 * used as f64 / allowed
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "only 200 and 429"
    );
    assert!(used as f64 <= allowed, "{used} > {allowed:.0}");
    assert!(
        used as f64 >= 0.8 * allowed,
        "{used} < 80 % of {allowed:.0}"
    );
}

/// `INFO stats` of the Redis on `port`: its `total_commands_processed`.
fn redis_commands(port: u16) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis");
    s.write_all(b"INFO stats\r\nQUIT\r\n").expect("write");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds a process has used (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// Figures of fleet mode, run by hand (`bench/fleet.sh`): budget accuracy at 2, 4 and
/// 8 Envoys; Redis commands per second and sidecar CPU at two request rates ten times
/// apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark, run by bench/fleet.sh"]
async fn bench_fleet_figures() {
    let secs = secs_from_env(15.0);
    for n in [2usize, 4, 8] {
        let fleet = Fleet::start(n, Some("safe")).await;
        let envoys: Vec<usize> = (0..n).collect();
        let load = fleet.load(&envoys, secs, Duration::from_millis(10)).await;
        let allowed = allowed(load.secs);
        println!(
            "FIGURE accuracy replicas={n} admitted={} allowed={allowed:.1} ratio={:.3} per_envoy={:?}",
            load.ok,
            load.ok as f64 / allowed,
            &load.ok_by_envoy[..n]
        );
    }
    let fleet = Fleet::start(4, Some("safe")).await;
    for (label, pace) in [("low", Duration::from_millis(40)), ("high", Duration::ZERO)] {
        let (commands, cpu) = (
            redis_commands(fleet.redis.port),
            fleet
                .sidecars
                .iter()
                .map(|s| cpu_seconds(s.pid()))
                .sum::<f64>(),
        );
        // Four clients per Envoy.
        let envoys: Vec<usize> = (0..4).flat_map(|i| [i; 4]).collect();
        let load = fleet.load(&envoys, 10.0, pace).await;
        let commands = redis_commands(fleet.redis.port) - commands;
        let cpu = fleet
            .sidecars
            .iter()
            .map(|s| cpu_seconds(s.pid()))
            .sum::<f64>()
            - cpu;
        println!(
            "FIGURE redis rate={label} requests_per_s={:.0} redis_commands_per_s={:.1} sidecar_cpu_pct_each={:.2}",
            load.sent as f64 / load.secs,
            commands as f64 / load.secs,
            100.0 * cpu / load.secs / 4.0
        );
    }
}

/// A sidecar killed: its Envoy falls back to its outage mode once `stale_ms` passes
/// without an answer, the others stay exact, and once the dead one's heartbeat lapses
/// the fleet counts one Envoy less.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_sidecar_leaves_its_envoy_in_safe_mode_and_the_others_exact() {
    let mut fleet = Fleet::start(4, Some("safe")).await;
    for envoy in &fleet.envoys {
        expect_prometheus(envoy, &["fg_fleet_replicas{} 4"]).await;
    }
    fleet.sidecars[0].stop();
    let killed = Instant::now();
    expect_prometheus(&fleet.envoys[0], &["fg_fleet_state{} 1"]).await;
    eprintln!(
        "Envoy 0 in safe mode {:?} after its sidecar died",
        killed.elapsed()
    );
    // The others see the dead one's heartbeat lapse (the sidecar's stale_ms, 2 s).
    let deadline = Instant::now() + Duration::from_secs(8);
    while crate::prometheus_value(&fleet.envoys[1], "fg_fleet_replicas{}") != Some(3.0) {
        assert!(Instant::now() < deadline, "Envoy 1 still counts 4 replicas");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "three replicas live {:?} after the sidecar died",
        killed.elapsed()
    );
    for envoy in &fleet.envoys[1..] {
        assert_eq!(
            crate::prometheus_value(envoy, "fg_fleet_state{}"),
            Some(0.0)
        );
    }
    let load = fleet.load(&[0, 1], 3.0, Duration::from_millis(10)).await;
    let allowed = allowed(load.secs);
    eprintln!(
        "after: Envoy 0 (safe, 1/4) admitted {}, Envoy 1 (exact, the only one loaded) {}, of {allowed:.1} for the fleet",
        load.ok_by_envoy[0], load.ok_by_envoy[1]
    );
    assert!(load.other.is_empty(), "{:?}", load.other);
    // Envoy 0 holds to a quarter of the budget on its own; Envoy 1 draws on the
    // fleet's, its lease growing from an even share of the three.
    assert!(load.ok_by_envoy[0] as f64 <= allowed / 4.0 + 1.0);
    assert!(load.ok_by_envoy[1] as f64 <= allowed + 1.0);
    assert!(load.ok_by_envoy[1] as f64 >= 0.5 * RATE * load.secs);
}
