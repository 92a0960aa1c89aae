//! [`FleetStore`] on Redis 7 (or a Redis Cluster), through the `redis` crate on tokio.
//!
//! - Connections: `redis://`, `rediss://` (TLS through rustls, the system's roots),
//!   `user:password@`, `/db`. A single server goes through a [`ConnectionManager`]
//!   (one multiplexed connection, rebuilt after a failure); a cluster through the
//!   crate's cluster client, seeded by `redis_url` (several seeds: comma-separated).
//!   Both connect lazily, so the sidecar starts, and answers `safe`, with Redis down.
//! - Keys: `<prefix>:{<tenant>}:requests` and `:tokens`, hashes `{level, at}`; the
//!   `{tenant}` hash tag keeps a tenant's buckets in one slot, so one script call
//!   settles both. `<prefix>:envoys` is the sorted set of live Envoys.
//!   `<prefix>:{slots:<pool>}` holds the claims on a pool's slots, one field per Envoy.
//! - Scripts (`settle.lua`, `heartbeat.lua`, `slots_read.lua`, `slots_claim.lua`): `EVALSHA`, loaded again on `NOSCRIPT`
//!   (a restarted or failed-over server). Each runs atomically on the server and reads
//!   Redis's own clock (`TIME`).
//!
//! Every call is bounded by the manager's timeout as well as by the connection's own.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Script, ScriptInvocation, Value,
};
use tokio::sync::Mutex;

use super::store::{BucketOp, BucketTake, FleetStore, SlotClaim, SlotHolder, StoreError};

const SETTLE: &str = include_str!("settle.lua");
const HEARTBEAT: &str = include_str!("heartbeat.lua");
const SLOTS_READ: &str = include_str!("slots_read.lua");
const SLOTS_CLAIM: &str = include_str!("slots_claim.lua");

pub struct RedisStore {
    link: Link,
    prefix: String,
    settle: Script,
    heartbeat: Script,
    slots_read: Script,
    slots_claim: Script,
}

enum Link {
    Single(ConnectionManager),
    Cluster {
        /// Boxed: far larger than a connection manager.
        client: Box<ClusterClient>,
        connection: Mutex<Option<ClusterConnection>>,
    },
}

impl RedisStore {
    /// A store on `url` (a cluster's seed nodes, comma-separated, when `cluster`);
    /// connects on first use. Fails only on a URL that cannot be used.
    pub fn open(url: &str, cluster: bool, prefix: &str, timeout: Duration) -> Result<Self, String> {
        Self::open_with_ca(url, cluster, prefix, timeout, None)
    }

    /// [`Self::open`], `rediss://` trusting the CA certificates `ca_pem` (PEM) instead
    /// of the system's roots.
    pub fn open_with_ca(
        url: &str,
        cluster: bool,
        prefix: &str,
        timeout: Duration,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<Self, String> {
        install_tls_provider();
        let certs = |root_cert| redis::TlsCertificates {
            client_tls: None,
            root_cert,
        };
        let link = if cluster {
            let seeds: Vec<&str> = url.split(',').map(str::trim).collect();
            let mut builder = ClusterClient::builder(seeds)
                .connection_timeout(timeout)
                .response_timeout(timeout);
            if let Some(pem) = ca_pem {
                builder = builder.certs(certs(Some(pem)));
            }
            let client = builder.build().map_err(|e| e.to_string())?;
            Link::Cluster {
                client: Box::new(client),
                connection: Mutex::new(None),
            }
        } else {
            let client = match ca_pem {
                Some(pem) => redis::Client::build_with_tls(url, certs(Some(pem))),
                None => redis::Client::open(url),
            }
            .map_err(|e| e.to_string())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(timeout);
            Link::Single(
                ConnectionManager::new_lazy_with_config(client, config)
                    .map_err(|e| e.to_string())?,
            )
        };
        Ok(Self {
            link,
            prefix: prefix.to_string(),
            settle: Script::new(SETTLE),
            heartbeat: Script::new(HEARTBEAT),
            slots_read: Script::new(SLOTS_READ),
            slots_claim: Script::new(SLOTS_CLAIM),
        })
    }

    /// The key of one of `tenant`'s buckets.
    pub fn bucket_key(&self, tenant: &str, kind: fairgate_wire::fleet::BudgetKind) -> String {
        format!("{}:{{{tenant}}}:{}", self.prefix, kind.as_str())
    }

    /// The hash of the claims on `pool`'s slots.
    pub fn slots_key(&self, pool: &str) -> String {
        format!("{}:{{slots:{pool}}}", self.prefix)
    }

    fn envoys_key(&self) -> String {
        format!("{}:envoys", self.prefix)
    }

    /// A connection to use now: the manager's (cheap to clone), or the cluster's,
    /// made at first use and again after it was dropped.
    async fn connection(&self) -> Result<Connection, StoreError> {
        match &self.link {
            Link::Single(manager) => Ok(Connection::Single(manager.clone())),
            Link::Cluster { client, connection } => {
                let mut slot = connection.lock().await;
                if let Some(connection) = slot.as_ref() {
                    return Ok(Connection::Cluster(connection.clone()));
                }
                let fresh = client.get_async_connection().await.map_err(store_error)?;
                *slot = Some(fresh.clone());
                Ok(Connection::Cluster(fresh))
            }
        }
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        invocation
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)
    }
}

