//! Two runs of one scenario, fairness off and fairgate on, and the claims the demo
//! makes about them:
//!
//! - on: every well-behaved tenant (the share group less the noisy) gets its weight
//!   share within `tolerance` (a fraction: 0.05 is 5 share points);
//! - off: it visibly does not: some noisy tenant takes at least two tolerances more
//!   than its weight share, and some well-behaved tenant misses its weight share by
//!   more than the tolerance.

use serde::{Deserialize, Serialize};

use crate::report::Report;

pub const DEFAULT_TOLERANCE: f64 = 0.05;

/// What `compare --json` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub off: Report,
    pub on: Report,
    pub tolerance: f64,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub ok: bool,
    pub what: String,
}

impl Summary {
    pub fn new(off: Report, on: Report, tolerance: f64) -> Summary {
        let checks = checks(&off, &on, tolerance);
        Summary {
            off,
            on,
            tolerance,
            checks,
        }
    }
}

fn pts(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

/// The claims, each with what was measured.
pub fn checks(off: &Report, on: &Report, tolerance: f64) -> Vec<Check> {
    let mut out = Vec::new();
    let well_on: Vec<_> = on.well_behaved().collect();
    if well_on.is_empty() {
        out.push(Check {
            ok: false,
            what: "no well-behaved tenant in the share group".to_string(),
        });
    }
    for t in well_on {
        let (ok, what) = match (t.share, t.weight_share) {
            (Some(s), Some(w)) => (
                (s - w).abs() <= tolerance,
                format!(
                    "{}: {}: share {}% vs weight share {}% (within {} points)",
                    on.label,
                    t.name,
                    pts(s),
                    pts(w),
                    pts(tolerance)
                ),
            ),
            _ => (false, format!("{}: {}: nothing served", on.label, t.name)),
        };
        out.push(Check { ok, what });
    }

    let noisy_excess = off
        .tenants
        .iter()
        .filter(|t| t.noisy)
        .filter_map(|t| Some((t, t.share? - t.weight_share?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    out.push(match noisy_excess {
        Some((t, excess)) => Check {
            ok: excess >= 2.0 * tolerance,
            what: format!(
                "{}: noisy {} takes {}% vs weight share {}% (at least {} points more)",
                off.label,
                t.name,
                pts(t.share.unwrap_or(0.0)),
                pts(t.weight_share.unwrap_or(0.0)),
                pts(2.0 * tolerance)
            ),
        },
        None => Check {
            ok: false,
            what: format!("{}: no noisy tenant with a share", off.label),
        },
    });
    let worst = off
        .well_behaved()
        .filter_map(|t| Some((t, (t.share? - t.weight_share?).abs())))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    out.push(match worst {
        Some((t, miss)) => Check {
            ok: miss > tolerance,
            what: format!(
                "{}: well-behaved {} gets {}% vs weight share {}% (off by more than {} points)",
                off.label,
                t.name,
                pts(t.share.unwrap_or(0.0)),
                pts(t.weight_share.unwrap_or(0.0)),
                pts(tolerance)
            ),
        },
        None => Check {
            ok: false,
            what: format!("{}: no well-behaved tenant with a share", off.label),
        },
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Latency, StatusCounts, TenantReport};
    use crate::scenario::ShareBy;

    fn tenant(name: &str, noisy: bool, share: f64, weight_share: f64) -> TenantReport {
        TenantReport {
            name: name.into(),
            weight: 1.0,
            priority: 0,
            cluster: None,
            noisy,
            backlogged: true,
            concurrency: 1,
            rate: 0.0,
            offered_rps: 1.0,
            served_rps: 1.0,
            prompt_tokens_per_s: 0.0,
            completion_tokens_per_s: 0.0,
            share: Some(share),
            weight_share: Some(weight_share),
            latency_ms: Latency::default(),
            status: StatusCounts::default(),
            served_by: Default::default(),
        }
    }

    fn report(label: &str, shares: [f64; 3]) -> Report {
        Report {
            label: label.into(),
            target: String::new(),
            scenario: String::new(),
            duration_s: 10.0,
            warmup_s: 2.0,
            window_s: 8.0,
            share_by: ShareBy::Requests,
            share_group: vec!["globex".into(), "initech".into(), "hooli".into()],
            jain_index: None,
            tenants: vec![
                tenant("globex", false, shares[0], 0.6),
                tenant("initech", false, shares[1], 0.2),
                tenant("hooli", true, shares[2], 0.2),
            ],
        }
    }

    #[test]
    fn weighted_shares_on_and_a_flood_off_pass() {
        let s = Summary::new(
            report("off", [0.24, 0.12, 0.64]),
            report("on", [0.59, 0.21, 0.20]),
            DEFAULT_TOLERANCE,
        );
        assert!(s.checks.iter().all(|c| c.ok), "{:#?}", s.checks);
        assert_eq!(s.checks.len(), 4);
    }

    #[test]
    fn a_well_behaved_tenant_short_of_its_share_with_fairness_on_fails() {
        let s = Summary::new(
            report("off", [0.24, 0.12, 0.64]),
            report("on", [0.52, 0.20, 0.28]),
            DEFAULT_TOLERANCE,
        );
        let failed: Vec<&str> = s
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].starts_with("on: globex: share 52.0%"),
            "{failed:?}"
        );
    }

    #[test]
    fn fair_shares_with_fairness_off_fail_the_off_claims() {
        let s = Summary::new(
            report("off", [0.58, 0.2, 0.22]),
            report("on", [0.6, 0.2, 0.2]),
            DEFAULT_TOLERANCE,
        );
        assert_eq!(s.checks.iter().filter(|c| !c.ok).count(), 2);
    }
}
