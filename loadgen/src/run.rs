//! Runs a scenario against a target: the tenants' workers, the display once a
//! second, and the final report.
//!
//! - Closed loop (`concurrency`): that many workers per tenant, each sending its next
//!   request as soon as the last one ended (after `refusal_pause` when it was refused
//!   or failed, so a refused client does not spin).
//! - Open loop (`rate`): requests start on a fixed schedule whatever the answers, at
//!   most `max_in_flight` at once; a request due beyond that is logged as dropped.
//! - At the end (or on Ctrl-C) every worker and request in flight is dropped: their
//!   connections close, which is also how Envoy learns that a waiting client left.
//!
//! Display: on a terminal, a table redrawn in place once a second (cursor moved up
//! with ANSI escapes, lines wider than the terminal cut) under a progress bar; otherwise (or with `--no-live`) a line
//! every five seconds. The figures are over the time since the warm-up ended (or
//! since the start, during it).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::record::Recorder;
use crate::report::{summarise, Report, RunInfo};
use crate::request::{http_client, TenantClient};
use crate::scenario::{Scenario, Tenant};
use crate::table;

pub struct RunOptions {
    pub target: String,
    pub info: RunInfo,
    /// Redraw a table in place (only where stdout is a terminal).
    pub live: bool,
}

/// How the run ended.
pub struct Finished {
    pub report: Report,
    pub interrupted: bool,
}

fn tokens_for(scenario: &Scenario, t: &Tenant) -> Result<Vec<String>, String> {
    let (Some(plan), Some(auth)) = (&t.token, &scenario.auth) else {
        return Ok(Vec::new());
    };
    let signer = auth
        .keys
        .get(plan.key)
        .ok_or_else(|| format!("{}: no signing key", t.name))?;
    plan.subjects
        .iter()
        .map(|s| signer.mint(&auth.claims, s))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: cannot sign a token: {e}", t.name))
}

/// Runs `scenario` to its end, or until Ctrl-C.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<Finished, String> {
    let url = format!(
        "{}{}",
        opts.target.trim_end_matches('/'),
        scenario.api.path()
    );
    let mut clients = Vec::with_capacity(scenario.tenants.len());
    for (i, t) in scenario.tenants.iter().enumerate() {
        let client = http_client(scenario.timeout).map_err(|e| e.to_string())?;
        clients.push(Arc::new(TenantClient::new(
            i,
            client,
            url.clone(),
            scenario.api,
            scenario.model.clone(),
            t.mix.clone(),
            tokens_for(scenario, t)?,
        )));
    }

    let recorder = Arc::new(Recorder::default());
    let t0 = Instant::now();
    let mut workers = JoinSet::new();
    for (t, client) in scenario.tenants.iter().zip(&clients) {
        for _ in 0..t.concurrency {
            let (client, recorder, pause) = (client.clone(), recorder.clone(), t.refusal_pause);
            workers.spawn(async move {
                loop {
                    if !client.send(&recorder, t0).await.is_success() {
                        tokio::time::sleep(pause).await;
                    }
                }
            });
        }
        if t.rate > 0.0 {
            let (client, recorder) = (client.clone(), recorder.clone());
            let (every, max) = (
                Duration::from_secs_f64(1.0 / t.rate),
                t.max_in_flight as usize,
            );
            workers.spawn(open_loop(client, recorder, t0, every, max));
        }
    }

    let live = opts.live && std::io::stdout().is_terminal();
    let mut screen = Screen::default();
    // The first table after a second: rates over less are noise.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(t0 + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    let end = tokio::time::Instant::from_std(t0 + scenario.duration);
    let warmup = scenario.warmup.as_secs_f64();
    let total = scenario.duration.as_secs_f64();
    let mut last_line = 0.0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let interrupted = loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = t0.elapsed().as_secs_f64();
                // Figures since the start until a second past the warm-up.
                let from = if now >= warmup + 1.0 { warmup } else { 0.0 };
                let report = summarise(scenario, &recorder.snapshot(), &opts.info, from, now);
                if live {
                    screen.draw(&live_lines(&report, now, total, warmup, None));
                } else if now - last_line >= 5.0 {
                    last_line = now;
                    println!("{}", progress_line(&report, now, total));
                }
            }
            _ = tokio::time::sleep_until(end) => break false,
            _ = &mut ctrl_c => break true,
        }
    };
    workers.shutdown().await;
    let now = t0.elapsed().as_secs_f64().min(total);
    let from = if now > warmup { warmup } else { 0.0 };
    let report = summarise(scenario, &recorder.snapshot(), &opts.info, from, now);
    if live {
        let end = match interrupted {
            true => End::Interrupted,
            false => End::Done,
        };
        screen.draw(&live_lines(&report, now, total, warmup, Some(end)));
    } else {
        println!("{}", report.label);
        for line in table::tenants(&report) {
            println!("{line}");
        }
    }
    Ok(Finished {
        report,
        interrupted,
    })
}

