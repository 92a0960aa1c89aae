//! The real `fairgate-sidecar` binary (`target/debug`, built by `scripts/test.sh`, or
//! `FAIRGATE_SIDECAR_BIN`)
//! on a free port of 127.0.0.1, in `sim` mode; killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::envoy::{repo_root, TempDir};

pub struct Sidecar {
    child: Child,
    _dir: TempDir,
    pub addr: SocketAddr,
}

impl Sidecar {
    /// Starts the sidecar with the TOML config `config` (its `listen` is overridden).
    pub fn start(config: &str) -> Sidecar {
        Self::start_on(config, "127.0.0.1:0")
    }

    /// Starts it on `listen` (to restart one on the address Envoy knows).
    pub fn start_on(config: &str, listen: &str) -> Sidecar {
        // FAIRGATE_SIDECAR_BIN: another build (the benchmarks use the release one).
        let bin = std::env::var_os("FAIRGATE_SIDECAR_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/debug/fairgate-sidecar"));
        assert!(
            bin.exists(),
            "{} is missing: cargo build -p fairgate-sidecar",
            bin.display()
        );
        let dir = TempDir::new("sidecar");
        let path = dir.0.join("sidecar.toml");
        std::fs::write(&path, config).expect("write sidecar config");
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&path)
            .args(["--listen", listen, "--source", "sim"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sidecar");
        let stdout = child.stdout.take().expect("stdout");
        let mut addr = None;
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                break;
            }
        }
        // Keep reading, so that a later line never meets a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let addr = addr.expect("the sidecar printed no 'listening on ADDR'");
        Sidecar {
            child,
            _dir: dir,
            addr,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it now (to make its snapshot go stale).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The value of a series of its `/metrics` (name and labels as printed).
    pub fn metric(&self, series: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.addr).ok()?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: sidecar\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop();
    }
}
