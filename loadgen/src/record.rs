//! What happened to each request, as the workers log it: when it started, when it
//! ended, how, the tokens it used and the cluster that served it. The figures
//! (`report`) are computed from this log for any time window, so the live table and
//! the final one are the same computation.

use std::sync::Mutex;

use crate::usage::Usage;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status, read to the end.
    Status(u16),
    /// No whole answer within the scenario's timeout.
    Timeout,
    /// Connection refused or reset, or a broken answer.
    Error,
    /// Open loop only: not sent, the tenant had `max_in_flight` requests already.
    Dropped,
}

impl Outcome {
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(&s))
    }
}

/// One finished request; times in seconds since the run started.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub tenant: usize,
    pub started_s: f64,
    pub ended_s: f64,
    pub outcome: Outcome,
    pub usage: Option<Usage>,
    /// An index into `Log::clusters`: the `x-mock-server` that answered.
    pub cluster: Option<usize>,
}

/// Everything logged so far.
#[derive(Debug, Default, Clone)]
pub struct Log {
    /// Per request started: its tenant and start time.
    pub started: Vec<(usize, f64)>,
    pub finished: Vec<Finished>,
    /// The cluster names seen, in order of first appearance.
    pub clusters: Vec<String>,
}

impl Log {
    pub fn cluster_index(&mut self, name: &str) -> usize {
        match self.clusters.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.clusters.push(name.to_string());
                self.clusters.len() - 1
            }
        }
    }
}

/// The log, shared by the workers; a poisoned lock is taken over (a worker that
/// panicked leaves whole entries behind, nothing half-written).
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Log>);

impl Recorder {
    fn with<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut log)
    }

    pub fn started(&self, tenant: usize, at_s: f64) {
        self.with(|log| log.started.push((tenant, at_s)));
    }

    pub fn finished(
        &self,
        tenant: usize,
        started_s: f64,
        ended_s: f64,
        outcome: Outcome,
        usage: Option<Usage>,
        cluster: Option<&str>,
    ) {
        self.with(|log| {
            let cluster = cluster.map(|c| log.cluster_index(c));
            log.finished.push(Finished {
                tenant,
                started_s,
                ended_s,
                outcome,
                usage,
                cluster,
            });
        });
    }

    pub fn snapshot(&self) -> Log {
        self.with(|log| log.clone())
    }
}
