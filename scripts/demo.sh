#!/usr/bin/env bash
# fairgate demo: the whole topology on 127.0.0.1 — Envoy with fairgate, the
# GPU sidecar on simulated GPUs, two shared pools and one dedicated cluster of mock
# model servers — and the load of demo/scenario.toml run twice: fairness off (the same
# Envoy config without its "pool" section: the model servers' FIFO queues decide),
# then fairgate on. Shows a live table per run, then both side by side, where the
# metrics are and a curl to try. Installs what it needs; safe to re-run. Stops
# everything it started when done, on Ctrl-C, or on error.
#   --duration SECONDS  length of each run (default 30)
#   --json FILE         write both runs' figures and the fairness checks there
#   --no-wait           exit at the end instead of leaving the gateway up
#   --dev               build the native programs with the dev profile (faster build)
#   --host wasm|module  fairgate as the proxy-wasm filter (envoy/envoy.yaml, default)
#                       or the native dynamic module (envoy/envoy-module.yaml)
#   --replicas N        fleet mode instead (2 to 8): a Redis, N Envoys each with its own
#                       sidecar; one tenant's budget held across all of them, and the
#                       pools shared by weight with tenants entering through different
#                       gateways
# Ports (env): DEMO_PORT_GATEWAY 10000, DEMO_PORT_ADMIN 9901, DEMO_PORT_POOL_A 18001,
# DEMO_PORT_POOL_B 18002, DEMO_PORT_ACME 18003, DEMO_PORT_SIDECAR 9090,
# DEMO_PORT_REDIS 16379; with --replicas, Envoy i (from 0) adds i to the gateway, admin
# and sidecar ports.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

DURATION=30 JSON="" WAIT=1 PROFILE=release HOST=wasm REPLICAS=1
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
    --json) JSON=${2:?--json needs a file}; shift 2 ;;
    --no-wait) WAIT=0; shift ;;
    --dev) PROFILE=dev; shift ;;
    --host) HOST=${2:?--host needs wasm or module}; shift 2 ;;
    --replicas) REPLICAS=${2:?--replicas needs a number}; shift 2 ;;
    *) echo "usage: $0 [--duration SECONDS] [--json FILE] [--no-wait] [--dev] [--host wasm|module] [--replicas N]" >&2; exit 2 ;;
  esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 5 ]] || { echo "--duration: whole seconds, at least 5" >&2; exit 2; }
[[ $REPLICAS =~ ^[1-8]$ ]] || { echo "--replicas: 1 to 8" >&2; exit 2; }
case $HOST in
  wasm) ENVOY_CONFIG=envoy/envoy.yaml METRIC_PREFIX="" ;;
  module) ENVOY_CONFIG=envoy/envoy-module.yaml METRIC_PREFIX=envoy_dynamicmodulescustom_ ;;
  *) echo "--host: wasm or module" >&2; exit 2 ;;
