//! The module Envoy loads: which callbacks it exports. Envoy enters the VM for every
//! exported callback on every request, so fairgate exports none it does not use
//! (vendor/proxy-wasm/FAIRGATE.md); an SDK update that brought them back would cost
//! every request up to three VM entries, and this test says so.

use fairgate_e2e::envoy::{filter_wasm, Envoy, EnvoyConfig};
use fairgate_e2e::plugin;
use serde_json::json;

use crate::{client, get};

/// The names in a wasm module's export section.
fn exports(module: &[u8]) -> Vec<String> {
    fn leb(bytes: &[u8], at: &mut usize) -> usize {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = bytes[*at];
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }
    assert_eq!(&module[..4], b"\0asm", "not a wasm module");
    let mut at = 8;
    let mut names = Vec::new();
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = leb(module, &mut at);
        let end = at + size;
        if id == 7 {
            let mut p = at;
            for _ in 0..leb(module, &mut p) {
                let len = leb(module, &mut p);
                names.push(String::from_utf8_lossy(&module[p..p + len]).into_owned());
                p += len;
                p += 1; // kind
                leb(module, &mut p); // index
            }
        }
        at = end;
    }
    names
}

#[test]
fn the_module_exports_the_callbacks_it_uses_and_not_context_create_on_log_or_on_delete() {
    let module = std::fs::read(filter_wasm()).expect("the filter module");
    let exports = exports(&module);
    for needed in [
        "proxy_abi_version_0_2_1",
        "proxy_on_vm_start",
        "proxy_on_configure",
        "proxy_on_request_headers",
        "proxy_on_request_body",
        "proxy_on_response_headers",
        "proxy_on_response_body",
        "proxy_on_done",
        "proxy_on_tick",
        "proxy_on_queue_ready",
        "proxy_on_http_call_response",
        "proxy_on_memory_allocate",
    ] {
        assert!(
            exports.iter().any(|e| e == needed),
            "{needed} missing from {exports:?}"
        );
    }
    for dropped in ["proxy_on_context_create", "proxy_on_log", "proxy_on_delete"] {
        assert!(
            !exports.iter().any(|e| e == dropped),
            "{dropped} is exported again: Envoy would enter the VM for it on every request \
             (vendor/proxy-wasm/FAIRGATE.md)"
        );
    }
}

/// A header-mode configuration that knows one tenant.
fn only(tenant: &str) -> String {
    plugin::config(
        json!({"header": "x-tenant-id"}),
        json!({ tenant: {"weight": 1} }),
        None,
    )
}

/// fairgate creates a stream's context at its first callback (the module does not
/// export `proxy_on_context_create`), so with several fairgate configurations in one VM
/// it must still pick each stream's own: by `root_id`, then by the filter's `name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_configurations_in_one_vm_each_serve_their_own_listener() {
    let config = EnvoyConfig::new(only("acme"))
        .concurrency(2)
        .listener("by-root-id", "fairgate", "fairgate-2", &only("globex"))
        .listener("by-name", "fairgate-3", "fairgate", &only("initech"));
    let envoy = Envoy::start(&config);
    let client = client();
    let listeners = [
        ("main", "acme"),
        ("by-root-id", "globex"),
        ("by-name", "initech"),
    ];
    for round in 0..3 {
        for (listener, own) in listeners {
            let url = envoy.url_on(listener, "/");
            for (_, tenant) in listeners {
                let reply = get(&client, &url, &[("x-tenant-id", tenant)]).await;
                let expected = if tenant == own { 200 } else { 403 };
                assert_eq!(
                    reply.status, expected,
                    "round {round}: {tenant} on {listener}: {}",
                    reply.body
                );
            }
        }
    }
    let log = envoy.log();
    assert!(!log.contains("panicked"), "a VM panicked:\n{log}");
}

/// A configuration update (the listener changed through LDS, as Istio does) creates a
/// new root context next to the old one, with the same `root_id` and `name`, while the
/// old one drains: new streams, on new connections and on old ones, get the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_update_takes_over_new_streams_while_the_old_one_drains() {
    let from_file = |tenant: &str| {
        EnvoyConfig::new(only(tenant))
            .concurrency(2)
            .listeners_from_file()
    };
    let envoy = Envoy::start(&from_file("acme"));
    let url = envoy.url("/");
    // Kept alive across the update: its connection stays on the old filter chain.
    let old = client();
    let status = |client: reqwest::Client, tenant: &'static str| {
        let url = url.clone();
        async move { get(&client, &url, &[("x-tenant-id", tenant)]).await.status }
    };
    assert_eq!(status(old.clone(), "acme").await, 200);
    assert_eq!(status(old.clone(), "globex").await, 403);

    envoy.update_listeners(&from_file("globex"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(client(), "globex").await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the update never took effect:\n{}",
            envoy.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        assert_eq!(status(client(), "globex").await, 200);
        assert_eq!(status(client(), "acme").await, 403);
        assert_eq!(status(old.clone(), "globex").await, 200);
        assert_eq!(status(old.clone(), "acme").await, 403);
    }
    let log = envoy.log();
    assert!(!log.contains("panicked"), "a VM panicked:\n{log}");
}
