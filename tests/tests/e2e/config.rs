//! SPEC section 2 (validation): a bad configuration is refused as a whole, and
//! Envoy's log names the field; the shipped configs load.

use fairgate_e2e::envoy::{repo_root, validate, validate_file, EnvoyConfig, TempDir};
use fairgate_e2e::plugin;
use serde_json::{json, Value};

fn with(mutate: impl Fn(&mut Value)) -> String {
    let mut cfg: Value = serde_json::from_str(&plugin::config(
        plugin::jwt_identity(),
        json!({"acme": {"weight": 4}, "free": {"weight": 1}}),
        Some("free"),
    ))
    .expect("json");
    mutate(&mut cfg);
    cfg.to_string()
}

#[test]
fn bad_configurations_fail_validation_and_the_log_names_the_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            with(|c| c["tenants"]["acme"]["wieght"] = json!(1)),
            "fairgate: tenants.acme.wieght: unknown field",
        ),
        (
            "weight 0",
            with(|c| c["tenants"]["acme"]["weight"] = json!(0)),
            "fairgate: tenants.acme.weight: must be > 0",
        ),
        (
            "duplicate kid",
            with(|c| c["identity"]["jwt"]["keys"][1]["kid"] = json!("hs-1")),
            "fairgate: identity.jwt.keys[1].kid: duplicate key id",
        ),
        (
            "bad PEM",
            with(|c| {
                c["identity"]["jwt"]["keys"][1]["pem"] =
                    json!("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
            }),
            "fairgate: identity.jwt.keys[1].pem:",
        ),
        (
            "unknown default_tenant",
            with(|c| c["default_tenant"] = json!("nobody")),
            "fairgate: default_tenant: names no tenant",
        ),
        (
            "wrong type",
            with(|c| c["pool"] = json!({"max_concurrency": "lots"})),
            "fairgate: pool.max_concurrency: invalid type",
        ),
        (
            "burst below 1",
            with(|c| {
                c["tenants"]["acme"]["requests_per_second"] = json!(5);
                c["tenants"]["acme"]["request_burst"] = json!(0.5);
            }),
            "fairgate: tenants.acme.request_burst: must be >= 1",
        ),
    ];
    for (what, config, expected) in cases {
        let v = validate(&EnvoyConfig::new(config));
        assert!(!v.ok, "{what}: validation passed");
        assert!(
            v.log.contains(expected),
            "{what}: no {expected:?} in:\n{}",
            v.log
        );
    }
}

#[test]
fn a_good_configuration_passes_validation() {
    let v = validate(&EnvoyConfig::new(with(|_| {})));
    assert!(v.ok, "{}", v.log);
    assert!(v.log.contains("fairgate: configured"), "{}", v.log);
}

#[test]
fn the_shipped_demo_config_is_valid() {
    let v = validate_file(&repo_root().join("envoy/envoy.yaml"), &repo_root());
    assert!(v.ok, "{}", v.log);
    assert!(v.log.contains("fairgate: configured"), "{}", v.log);
}

#[test]
fn the_shipped_snippet_loads_into_an_existing_config() {
    let snippet =
        std::fs::read_to_string(repo_root().join("envoy/filter-snippet.yaml")).expect("snippet");
    let indented: String = snippet
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("          {l}\n"))
        .collect();
    let bootstrap = format!(
        "static_resources:
  listeners:
  - name: existing
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: existing
          route_config:
            virtual_hosts:
            - name: all
              domains: [\"*\"]
              routes:
              - match: {{prefix: /}}
                direct_response: {{status: 200}}
          http_filters:
{indented}          - name: envoy.filters.http.router
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"
    );
    let dir = TempDir::new("snippet");
    let path = dir.0.join("envoy.yaml");
    std::fs::write(&path, bootstrap).expect("write");
    let v = validate_file(&path, &repo_root());
    assert!(v.ok, "{}", v.log);
    assert!(v.log.contains("fairgate: configured"), "{}", v.log);
}
