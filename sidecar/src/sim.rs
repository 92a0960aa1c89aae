//! The `sim` source: GPUs described in the config, whose load follows a scripted curve.
//!
//! Each simulated GPU has a curve of points `(t_s, utilization, memory_used)`. The load
//! at `t` seconds after start is interpolated linearly between the two points around
//! `t`; the curve loops with a period equal to its last point's `t_s` (make the last
//! point equal the first for a smooth loop; a single point is a constant load).
//! Temperature and power follow utilisation (`30 + 50·u` °C, `100 + 600·u` W), so that
//! every series has a plausible value. Everything is a pure function of the config and
//! the time since start: two sidecars with one config report the same load.

use std::time::Instant;

use serde::Deserialize;

use crate::gpu::{GpuSource, GpuStat, SourceError};

/// One point of a load curve, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvePoint {
    pub t_s: f64,
    pub utilization: f64,
    /// Fraction of the GPU's memory in use, 0..1.
    pub memory_used: f64,
}

/// A validated, looping load curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    points: Vec<CurvePoint>,
}

/// Where a curve is wrong: the index of the point at fault (`None`: the whole curve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveError {
    pub point: Option<usize>,
    pub reason: String,
}

impl Curve {
    /// Checks the points: at least one, the first at `t_s = 0`, times strictly
    /// increasing and finite, utilisation and memory fractions within 0..1.
    pub fn new(points: Vec<CurvePoint>) -> Result<Curve, CurveError> {
        let err = |point, reason: &str| CurveError {
            point,
            reason: reason.to_string(),
        };
        let Some(first) = points.first() else {
            return Err(err(None, "needs at least one point"));
        };
        if first.t_s != 0.0 {
            return Err(err(Some(0), "the first point must be at t_s = 0"));
        }
        for (i, p) in points.iter().enumerate() {
            if !p.t_s.is_finite() {
                return Err(err(Some(i), "t_s must be a finite number"));
            }
            if i > 0 && p.t_s <= points[i - 1].t_s {
                return Err(err(Some(i), "t_s must increase from point to point"));
            }
            if !(0.0..=1.0).contains(&p.utilization) {
                return Err(err(Some(i), "utilization must be within 0..1"));
            }
            if !(0.0..=1.0).contains(&p.memory_used) {
                return Err(err(Some(i), "memory_used must be within 0..1"));
            }
        }
        Ok(Curve { points })
    }

    /// `(utilization, memory_used)` at `t` seconds after start.
    pub fn at(&self, t: f64) -> (f64, f64) {
        let last = self.points[self.points.len() - 1];
        let period = last.t_s;
        if period <= 0.0 || !t.is_finite() {
            return (self.points[0].utilization, self.points[0].memory_used);
        }
        let t = t.max(0.0) % period;
        let next = self.points.partition_point(|p| p.t_s <= t);
        let (a, b) = (self.points[next - 1], self.points[next]);
        let w = (t - a.t_s) / (b.t_s - a.t_s);
        (
            a.utilization + w * (b.utilization - a.utilization),
            a.memory_used + w * (b.memory_used - a.memory_used),
        )
    }
}

/// One simulated GPU, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SimGpu {
    pub uuid: String,
    pub name: String,
    pub memory_total_bytes: u64,
    pub healthy: bool,
    pub curve: Curve,
}

impl SimGpu {
    /// This GPU's reading `t` seconds after start (its index is its position).
    pub fn stat_at(&self, index: u32, t: f64) -> GpuStat {
        let (utilization, memory_used) = self.curve.at(t);
        let used = (self.memory_total_bytes as f64 * memory_used).round() as u64;
        GpuStat {
            index,
            mig_index: None,
            uuid: self.uuid.clone(),
            name: self.name.clone(),
            healthy: self.healthy,
            memory_free_bytes: self.memory_total_bytes.saturating_sub(used),
            memory_total_bytes: self.memory_total_bytes,
            utilization: Some(utilization),
            temperature_c: Some(30.0 + 50.0 * utilization),
            power_w: Some(100.0 + 600.0 * utilization),
            error: None,
        }
    }
}

