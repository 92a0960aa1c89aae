//! Test fixtures for fleet mode: a filter's side of the fleet poll, simulated (what
//! the core will do for both hosts), and a real `redis-server` on a free port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fairgate_wire::fleet::{
    BudgetKind, Consumption, FleetGrants, FleetPoll, FleetState, OutageMode, TenantLimits,
    TenantReport,
};

use super::clock::Clock;
use super::manager::{FleetManager, FleetSettings};
use super::metrics::FleetMetrics;
use super::store::FleetStore;

/// The tenant of the simulations.
pub const TENANT: &str = "acme";

/// A manager over `store`, with a metrics registry of its own.
pub fn manager<S: FleetStore>(
    store: S,
    clock: Arc<dyn Clock>,
    name: &str,
    timeout: Duration,
    envoy_ttl: Duration,
) -> FleetManager<S> {
    let metrics = FleetMetrics::register(&mut prometheus_client::registry::Registry::default());
    FleetManager::new(
        store,
        clock,
        FleetSettings {
            sidecar: name.to_string(),
            timeout,
            envoy_ttl,
            silent_claim: Duration::from_secs(30),
        },
        Arc::new(metrics),
    )
}

/// One Envoy's filter, reduced to one tenant's request budget: it applies grants
/// exactly once by their `seq`, admits from its allowance while the lease lives,
/// drops what is left at expiry, and reports totals.
#[derive(Debug, Clone)]
pub struct FilterSim {
    pub envoy: String,
    pub boot: String,
    pub outage: OutageMode,
    pub poll_ms: u64,
    pub limits: TenantLimits,
    pub allowance: u64,
    pub applied: u64,
    pub spent: u64,
    pub expired: u64,
    pub debt: u64,
    /// On the test's clock (ms).
    pub expires_at_ms: u64,
    pub demand: bool,
    pub state: Option<FleetState>,
    pub replicas: u32,
    /// Every grant applied, summed.
    pub granted: u64,
}

impl FilterSim {
    pub fn new(envoy: &str, poll_ms: u64, rate: f64, burst: f64) -> Self {
        Self {
            envoy: envoy.to_string(),
            boot: "boot-1".to_string(),
            outage: OutageMode::Safe,
            poll_ms,
            limits: TenantLimits {
                requests_per_second: Some(rate),
                request_burst: Some(burst),
                ..TenantLimits::default()
            },
            allowance: 0,
            applied: 0,
            spent: 0,
            expired: 0,
            debt: 0,
            expires_at_ms: 0,
            demand: true,
            state: None,
            replicas: 0,
            granted: 0,
        }
    }

    pub fn poll(&self) -> FleetPoll {
        let report = TenantReport {
            limits: self.limits,
            demand: self.demand,
            requests: Consumption {
                spent: self.spent,
                debt: self.debt,
                expired: self.expired,
                applied: self.applied,
                needed: 0,
            },
            tokens: Consumption::default(),
        };
        FleetPoll {
            envoy: self.envoy.clone(),
            boot: self.boot.clone(),
            outage: self.outage,
            poll_ms: self.poll_ms,
            tenants: [(TENANT.to_string(), report)].into_iter().collect(),
            pools: Default::default(),
        }
    }

    /// Takes in an answer that arrived at `now_ms`.
    pub fn apply(&mut self, answer: &FleetGrants, now_ms: u64) {
        self.state = Some(answer.state);
        self.replicas = answer.replicas;
        let Some(lease) = answer
            .tenants
            .get(TENANT)
            .and_then(|t| t.get(BudgetKind::Requests))
        else {
            return;
        };
        for grant in &lease.grants {
            if grant.seq > self.applied {
                self.allowance += grant.amount;
                self.granted += grant.amount;
                self.applied = grant.seq;
            }
        }
        self.expires_at_ms = now_ms + lease.expires_in_ms;
    }

    /// Offers `n` requests at `now_ms`; returns how many were admitted.
    pub fn offer(&mut self, n: u64, now_ms: u64) -> u64 {
        if now_ms >= self.expires_at_ms && self.allowance > 0 {
            self.expired += std::mem::take(&mut self.allowance);
        }
        let admitted = n.min(self.allowance);
        self.allowance -= admitted;
        self.spent += admitted;
        admitted
    }

    /// One poll, answered and applied at `now_ms`.
    pub async fn round<S: FleetStore>(&mut self, manager: &FleetManager<S>, now_ms: u64) {
        let answer = manager.poll(&self.poll()).await;
        self.apply(&answer, now_ms);
    }
}

/// A `redis-server` on a free port of 127.0.0.1, without persistence, killed on drop
/// (and by the kernel if the test process dies).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// On `port` (again, after [`Self::stop`]).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, &[])
    }

    /// A node of a Redis Cluster, its state kept in `dir`.
    pub fn start_cluster_node(dir: &std::path::Path) -> Self {
        let port = free_port();
        let nodes = dir.join(format!("nodes-{port}.conf"));
        let dir = dir.display().to_string();
        let nodes = nodes.display().to_string();
        Self::start_with(
            port,
            &[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &nodes,
                "--dir",
                &dir,
            ],
        )
    }

    /// On a free port, with more `redis-server` arguments (a password, ACL users).
    pub fn start_args(extra: &[&str]) -> Self {
        Self::start_with(free_port(), extra)
    }

    fn start_with(port: u16, extra: &[&str]) -> Self {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL this
        // child when the test process dies, however it dies.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => panic!(
                "cannot start redis-server ({e}): install it with `source scripts/lib.sh && ensure_redis`"
            ),
        };
        let server = Self {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its data goes with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Three `redis-server` cluster nodes joined into one Redis Cluster (no replicas),
/// killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "fairgate-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| RedisServer::start_cluster_node(&dir))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (installed with redis-server)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        for node in &nodes {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster never became ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes, dir }
    }

    /// The seeds, as `[fleet] redis_url` takes them with `cluster = true`.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
