//! Glue for weighted-fair admission (`fairgate_core::admission`): this VM's side of
//! the pools, over proxy-wasm shared data and shared queues.
//!
//! Each VM takes an index from a shared-data counter and registers its own shared
//! queue, `<prefix>wake.<index>` (a queue notifies only the last VM that registered a
//! name, so each needs its own). A pool lives in one shared-data value
//! (`fair_queue::FairQueue`). A wake-up for another VM's waiter is a message on that
//! VM's queue: the waiter's context id and when it was sent; that VM resumes the
//! waiter in `on_queue_ready`, within milliseconds.

use std::collections::BTreeMap;

use proxy_wasm::hostcalls;

use super::{log_at, HostStore};
use fairgate_core::admission::{self, Action, Admission, Gauge};
use fairgate_core::config::{PoolConfig, TenantPolicy, Tenants};
use fairgate_core::fair_queue::{FairQueue, PoolState, Updated};
use fairgate_core::fleet::{FleetMode, PoolReport};
use fairgate_core::headroom::Snapshot;
use fairgate_core::host::{Level, PoolHost};
use fairgate_core::store::{cas_update, StoreError, Update};

/// The shared data and queues of this VM's pools.
struct WasmHost {
    queue: FairQueue,
    prefix: String,
    vm_id: String,
}

impl PoolHost for WasmHost {
    fn update_pool<T>(
        &self,
        pool: &str,
        op: impl FnMut(&mut PoolState) -> T,
    ) -> Result<Updated<T>, StoreError> {
        self.queue.update(&HostStore, pool, op)
    }

    fn send_wake(&self, vm: u32, context: u32) -> bool {
        let name = wake_queue(&self.prefix, vm);
        let mut message = context.to_le_bytes().to_vec();
        message.extend_from_slice(&now_ns().to_le_bytes());
        match hostcalls::resolve_shared_queue(&self.vm_id, &name) {
            Ok(Some(q)) => hostcalls::enqueue_shared_queue(q, Some(&message)).is_ok(),
            _ => false,
        }
    }

    fn log(&self, level: Level, message: &str) {
        log_at(level, message);
    }
}

/// This VM's part in every pool.
pub struct Pools {
    pools: admission::Pools,
    host: WasmHost,
}

impl Pools {
    /// Joins the pools as VM `vm` (see `vm_index`): registers its wake-up queue.
    pub fn join(
        prefix: &str,
        vm: u32,
        config: PoolConfig,
        tenants: &Tenants,
        shared: &[String],
        fleet_mode: Option<FleetMode>,
    ) -> Result<(Pools, u32), String> {
        let queue_id = hostcalls::register_shared_queue(&wake_queue(prefix, vm))
            .map_err(|s| format!("registering the wake-up queue: {s:?}"))?;
        let vm_id = hostcalls::get_property(vec!["plugin_vm_id"])
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let host = WasmHost {
            queue: FairQueue::new(prefix),
            prefix: prefix.to_string(),
            vm_id,
        };
        let mut pools = admission::Pools::new(vm, config, tenants, shared);
        if let Some(mode) = fleet_mode {
            pools = pools.with_fleet(mode);
        }
        Ok((Pools { pools, host }, queue_id))
    }

    /// Whether `pool` had a free slot when this VM last saw it (unknown: yes).
    pub fn had_free_slot(&self, pool: &str) -> bool {
        self.pools.had_free_slot(pool)
    }

    /// See `admission::Pools::set_live`.
    pub fn set_live(&mut self, snapshot: Option<&Snapshot>, now_ms: u64) {
        self.pools.set_live(snapshot, now_ms);
    }

    /// See `admission::Pools::fleet_reports`.
    pub fn fleet_reports(&mut self) -> BTreeMap<String, PoolReport> {
        self.pools.fleet_reports(&self.host)
    }

    /// See `admission::Pools::admit`.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        context: u32,
        tenant: &str,
        policy: &TenantPolicy,
        pool: &str,
        cost: f64,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) -> Admission {
        let host = &self.host;
        self.pools
            .admit(host, context, tenant, policy, pool, cost, now_ms, actions)
    }

    /// See `admission::Pools::reestimate`.
    pub fn reestimate(&mut self, context: u32, cost: f64) {
        self.pools.reestimate(&self.host, context, cost);
    }

    /// See `admission::Pools::holds_slot`.
    pub fn holds_slot(&self, context: u32) -> Option<bool> {
        self.pools.holds_slot(context)
    }

    /// See `admission::Pools::finish`.
    pub fn finish(
        &mut self,
        context: u32,
        now_ms: u64,
        actual_cost: Option<f64>,
        actions: &mut Vec<Action>,
    ) {
        self.pools
            .finish(&self.host, context, now_ms, actual_cost, actions);
    }

    /// Wake-ups sent to this VM's queue.
    pub fn on_queue(&mut self, queue_id: u32, actions: &mut Vec<Action>) {
        while let Ok(Some(message)) = hostcalls::dequeue_shared_queue(queue_id) {
            let context = message
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes);
            let sent_at_ns = message
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes);
            if let Some(context) = context {
                self.pools.woken(context, sent_at_ns, actions);
            }
        }
    }

    /// See `admission::Pools::tick`; the gauges by their stats names.
    pub fn tick(&mut self, now_ms: u64, actions: &mut Vec<Action>) -> Vec<Gauge> {
        self.pools.tick(&self.host, now_ms, actions).named()
    }

    /// See `admission::Pools::vanished`.
    pub fn vanished(&mut self, context: u32, now_ms: u64, actions: &mut Vec<Action>) {
        self.pools.vanished(&self.host, context, now_ms, actions);
    }
}

/// A number for this VM, unique in the Envoy process: its wake-up queue's name and
/// its identity in pools and polling.
pub fn vm_index(prefix: &str) -> Result<u32, String> {
    cas_update(
        &HostStore,
        &format!("{prefix}vm_seq"),
        &0u32.to_le_bytes(),
        |v| {
            let next = v
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
                .wrapping_add(1);
            Update::Write(next.to_le_bytes().to_vec(), next)
        },
    )
    .map_err(|e| format!("taking a VM index: {e}"))
}

/// Wall-clock nanoseconds, as the host tells them.
pub fn now_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

fn wake_queue(prefix: &str, vm: u32) -> String {
    format!("{prefix}wake.{vm}")
}
