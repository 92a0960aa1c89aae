#!/usr/bin/env bash
# Validates fairgate's deployment files offline (no Docker engine, no Kubernetes):
#
# - docker-compose.yml: `docker-compose config -q`, and the files it mounts exist;
# - Prometheus: `promtool check config`, `check rules`, `test rules` (alert tests);
# - Grafana: every PromQL expression of the dashboards through `promtool check rules`;
# - the metrics the dashboards and alerts name are exported by the filter or the
#   sidecar (the sidecar's, read from a running sidecar's /metrics);
# - Istio (deploy/istio): every object against Istio's CRD schemas and Kubernetes'
#   schemas, unknown fields refused; the cluster names agree between the WasmPlugin,
#   the VirtualService, the sidecar's Service and its config;
# - the sidecar configs: `fairgate-sidecar --check`;
# - Envoy: every shipped full Envoy config (envoy/envoy-module.yaml with the built
#   native module), the compose one with its wasm path
#   pointed at the built filter, and the Istio pluginConfig embedded in a config with
#   Istio's cluster names and the EnvoyFilter's stats_tags, through
#   `envoy --mode validate` (the filter must log "fairgate: configured");
# - the Dockerfiles parse.
#
# Installs what it lacks, idempotently: Debian's docker-compose and prometheus
# (promtool) with apt-get only when missing; the npm packages pinned in
# scripts/deploy-check/package-lock.json into .tools/deploy-check. Expects the filter
# and the native module built (scripts/test.sh builds them first); builds the sidecar
# (debug, as the tests do) unless SIDECAR_BIN names one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

WASM=target/wasm32-wasip1/release/fairgate_filter.wasm
MODULE=target/release/libfairgate.so
TOOLS=.tools/deploy-check

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