/// Every simulated GPU at `t` seconds after start.
pub fn stats_at(gpus: &[SimGpu], t: f64) -> Vec<GpuStat> {
    gpus.iter()
        .zip(0u32..)
        .map(|(gpu, index)| gpu.stat_at(index, t))
        .collect()
}

/// The `sim` source: the config's GPUs, timed from the moment it was created.
pub struct SimSource {
    gpus: Vec<SimGpu>,
    start: Instant,
}

impl SimSource {
    pub fn new(gpus: Vec<SimGpu>) -> Self {
        Self {
            gpus,
            start: Instant::now(),
        }
    }
}

impl GpuSource for SimSource {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn read(&self) -> Result<Vec<GpuStat>, SourceError> {
        Ok(stats_at(&self.gpus, self.start.elapsed().as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: f64, utilization: f64, memory_used: f64) -> CurvePoint {
        CurvePoint {
            t_s,
            utilization,
            memory_used,
        }
    }

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    #[test]
    fn a_single_point_is_a_constant_load() {
        let curve = Curve::new(vec![point(0.0, 0.3, 0.6)]).unwrap();
        for t in [0.0, 1.5, 1e6] {
            assert_eq!(curve.at(t), (0.3, 0.6));
        }
    }

    #[test]
    fn load_is_interpolated_between_points() {
        let curve = Curve::new(vec![
            point(0.0, 0.0, 0.2),
            point(10.0, 1.0, 0.4),
            point(20.0, 0.0, 0.2),
        ])
        .unwrap();
        assert!(close(curve.at(0.0), (0.0, 0.2)));
        assert!(close(curve.at(2.5), (0.25, 0.25)));
        assert!(close(curve.at(10.0), (1.0, 0.4)));
        assert!(close(curve.at(15.0), (0.5, 0.3)));
    }

    #[test]
    fn the_curve_loops_with_the_last_point_as_period() {
        let curve = Curve::new(vec![point(0.0, 0.0, 0.0), point(10.0, 1.0, 1.0)]).unwrap();
        assert!(close(curve.at(12.5), curve.at(2.5)));
        assert!(close(curve.at(10.0), (0.0, 0.0)));
        assert!(close(curve.at(-3.0), (0.0, 0.0)));
    }

    #[test]
    fn bad_curves_are_refused_with_the_point_at_fault() {
        assert_eq!(Curve::new(vec![]).unwrap_err().point, None);
        let not_at_zero = Curve::new(vec![point(1.0, 0.1, 0.1)]).unwrap_err();
        assert_eq!(not_at_zero.point, Some(0));
        let backwards = Curve::new(vec![point(0.0, 0.1, 0.1), point(0.0, 0.2, 0.2)]).unwrap_err();
        assert_eq!(backwards.point, Some(1));
        let too_busy = Curve::new(vec![point(0.0, 1.5, 0.1)]).unwrap_err();
        assert!(too_busy.reason.contains("utilization"), "{too_busy:?}");
        let too_full = Curve::new(vec![point(0.0, 0.1, -0.1)]).unwrap_err();
        assert!(too_full.reason.contains("memory_used"), "{too_full:?}");
    }

    #[test]
    fn a_sim_gpu_reports_memory_and_power_from_its_curve() {
        let gpu = SimGpu {
            uuid: "GPU-sim-0".into(),
            name: "sim".into(),
            memory_total_bytes: 1000,
            healthy: true,
            curve: Curve::new(vec![point(0.0, 0.5, 0.25)]).unwrap(),
        };
        let stat = gpu.stat_at(3, 0.0);
        assert_eq!(stat.index, 3);
        assert_eq!(stat.memory_free_bytes, 750);
        assert_eq!(stat.utilization, Some(0.5));
        assert_eq!(stat.temperature_c, Some(55.0));
        assert_eq!(stat.power_w, Some(400.0));
    }
}
