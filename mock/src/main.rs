//! `fairgate-mock [--listen 127.0.0.1:18000] [--name mock] [--slots 4] ...`: the mock
//! model server of the `fairgate_mock` library, as a program. Prints one line,
//! `listening on ADDR`, once it listens; stops on SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use fairgate_mock::MockConfig;

/// A deterministic OpenAI-compatible model server with simulated GPU slots.
#[derive(Debug, Parser)]
#[command(name = "fairgate-mock", version)]
struct Cli {
    /// Address to serve on (port 0: any free port; the line printed says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18000")]
    listen: SocketAddr,
    /// Name sent in `x-mock-server` on every response.
    #[arg(long, default_value_t = MockConfig::default().name)]
    name: String,
    /// Requests served at once (simulated GPU slots).
    #[arg(long, default_value_t = MockConfig::default().slots)]
    slots: usize,
    /// Requests that may wait for a slot before 503 `overloaded`.
    #[arg(long, default_value_t = MockConfig::default().max_queue)]
    max_queue: usize,
    /// Milliseconds before the first token.
    #[arg(long, default_value_t = MockConfig::default().prefill_ms)]
    prefill_ms: u64,
    /// Milliseconds per answer token.
    #[arg(long, default_value_t = MockConfig::default().token_ms)]
    token_ms: u64,
    /// Answer length when the request does not say.
    #[arg(long, default_value_t = MockConfig::default().default_completion_tokens)]
    completion_tokens: u64,
    /// The model served.
    #[arg(long, default_value_t = MockConfig::default().model)]
    model: String,
}

/// Resolves on SIGINT or SIGTERM. It listens for them from the call on, so a signal
/// sent as soon as the address is printed is not missed.
#[cfg(unix)]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = MockConfig {
        name: cli.name,
        slots: cli.slots,
        max_queue: cli.max_queue,
        prefill_ms: cli.prefill_ms,
        token_ms: cli.token_ms,
        default_completion_tokens: cli.completion_tokens,
        model: cli.model,
    };
    let stop = match stop_signal() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("fairgate-mock: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mock = match fairgate_mock::spawn(config, cli.listen).await {
        Ok(mock) => mock,
        Err(e) => {
            eprintln!("fairgate-mock: cannot serve on {}: {e}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "listening on {}", mock.addr)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("fairgate-mock: listening on {}", mock.addr);
    }
    stop.await;
    mock.stop();
    ExitCode::SUCCESS
}