async fn open_loop(
    client: Arc<TenantClient>,
    recorder: Arc<Recorder>,
    t0: Instant,
    every: Duration,
    max_in_flight: usize,
) {
    let mut in_flight = JoinSet::new();
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        next += every;
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() >= max_in_flight {
            client.dropped(&recorder, t0);
            continue;
        }
        let (client, recorder) = (client.clone(), recorder.clone());
        in_flight.spawn(async move {
            client.send(&recorder, t0).await;
        });
    }
}

#[derive(Clone, Copy)]
enum End {
    Done,
    Interrupted,
}

fn live_lines(r: &Report, now: f64, total: f64, warmup: f64, end: Option<End>) -> Vec<String> {
    let phase = match (end, now < warmup + 1.0) {
        (Some(End::Done), _) => format!(
            "done: figures over the {:.0} s after the warm-up",
            r.window_s
        ),
        (Some(End::Interrupted), _) => format!(
            "stopped (Ctrl-C): figures over the {:.0} s measured",
            r.window_s
        ),
        (None, true) => format!("warming up ({warmup:.1} s, not counted at the end)"),
        (None, false) => format!("figures over the last {:.0} s", r.window_s),
    };
    let mut lines = vec![
        format!("\x1b[1m{}\x1b[0m  {}  {}", r.label, r.target, r.scenario),
        format!(
            "{} {:>3.0}/{:.0} s  {phase}",
            table::progress(now / total, 40),
            now.min(total),
            total
        ),
    ];
    lines.extend(table::tenants(r));
    lines
}

fn progress_line(r: &Report, now: f64, total: f64) -> String {
    let sum =
        |f: &dyn Fn(&crate::report::TenantReport) -> u64| r.tenants.iter().map(f).sum::<u64>();
    format!(
        "{}: {:>3.0}/{:.0} s  ok {}  429 {}  503 {}  other {}  Jain {}",
        r.label,
        now,
        total,
        sum(&|t| t.status.ok),
        sum(&|t| t.status.too_many_requests),
        sum(&|t| t.status.unavailable),
        sum(&|t| t.status.other),
        r.jain_index
            .map_or_else(|| "-".to_string(), |j| format!("{j:.3}")),
    )
}

/// A block of lines redrawn in place.
#[derive(Default)]
struct Screen {
    drawn: usize,
}

impl Screen {
    fn draw(&mut self, lines: &[String]) {
        // Auto-wrap off while drawing: a line wider than the terminal is cut instead
        // of taking two rows, so moving up by the line count lands on the first one.
        let mut out = String::from("\x1b[?7l");
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for line in lines {
            out.push_str("\x1b[2K");
            out.push_str(line);
            out.push('\n');
        }
        // A shorter table than the last one: clear what is left below it.
        for _ in lines.len()..self.drawn {
            out.push_str("\x1b[2K\n");
        }
        let extra = self.drawn.saturating_sub(lines.len());
        if extra > 0 {
            out.push_str(&format!("\x1b[{extra}A"));
        }
        out.push_str("\x1b[?7h");
        self.drawn = lines.len();
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }
}