say "deploy checks: tools"
missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v promtool >/dev/null || missing+=(prometheus)
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
lock=$(cat scripts/deploy-check/package.json scripts/deploy-check/package-lock.json | sha256sum)
if [ "$(cat "$TOOLS/.installed" 2>/dev/null)" != "$lock" ]; then
  mkdir -p "$TOOLS"
  cp scripts/deploy-check/package.json scripts/deploy-check/package-lock.json "$TOOLS/"
  (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock" >"$TOOLS/.installed"
fi
ensure_envoy
[ -f "$WASM" ] || { echo "$WASM is missing: build the filter first (scripts/lib.sh build_filter)" >&2; exit 1; }
[ -f "$MODULE" ] || { echo "$MODULE is missing: build the native module first (scripts/lib.sh build_module)" >&2; exit 1; }
if [ -z "${SIDECAR_BIN:-}" ]; then
  cargo build --quiet -p fairgate-sidecar
  SIDECAR_BIN=target/debug/fairgate-sidecar
fi
docker-compose version --short
promtool --version 2>&1 | head -1

say "deploy checks: docker-compose.yml"
docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: ok"

say "deploy checks: the sidecar configs and its metric names"
for toml in deploy/compose/sidecar.toml sidecar/sidecar.example.toml; do
  "$SIDECAR_BIN" --config "$toml" --check
done
# A running sidecar lists its series; a fake vLLM endpoint makes it export the
# model-server ones too.
python3 -c '
import http.server, sys
body = b"vllm:num_requests_waiting 1\nvllm:num_requests_running 2\nvllm:kv_cache_usage_perc 0.3\n"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()' >"$tmp/vllm.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/vllm.port" ] && break; sleep 0.1; done
# Fleet mode's per-tenant series appear once a poll has been granted, reported
# expired and handed back: a redis-server for that.
ensure_redis
redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.1; done
cat >"$tmp/metrics-sidecar.toml" <<EOF
source = "sim"
poll_ms = 100
[[sim.gpus]]
memory_total_gib = 80
curve = [{ t_s = 0, utilization = 0.5, memory_used = 0.5 }]
[clusters.pool_a]
gpus = [0]
endpoints = ["http://127.0.0.1:$(cat "$tmp/vllm.port")/metrics"]
base_capacity = 8
# Fleet mode's series too, on a real Redis (below).
[fleet]
redis_url = "redis://127.0.0.1:$redis_port/0"
EOF
"$SIDECAR_BIN" --config "$tmp/metrics-sidecar.toml" --listen 127.0.0.1:0 >"$tmp/sidecar.log" 2>&1 &
pids+=($!)
metrics=""
for _ in $(seq 100); do
  addr=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/sidecar.log" | cut -d' ' -f3 || true)
  if [ -n "$addr" ]; then
    metrics=$(curl -fsS "http://$addr/metrics" || true)
    grep -q '^fairgate_cluster_requests_waiting' <<<"$metrics" && break
  fi
  sleep 0.1
done
grep -q '^fairgate_cluster_requests_waiting' <<<"$metrics" ||
  { echo "the sidecar did not export its model-server series:" >&2; cat "$tmp/sidecar.log" >&2; exit 1; }
limits='"limits": {"requests_per_second": 10, "request_burst": 10}, "demand": true'
for report in '{}' '{"spent": 0, "expired": 1, "applied": 1}' '{"spent": 0, "expired": 1, "applied": 1}'; do
  curl -fsS -o /dev/null "http://$addr/v1/fleet/poll" -H 'content-type: application/json' \
    -d "{\"envoy\": \"check\", \"boot\": \"b\", \"poll_ms\": 100, \"tenants\": {\"t\": {$limits, \"requests\": $report}},
         \"pools\": {\"pool_a\": {\"capacity\": 8, \"tenants\": {\"t\": {\"weight\": 1, \"queued\": 2}}}}}"
done
metrics=$(curl -fsS "http://$addr/metrics")
{
  grep -v '^#' <<<"$metrics" | sed 's/[{ ].*//'
  grep '^# TYPE' <<<"$metrics" | cut -d' ' -f3
  grep -rhoE '\bfg_[a-z0-9_]+' core/src filter/src
} | sort -u >"$tmp/known-metrics.txt"
echo "$(wc -l <"$tmp/known-metrics.txt") metric names exported"

say "deploy checks: Istio manifests, Grafana dashboards, Dockerfiles"
node scripts/deploy-check/check-manifests.mjs "$TOOLS" "$tmp" "$tmp/known-metrics.txt"
"$SIDECAR_BIN" --config "$tmp/istio-sidecar.toml" --check | sed 's#^[^:]*:#deploy/istio/sidecar.yaml sidecar.toml:#'

say "deploy checks: Prometheus rules and config, dashboard PromQL"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts.test.yml
promtool check rules "$tmp/dashboard-rules.yml" | sed "s#$tmp/dashboard-rules.yml#deploy/grafana/dashboards (every expr)#"

say "deploy checks: Envoy configs (envoy --mode validate)"
envoy_validate() { # FILE WHAT
  if ! ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$REPO_ROOT/$(dirname "$MODULE")" \
    "$ENVOY_BIN" --mode validate -l info -c "$1" >"$tmp/envoy.log" 2>&1 ||
    ! grep -q 'fairgate: configured' "$tmp/envoy.log"; then
    grep -E 'fairgate|error|critical' "$tmp/envoy.log" >&2 || cat "$tmp/envoy.log" >&2
    echo "$2: envoy --mode validate failed" >&2
    return 1
  fi
  echo "$2: ok"
}
shipped_tags=$(grep -oE "regex: '.*'" envoy/envoy.yaml)
for config in envoy/*.yaml demo/*.yaml; do
  if [ -f "$config" ] && grep -q '^static_resources:' "$config"; then
    envoy_validate "$config" "$config"
  fi
done
# The compose config loads the filter from the volume the compose stack fills; here,
# from the build. Its hostnames stay: validate mode resolves no DNS.
sed "s#/etc/fairgate/wasm/fairgate_filter.wasm#$REPO_ROOT/$WASM#" deploy/compose/envoy.yaml >"$tmp/compose-envoy.yaml"
envoy_validate "$tmp/compose-envoy.yaml" deploy/compose/envoy.yaml
# Every stats tag of envoy/envoy.yaml, plus `kind`, in the compose and Istio configs.
for file in deploy/compose/envoy.yaml deploy/istio/stats-tags.yaml; do
  while read -r tag; do
    grep -qF -- "$tag" "$file" || { echo "$file lacks the stats tag $tag of envoy/envoy.yaml" >&2; exit 1; }
  done <<<"$shipped_tags"
  grep -q 'tag_name: kind' "$file" || { echo "$file lacks the stats tag kind" >&2; exit 1; }
done
# The Istio pluginConfig, as Istio hands it to the filter, in a gateway-like config:
# clusters named as Istio names them, the stats_tags of the EnvoyFilter.
python3 - "$tmp" "$REPO_ROOT/$WASM" >"$tmp/istio-envoy.yaml" <<'EOF'
import json, sys
tmp, wasm = sys.argv[1], sys.argv[2]
plugin = json.load(open(f"{tmp}/istio-plugin-config.json"))
names = [plugin["sidecar"]["cluster"], *plugin["routing"]["shared_clusters"]]
names += [t["cluster"] for t in plugin["tenants"].values() if "cluster" in t]
cluster = lambda n: {"name": n, "type": "STATIC", "connect_timeout": "1s", "load_assignment": {
    "cluster_name": n, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
        "socket_address": {"address": "127.0.0.1", "port_value": 9}}}}]}]}}
wasm_filter = {"name": "envoy.filters.http.wasm", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
    "config": {"name": "fairgate", "root_id": "fairgate", "failure_policy": "FAIL_CLOSED",
               "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm}}},
               "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                 "value": json.dumps(plugin)}}}}
hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
       "stat_prefix": "gateway", "route_config": {"virtual_hosts": [{"name": "llm", "domains": ["*"], "routes": [
           {"match": {"prefix": "/"}, "route": {"cluster_header": plugin["routing"]["header"]}}]}]},
       "http_filters": [wasm_filter, {"name": "envoy.filters.http.router", "typed_config": {
           "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
print(json.dumps({
    "stats_config": {"stats_tags": json.load(open(f"{tmp}/istio-stats-tags.json"))},
    "static_resources": {
        "listeners": [{"name": "gateway", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                       "typed_config": hcm}]}]}],
        "clusters": [cluster(n) for n in dict.fromkeys(names)]}}, indent=1))
EOF
envoy_validate "$tmp/istio-envoy.yaml" "deploy/istio/wasmplugin.yaml pluginConfig"

say "deploy checks: all passed ($((SECONDS))s)"
