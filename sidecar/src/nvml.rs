//! The `nvml` source: live readings from the NVIDIA driver through NVML.
//!
//! `libnvidia-ml.so.1` is loaded at start-up ([`NvmlSource::open`]); where it is
//! missing the sidecar refuses to start with one line pointing at `--source sim`.
//! Each read lists every GPU by index and, where MIG is enabled, its MIG instances
//! (best effort: an empty MIG slot is skipped). Per device, the UUID and memory are
//! required: failing either (or failing to get the device at all) lists it unhealthy,
//! with the error. Utilisation, temperature and power are optional: "not supported"
//! leaves them out (MIG instances report no utilisation), any other error marks the
//! device unhealthy. Only a failure to count the GPUs fails the whole read.

use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use crate::gpu::{GpuSource, GpuStat, SourceError};

/// `NVML_DEVICE_MIG_ENABLE`: the value of `MigMode::current` when MIG is on.
const MIG_ENABLED: u32 = 1;

pub struct NvmlSource {
    nvml: Nvml,
}

impl NvmlSource {
    /// Loads NVML and initialises it; fails fast where there is no NVIDIA driver.
    pub fn open() -> Result<Self, NvmlError> {
        Ok(Self {
            nvml: Nvml::init()?,
        })
    }
}

impl GpuSource for NvmlSource {
    fn kind(&self) -> &'static str {
        "nvml"
    }

    fn read(&self) -> Result<Vec<GpuStat>, SourceError> {
        let count = self
            .nvml
            .device_count()
            .map_err(|e| SourceError(format!("NVML could not count the GPUs: {e}")))?;
        let mut stats = Vec::new();
        for index in 0..count {
            match self.nvml.device_by_index(index) {
                Ok(device) => {
                    stats.push(read_device(&device, index, None));
                    read_mig_instances(&device, index, &mut stats);
                }
                Err(e) => stats.push(unreadable(index, &e)),
            }
        }
        Ok(stats)
    }
}

fn read_mig_instances(device: &Device<'_>, index: u32, stats: &mut Vec<GpuStat>) {
    let enabled = device
        .mig_mode()
        .is_ok_and(|mode| mode.current == MIG_ENABLED);
    if !enabled {
        return;
    }
    let slots = device.mig_device_count().unwrap_or(0);
    for slot in 0..slots {
        if let Ok(mig) = device.mig_device_by_index(slot) {
            stats.push(read_device(&mig, index, Some(slot)));
        }
    }
}

/// `Ok(None)` for a reading the device does not support.
fn optional<T>(reading: Result<T, NvmlError>) -> Result<Option<T>, NvmlError> {
    match reading {
        Ok(v) => Ok(Some(v)),
        Err(NvmlError::NotSupported) => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_device(device: &Device<'_>, index: u32, mig_index: Option<u32>) -> GpuStat {
    let uuid = device.uuid();
    let memory = device.memory_info();
    let utilization = optional(device.utilization_rates());
    let temperature = optional(device.temperature(TemperatureSensor::Gpu));
    let power = optional(device.power_usage());
    let error = [
        uuid.as_ref().err(),
        memory.as_ref().err(),
        utilization.as_ref().err(),
        temperature.as_ref().err(),
        power.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    .next()
    .map(|e| e.to_string());
    let (free, total) = memory.map_or((0, 0), |m| (m.free, m.total));
    GpuStat {
        index,
        mig_index,
        uuid: uuid.unwrap_or_default(),
        name: device.name().unwrap_or_default(),
        healthy: error.is_none(),
        memory_free_bytes: free,
        memory_total_bytes: total,
        utilization: utilization
            .ok()
            .flatten()
            .map(|u| f64::from(u.gpu.min(100)) / 100.0),
        temperature_c: temperature.ok().flatten().map(f64::from),
        power_w: power.ok().flatten().map(|mw| f64::from(mw) / 1000.0),
        error,
    }
}

fn unreadable(index: u32, error: &NvmlError) -> GpuStat {
    GpuStat {
        index,
        mig_index: None,
        uuid: String::new(),
        name: String::new(),
        healthy: false,
        memory_free_bytes: 0,
        memory_total_bytes: 0,
        utilization: None,
        temperature_c: None,
        power_w: None,
        error: Some(error.to_string()),
    }
}
