//! What the sidecar knows about one GPU, and the trait every GPU source implements.
//!
//! A source (`nvml`, `sim`) answers one question: what do the GPUs look like now? It
//! returns one [`GpuStat`] per device. A GPU that cannot be read is still listed,
//! marked unhealthy, so that one bad GPU never hides the others; only a failure of the
//! source as a whole (the driver gone) is an error.

/// One device as a source read it: a physical GPU or, where MIG is enabled, one MIG
/// instance of it (then `mig_index` is set and `index` is the parent GPU's).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuStat {
    pub index: u32,
    pub mig_index: Option<u32>,
    /// `GPU-…` (or `MIG-…`); empty when it could not be read.
    pub uuid: String,
    pub name: String,
    /// False when any required reading failed; the numbers are then not to be trusted.
    pub healthy: bool,
    pub memory_free_bytes: u64,
    pub memory_total_bytes: u64,
    /// 0..1; `None` where the device does not report it (MIG instances, some vGPUs).
    pub utilization: Option<f64>,
    pub temperature_c: Option<f64>,
    pub power_w: Option<f64>,
    /// Why the device is unhealthy.
    pub error: Option<String>,
}

impl GpuStat {
    /// The series label for this device: its index, `index:mig` for a MIG instance.
    pub fn label(&self) -> String {
        match self.mig_index {
            Some(mig) => format!("{}:{mig}", self.index),
            None => self.index.to_string(),
        }
    }
}

/// The source as a whole could not be read (e.g. the driver went away).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A source of GPU readings. `read` may block (NVML calls into the driver): the poller
/// runs it off the async runtime's threads.
pub trait GpuSource: Send + Sync {
    /// `nvml` or `sim`, as reported in `/v1/headroom`'s `source`.
    fn kind(&self) -> &'static str;

    /// Every device, physical GPUs in index order, each followed by its MIG instances.
    fn read(&self) -> Result<Vec<GpuStat>, SourceError>;
}

/// The source of a sidecar with no clusters (fleet leases only): no GPUs, no driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGpus;

impl GpuSource for NoGpus {
    fn kind(&self) -> &'static str {
        "none"
    }

    fn read(&self) -> Result<Vec<GpuStat>, SourceError> {
        Ok(Vec::new())
    }
}
