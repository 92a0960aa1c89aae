//! `fairgate-sidecar --config sidecar.toml [--listen 127.0.0.1:9090] [--source nvml|sim]
//! [--redis-url URL]`
//! (see the crate's README). The flags override the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fairgate_sidecar::app::{self, Options};
use fairgate_sidecar::config::{Overrides, SourceKind};

/// Live GPU headroom per Envoy cluster, for fairgate's filter and for Prometheus.
#[derive(Debug, Parser)]
#[command(name = "fairgate-sidecar", version)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to serve on (port 0: any free port, printed at start-up).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where GPU readings come from (default: the file's `source`, else nvml).
    #[arg(long, value_enum)]
    source: Option<SourceKind>,
    /// The fleet's Redis (turns fleet mode on; overrides `[fleet] redis_url`).
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = Options {
        config: cli.config,
        overrides: Overrides {
            listen: cli.listen,
            source: cli.source,
            redis_url: cli.redis_url,
        },
        check: cli.check,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fairgate-sidecar: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("fairgate-sidecar: {fatal}");
            ExitCode::from(fatal.exit_code())
        }
    }
}