esac
# A relative --json is relative to where the demo was started, not the repository.
case $JSON in "" | /*) ;; *) JSON="$OLDPWD/$JSON" ;; esac

GATEWAY_PORT=${DEMO_PORT_GATEWAY:-10000}
ADMIN_PORT=${DEMO_PORT_ADMIN:-9901}
POOL_A_PORT=${DEMO_PORT_POOL_A:-18001}
POOL_B_PORT=${DEMO_PORT_POOL_B:-18002}
ACME_PORT=${DEMO_PORT_ACME:-18003}
SIDECAR_PORT=${DEMO_PORT_SIDECAR:-9090}
REDIS_PORT=${DEMO_PORT_REDIS:-16379}
GATEWAY=http://127.0.0.1:$GATEWAY_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
SIDECAR=http://127.0.0.1:$SIDECAR_PORT

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fairgate-demo.XXXXXX")
PIDS=()
ENVOY_PID=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORTS=("$POOL_A_PORT" "$POOL_B_PORT" "$ACME_PORT")
for ((i = 0; i < REPLICAS; i++)); do
  PORTS+=($((GATEWAY_PORT + i)) $((ADMIN_PORT + i)) $((SIDECAR_PORT + i)))
done
[ "$REPLICAS" -gt 1 ] && PORTS+=("$REDIS_PORT")
for port in "${PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use; stop what listens there first (or set DEMO_PORT_*)" >&2
    exit 1
  fi
done

say "set-up: Rust target, Envoy $ENVOY_VERSION, build (fairgate's $HOST host; $PROFILE profile for the other programs)"
ensure_rustup target wasm32-wasip1
ensure_envoy
if [ "$HOST" = module ]; then
  build_module
  # Where Envoy finds libfairgate.so (dynamic_module_config: {name: fairgate}).
  export ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$REPO_ROOT/target/release
else
  build_filter
fi
[ "$REPLICAS" -gt 1 ] && ensure_redis
cargo build --quiet --profile "$PROFILE" -p fairgate-mock -p fairgate-sidecar -p fairgate-loadgen
BIN=target/$([ "$PROFILE" = dev ] && echo debug || echo release)
LOADGEN=$BIN/fairgate-loadgen
"$LOADGEN" --scenario demo/scenario.toml --check >/dev/null

# The shipped configs, on this run's ports; "off" is "on" without its "pool" line.
sed -e "s/port_value: 10000\b/port_value: $GATEWAY_PORT/" -e "s/port_value: 9901\b/port_value: $ADMIN_PORT/" \
  -e "s/port_value: 18001\b/port_value: $POOL_A_PORT/" -e "s/port_value: 18002\b/port_value: $POOL_B_PORT/" \
  -e "s/port_value: 18003\b/port_value: $ACME_PORT/" -e "s/port_value: 9090\b/port_value: $SIDECAR_PORT/" \
  "$ENVOY_CONFIG" >"$RUN_DIR/envoy-on.yaml"
grep -v '^ *"pool": {' "$RUN_DIR/envoy-on.yaml" >"$RUN_DIR/envoy-off.yaml"
sed -e "s#127.0.0.1:18001/#127.0.0.1:$POOL_A_PORT/#" -e "s#127.0.0.1:18002/#127.0.0.1:$POOL_B_PORT/#" \
  -e "s#127.0.0.1:18003/#127.0.0.1:$ACME_PORT/#" demo/sidecar.toml >"$RUN_DIR/sidecar.toml"

# wait_for URL WHAT LOG: until URL answers 200, 10 s at most.
wait_for() {
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not come up; its log:" >&2
  cat "$3" >&2
  exit 1
}

say "start the model servers (4 GPU slots each)"
for spec in "pool_a $POOL_A_PORT" "pool_b $POOL_B_PORT" "acme_dedicated $ACME_PORT"; do
  read -r name port <<<"$spec"
  "$BIN/fairgate-mock" --listen "127.0.0.1:$port" --name "$name" --slots 4 \
    --prefill-ms 20 --token-ms 5 >"$RUN_DIR/mock-$name.log" 2>&1 &
  PIDS+=($!)
  echo "  $name: fairgate-mock on 127.0.0.1:$port"
done
for spec in "pool_a $POOL_A_PORT" "pool_b $POOL_B_PORT" "acme_dedicated $ACME_PORT"; do
  read -r name port <<<"$spec"
  wait_for "http://127.0.0.1:$port/metrics" "fairgate-mock $name" "$RUN_DIR/mock-$name.log"
done

if [ "$REPLICAS" -gt 1 ]; then
  # shellcheck source=scripts/demo-fleet.sh
  source scripts/demo-fleet.sh
  exit 0
fi

"$BIN/fairgate-sidecar" --config "$RUN_DIR/sidecar.toml" --source sim \
  --listen "127.0.0.1:$SIDECAR_PORT" >"$RUN_DIR/sidecar.log" 2>&1 &
PIDS+=($!)
echo "  fairgate-sidecar (simulated GPUs, scraping the model servers) on 127.0.0.1:$SIDECAR_PORT"
wait_for "$SIDECAR/healthz" fairgate-sidecar "$RUN_DIR/sidecar.log"

start_envoy() { # start_envoy CONFIG
  "$ENVOY_BIN" -c "$1" --concurrency 2 --disable-hot-restart -l warning >"$RUN_DIR/envoy.log" 2>&1 &
  ENVOY_PID=$!
  PIDS+=("$ENVOY_PID")
  for _ in $(seq 100); do
    [ "$(curl -s "$ADMIN/ready" || true)" = LIVE ] && return 0
    sleep 0.1
  done
  cat "$RUN_DIR/envoy.log" >&2
  exit 1
}

stop_envoy() {
  kill "$ENVOY_PID" 2>/dev/null || true
  wait "$ENVOY_PID" 2>/dev/null || true
}

# Until no model server has a request running or waiting (10 s at most), so that a
# run does not start behind the last one's queue.
wait_idle() {
  for _ in $(seq 100); do
    local busy=0
    for port in "$POOL_A_PORT" "$POOL_B_PORT" "$ACME_PORT"; do
      busy=$((busy + $(curl -s "http://127.0.0.1:$port/metrics" |
        awk '/^vllm:num_requests_(running|waiting)[{ ]/ {n += $NF} END {printf "%d", n}')))
    done
    [ "$busy" = 0 ] && return 0
    sleep 0.1
  done
}

run_phase() { # run_phase LABEL CONFIG JSON
  start_envoy "$2"
  "$LOADGEN" --scenario demo/scenario.toml --target "$GATEWAY" --duration "${DURATION}s" \
    --label "$1" --json "$3"
}

say "1/2 fairness off: Envoy without fairgate's pool section; the model servers' queues decide ($DURATION s)"
run_phase "fairness off" "$RUN_DIR/envoy-off.yaml" "$RUN_DIR/off.json"
stop_envoy
wait_idle

say "2/2 fairgate on: weighted-fair admission to each pool's 4 slots ($DURATION s)"
run_phase "fairgate on" "$RUN_DIR/envoy-on.yaml" "$RUN_DIR/on.json"

say "side by side: share of the shared pools vs weight share, p99 latency, refusals"
SUMMARY=${JSON:-$RUN_DIR/summary.json}
"$LOADGEN" compare "$RUN_DIR/off.json" "$RUN_DIR/on.json" --json "$SUMMARY"
echo
"$LOADGEN" check "$SUMMARY" || true
[ -n "$JSON" ] && echo "both runs' figures: $JSON"

say "metrics"
sleep 0.3 # each worker flushes its counters every 100 ms
echo "fairgate in Envoy:    $ADMIN/stats/prometheus   e.g."
curl -s "$ADMIN/stats/prometheus" | grep -E "^${METRIC_PREFIX}fg_(requests\\{tenant=\"(globex|hooli)\",decision=\"admitted\"\\}|pool_capacity|tokens\\{tenant=\"globex\")" | sed 's/^/    /'
echo "GPU sidecar:          $SIDECAR/metrics   $SIDECAR/v1/headroom"
echo "model servers:        http://127.0.0.1:$POOL_A_PORT/metrics   http://127.0.0.1:$POOL_A_PORT/mock/stats"

TOKEN=$("$LOADGEN" token --scenario demo/scenario.toml globex)
echo
echo "try (a fresh globex token, valid 24 h; test keys, demo only):"
echo "  curl -s $GATEWAY/v1/chat/completions -H 'authorization: Bearer $TOKEN' -H 'content-type: application/json' -d '{\"model\":\"fairgate-mock-1\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}],\"max_tokens\":32}'"

if [ $WAIT = 1 ]; then
  say "the gateway stays up with fairgate on; Ctrl-C stops everything"
  wait
fi
