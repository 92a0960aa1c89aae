//! Tables as lines of text: one run's figures per tenant, and two runs side by side.

use std::fmt::Write as _;

use crate::report::{Report, TenantReport};

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn share_cell(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0))
}

fn load(t: &TenantReport) -> String {
    match (t.concurrency, t.rate) {
        (c, r) if c > 0 && r > 0.0 => format!("{c}c+{r}/s"),
        (c, _) if c > 0 => format!("{c} conc"),
        (_, r) => format!("{r}/s"),
    }
}

/// Where a tenant's answers came from: `pool_a 52% pool_b 48%`.
fn served_by(t: &TenantReport) -> String {
    let total: u64 = t.served_by.values().sum();
    if total == 0 {
        return "-".to_string();
    }
    let mut by: Vec<(&String, &u64)> = t.served_by.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by.iter()
        .map(|(c, n)| format!("{c} {:.0}%", **n as f64 * 100.0 / total as f64))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a tenant has no weight share.
fn role(t: &TenantReport) -> &'static str {
    match (&t.cluster, t.priority < 0, t.backlogged) {
        (Some(_), _, _) => "dedicated",
        (None, true, _) => "sheddable",
        (None, false, false) => "light",
        _ => "",
    }
}

/// One run's figures, a header line and a line per tenant, then the index.
pub fn tenants(r: &Report) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<10} {:>6} {:>4} {:<9} {:>9} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>5} {:>5} {:>5}  {}",
        "tenant", "weight", "prio", "load", "offered/s", "served/s", "tok/s", "share", "weight%",
        "p50 ms", "p99 ms", "ok", "429", "503", "other", "served by"
    )];
    for t in &r.tenants {
        lines.push(format!(
            "{:<10} {:>6} {:>4} {:<9} {:>9.1} {:>8.1} {:>7.0} {:>7} {:>7} {:>8} {:>8} {:>6} {:>5} {:>5} {:>5}  {}",
            t.name,
            t.weight,
            t.priority,
            load(t),
            t.offered_rps,
            t.served_rps,
            t.completion_tokens_per_s,
            share_cell(t.share),
            share_cell(t.weight_share),
            opt(t.latency_ms.p50, 0),
            opt(t.latency_ms.p99, 0),
            t.status.ok,
            t.status.too_many_requests,
            t.status.unavailable,
            t.status.other,
            served_by(t),
        ));
    }
    lines.push(format!(
        "shares of the shared pools ({}, by {}): Jain's index {}",
        r.share_group.join(", "),
        serde_json::to_value(r.share_by)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        opt(r.jain_index, 3),
    ));
    lines
}

/// Two runs of the same scenario side by side: per tenant share vs weight share,
/// served req/s, p99, 429s and 503s; then Jain's index and the total served.
pub fn side_by_side(off: &Report, on: &Report) -> Vec<String> {
    let phase = |r: &Report| format!("{:^41}", r.label);
    let mut lines = vec![
        format!("{:<21} │{}│{}", "", phase(off), phase(on)),
        format!(
            "{:<10} {:>10} │{:>8} {:>8} {:>8} {:>6} {:>6} │{:>8} {:>8} {:>8} {:>6} {:>6}",
            "tenant",
            "weight%",
            "share",
            "req/s",
            "p99 ms",
            "429",
            "503",
            "share",
            "req/s",
            "p99 ms",
            "429",
            "503"
        ),
    ];
    for t in &off.tenants {
        let o = on.tenant(&t.name);
        let weight = match t.weight_share {
            Some(w) => share_cell(Some(w)),
            None => role(t).to_string(),
        };
        let mut line = format!("{:<10} {:>10} │", t.name, weight);
        for r in [Some(t), o] {
            match r {
                Some(r) => {
                    let _ = write!(
                        line,
                        "{:>8} {:>8.1} {:>8} {:>6} {:>6} │",
                        share_cell(r.share),
                        r.served_rps,
                        opt(r.latency_ms.p99, 0),
                        r.status.too_many_requests,
                        r.status.unavailable
                    );
                }
                None => line.push_str(&format!("{:>40}│", "-")),
            }
        }
        lines.push(line.trim_end_matches('│').to_string());
    }
    let row = |name: &str, f: &dyn Fn(&Report) -> String| {
        format!("{name:<21} │{:^41}│{:^41}", f(off), f(on))
    };
    lines.push(row("Jain's index", &|r| opt(r.jain_index, 3)));
    lines.push(row("served req/s, all", &|r| {
        format!("{:.1}", r.tenants.iter().map(|t| t.served_rps).sum::<f64>())
    }));
    lines
}

/// A progress bar `[#####.....]` `width` cells wide.
pub fn progress(done: f64, width: usize) -> String {
    let filled = ((done.clamp(0.0, 1.0)) * width as f64).round() as usize;
    format!("[{}{}]", "█".repeat(filled), "░".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_fills_in_proportion() {
        assert_eq!(progress(0.0, 4), "[░░░░]");
        assert_eq!(progress(0.5, 4), "[██░░]");
        assert_eq!(progress(2.0, 4), "[████]");
    }
}
