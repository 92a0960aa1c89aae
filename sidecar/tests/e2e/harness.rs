//! Runs the sidecar binary as a child process on a free port of 127.0.0.1, and talks
//! HTTP to it. The child dies with the test: killed on `Drop` (panics included), and by
//! the kernel if the test process itself is killed (`PR_SET_PDEATHSIG`).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long start-up may take before a test gives up: generous, for loaded machines.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sidecar.example.toml")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fairgate-sidecar-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// Writes `text` to `name` in the directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `fairgate-sidecar` with `args`, tied to the life of the test process.
pub fn sidecar_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fairgate-sidecar"));
    cmd.args(args);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL this
    // child when the test process dies, however it dies.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Runs the sidecar with `args` to its exit (killed after 30 s: it was meant to exit).
pub fn run_to_exit(args: &[&str]) -> Output {
    let mut child = sidecar_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fairgate-sidecar");
    let deadline = Instant::now() + READY_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect output")
}

/// A running sidecar; killed when dropped.
pub struct Sidecar {
    child: Child,
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
    client: reqwest::Client,
    _dir: Option<TempDir>,
}

impl Sidecar {
    /// Starts the sidecar on the config `text` (plus `extra` flags) and waits until it
    /// prints its address.
    pub fn start(text: &str, extra: &[&str]) -> Sidecar {
        let dir = TempDir::new();
        let path = dir.write("sidecar.toml", text);
        let mut sidecar = Self::start_file(&path, extra);
        sidecar._dir = Some(dir);
        sidecar
    }

    /// Starts the sidecar on the config file at `path`.
    pub fn start_file(path: &Path, extra: &[&str]) -> Sidecar {
        let mut args = vec![
            "--config".to_string(),
            path.display().to_string(),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = sidecar_command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fairgate-sidecar");

        let stdout = child.stdout.take().expect("stdout");
        let (addr_tx, addr_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = addr_tx.send(addr);
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });

        let addr = match addr_rx.recv_timeout(READY_TIMEOUT) {
            Ok(addr) => addr.parse().expect("a socket address after 'listening on'"),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let log = err_rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                panic!("the sidecar did not start ({status:?}):\n{log}");
            }
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Sidecar {
            child,
            addr,
            stderr: err_rx,
            client,
            _dir: None,
        }
    }

    /// `GET path`: the status, the content type and the body.
    pub async fn get(&self, path: &str) -> (u16, String, String) {
        let response = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, content_type, response.text().await.expect("body"))
    }

    /// `POST path` with a JSON `body`: the status and the body.
    pub async fn post(&self, path: &str, body: &str) -> (u16, String) {
        let response = self
            .client
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// `GET /v1/headroom` as JSON.
    pub async fn headroom(&self) -> serde_json::Value {
        let (status, _, body) = self.get("/v1/headroom").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("headroom is JSON")
    }

    /// Polls `/v1/headroom` until `done` holds (or panics after a generous wait).
    pub async fn headroom_when(
        &self,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let headroom = self.headroom().await;
            if done(&headroom) {
                return headroom;
            }
            assert!(
                Instant::now() < deadline,
                "never came true; last: {headroom:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the sidecar (SIGTERM) and returns its exit status and stderr.
    pub fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code();
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self
            .stderr
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        (status, log)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