/// One server's connection or a cluster's, as one `ConnectionLike`.
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl FleetStore for RedisStore {
    async fn settle(&self, tenant: &str, ops: &[BucketOp]) -> Result<Vec<BucketTake>, StoreError> {
        let mut invocation = self.settle.prepare_invoke();
        for op in ops {
            invocation
                .key(self.bucket_key(tenant, op.kind))
                .arg(op.limit.rate)
                .arg(op.limit.burst)
                .arg(op.want)
                .arg(op.debt)
                .arg(op.give_back)
                .arg(op.spent)
                .arg(op.asker.to_string())
                .arg(op.fresh_ms);
        }
        let answer: Vec<(u64, String)> = self.invoke(&invocation).await?;
        if answer.len() != ops.len() {
            return Err(StoreError::Garbage(format!(
                "{} buckets settled, {} asked",
                answer.len(),
                ops.len()
            )));
        }
        answer
            .into_iter()
            .zip(ops)
            .map(|((granted, level), op)| {
                let level: f64 = level.parse().map_err(|_| {
                    StoreError::Garbage(format!("bucket level {level:?} is not a number"))
                })?;
                if granted > op.want {
                    return Err(StoreError::Garbage(format!(
                        "granted {granted}, more than the {} asked",
                        op.want
                    )));
                }
                Ok(BucketTake { granted, level })
            })
            .collect()
    }

    async fn heartbeat(&self, envoys: &[String], ttl: Duration) -> Result<u32, StoreError> {
        let mut invocation = self.heartbeat.prepare_invoke();
        invocation
            .key(self.envoys_key())
            .arg(ttl.as_millis().max(1) as u64);
        for envoy in envoys {
            invocation.arg(envoy);
        }
        self.invoke(&invocation).await
    }

    async fn epoch(&self, candidate: &str) -> Result<String, StoreError> {
        // SET NX GET: the old value where there is one (left alone), else nil (set).
        let mut connection = self.connection().await?;
        let old: Option<String> = redis::cmd("SET")
            .arg(format!("{}:epoch", self.prefix))
            .arg(candidate)
            .arg("NX")
            .arg("GET")
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        Ok(old.unwrap_or_else(|| candidate.to_string()))
    }

    async fn pool_holders(
        &self,
        pool: &str,
        silent: Duration,
    ) -> Result<BTreeMap<String, SlotHolder>, StoreError> {
        let mut invocation = self.slots_read.prepare_invoke();
        invocation
            .key(self.slots_key(pool))
            .arg(silent.as_millis() as u64);
        let flat: Vec<String> = self.invoke(&invocation).await?;
        let mut holders = BTreeMap::new();
        for entry in flat.chunks(4) {
            let [envoy, held, silent, report] = entry else {
                return Err(StoreError::Garbage(format!(
                    "{} values for the claims on {pool}",
                    flat.len()
                )));
            };
            let held = held
                .parse()
                .map_err(|_| StoreError::Garbage(format!("held slots {held:?}")))?;
            let report = serde_json::from_str(report)
                .map_err(|e| StoreError::Garbage(format!("the report of {envoy:?}: {e}")))?;
            let holder = SlotHolder {
                report,
                held,
                silent: silent == "1",
            };
            holders.insert(envoy.clone(), holder);
        }
        Ok(holders)
    }

    async fn claim_slots(
        &self,
        pool: &str,
        envoy: &str,
        claim: &SlotClaim,
    ) -> Result<u32, StoreError> {
        let report = serde_json::to_string(&claim.report)
            .map_err(|e| StoreError::Garbage(format!("encoding a report: {e}")))?;
        let mut invocation = self.slots_claim.prepare_invoke();
        invocation
            .key(self.slots_key(pool))
            .arg(envoy)
            .arg(claim.capacity)
            .arg(claim.target)
            .arg(claim.floor)
            .arg(claim.presumed)
            .arg(claim.ttl.as_millis().max(1) as u64)
            .arg(report)
            .arg(claim.silent.as_millis() as u64)
            .arg(claim.share);
        let granted: u32 = self.invoke(&invocation).await?;
        if granted > claim.target {
            return Err(StoreError::Garbage(format!(
                "granted {granted} slots, more than the {} claimed",
                claim.target
            )));
        }
        Ok(granted)
    }

    async fn leave(&self, envoys: &[String]) -> Result<(), StoreError> {
        if envoys.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection().await?;
        let _removed: u64 = redis::cmd("ZREM")
            .arg(self.envoys_key())
            .arg(envoys)
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

fn store_error(e: RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Unreachable(format!("timed out: {e}"))
    } else if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
    {
        StoreError::Unreachable(e.to_string())
    } else {
        StoreError::Garbage(e.to_string())
    }
}

/// rustls needs one process-wide crypto provider before a `rediss://` connection;
/// the first call installs ring's, later ones (or one already installed) change
/// nothing. ring, not aws-lc-rs (rustls's choice for post-quantum key exchange, and
/// why it marks ring's provider deprecated): no C toolchain beyond a C compiler for
/// the build, and a link to Redis inside the platform needs no post-quantum groups.
#[allow(deprecated)]
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
