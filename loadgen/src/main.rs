//! `fairgate-loadgen --scenario FILE [--target URL] [--duration 30s] [--json FILE]
//! [--label NAME] [--no-live] [--check]`, and the subcommands `token`, `compare` and
//! `check`; see the README of the repository (the demo) and `--help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use fairgate_loadgen::compare::{Summary, DEFAULT_TOLERANCE};
use fairgate_loadgen::report::{Report, RunInfo};
use fairgate_loadgen::run::{run, RunOptions};
use fairgate_loadgen::scenario::Scenario;
use fairgate_loadgen::table;

/// Load for fairgate: tenants from a scenario file, a live table, JSON figures.
#[derive(Parser)]
#[command(
    name = "fairgate-loadgen",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// The scenario file (TOML).
    #[arg(long, required = true)]
    scenario: Option<PathBuf>,
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:10000")]
    target: String,
    /// Overrides the scenario's duration_s: `30s`, `2m`, `500ms` or seconds.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Writes the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The run's name in tables and JSON.
    #[arg(long, default_value = "run")]
    label: String,
    /// A line every five seconds instead of the table redrawn in place.
    #[arg(long)]
    no_live: bool,
    /// Validates the scenario and exits.
    #[arg(long)]
    check: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Prints a bearer token for TENANT, signed as the scenario signs its tenants'.
    Token {
        #[arg(long)]
        scenario: PathBuf,
        tenant: String,
    },
    /// Prints two runs' figures side by side (fairness off, then on).
    Compare {
        off: PathBuf,
        on: PathBuf,
        /// Writes both runs and the checks as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Share points allowed, as a fraction (0.05: 5 points).
        #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
        tolerance: f64,
    },
    /// Checks a `compare --json` summary: with fairness on, the well-behaved tenants
    /// get their weight shares within the tolerance; off, visibly not. Exit 1 if not.
    Check {
        summary: PathBuf,
        #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
        tolerance: f64,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (30s, 2m, 500ms)"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: the unit is ms, s or m")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("{s:?} must be > 0"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("fairgate-loadgen: {message}");
    ExitCode::from(code)
}

fn load(path: &Path) -> Result<Scenario, String> {
    Scenario::load(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token { scenario, tenant }) => token(&scenario, &tenant),
        Some(Command::Compare {
            off,
            on,
            json,
            tolerance,
        }) => compare(&off, &on, json.as_deref(), tolerance),
        Some(Command::Check { summary, tolerance }) => check(&summary, tolerance),
        None => run_scenario(cli.run),
    }
}

fn token(path: &Path, tenant: &str) -> ExitCode {
    let scenario = match load(path) {
        Ok(s) => s,
        Err(e) => return fail(e, 2),
    };
    let Some(auth) = &scenario.auth else {
        return fail(format!("{}: has no [auth] section", path.display()), 2);
    };
    let key = scenario
        .tenant(tenant)
        .and_then(|t| t.token.as_ref())
        .map_or(0, |p| p.key);
    match auth.keys.get(key).map(|k| k.mint(&auth.claims, tenant)) {
        Some(Ok(token)) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Some(Err(e)) => fail(e, 1),
        None => fail("no signing key", 1),
    }
}

fn compare(off: &Path, on: &Path, json: Option<&Path>, tolerance: f64) -> ExitCode {
    let (off, on): (Report, Report) = match (read_json(off), read_json(on)) {
        (Ok(off), Ok(on)) => (off, on),
        (Err(e), _) | (_, Err(e)) => return fail(e, 2),
    };
    for line in table::side_by_side(&off, &on) {
        println!("{line}");
    }
    let summary = Summary::new(off, on, tolerance);
    if let Some(path) = json {
        if let Err(e) = write_json(path, &summary) {
            return fail(e, 1);
        }
    }
    ExitCode::SUCCESS
}

fn check(path: &Path, tolerance: f64) -> ExitCode {
    let summary: Summary = match read_json(path) {
        Ok(s) => s,
        Err(e) => return fail(e, 2),
    };
    let summary = Summary::new(summary.off, summary.on, tolerance);
    for c in &summary.checks {
        println!("{} {}", if c.ok { "ok  " } else { "FAIL" }, c.what);
    }
    if summary.checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_scenario(args: RunArgs) -> ExitCode {
    let Some(path) = args.scenario else {
        return fail("--scenario is required", 2);
    };
    let mut scenario = match load(&path) {
        Ok(s) => s,
        Err(e) => return fail(e, 2),
    };
    if args.check {
        println!("{}: ok, {} tenants", path.display(), scenario.tenants.len());
        return ExitCode::SUCCESS;
    }
    if let Some(d) = args.duration {
        // Keep the warm-up's proportion for short runs.
        let ratio = scenario.warmup.as_secs_f64() / scenario.duration.as_secs_f64();
        scenario.warmup = scenario.warmup.min(d.mul_f64(ratio.max(0.0)));
        scenario.duration = d;
    }
    let opts = RunOptions {
        target: args.target.clone(),
        info: RunInfo {
            label: args.label,
            target: args.target,
            scenario: path.display().to_string(),
        },
        live: !args.no_live,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e, 1),
    };
    let finished = match runtime.block_on(run(&scenario, &opts)) {
        Ok(f) => f,
        Err(e) => return fail(e, 1),
    };
    if let Some(json) = &args.json {
        if let Err(e) = write_json(json, &finished.report) {
            return fail(e, 1);
        }
    }
    if finished.interrupted {
        return ExitCode::from(130);
    }
    if finished.report.tenants.iter().all(|t| t.status.ok == 0) {
        return fail(
            format!(
                "no request succeeded: is the gateway at {} up?",
                opts.target
            ),
            1,
        );
    }
    ExitCode::SUCCESS
}
