#!/usr/bin/env bash
# fairgate demo: Envoy with the fairgate filter in front of a mock OpenAI-compatible
# model server, all on 127.0.0.1. Shows admitted, unauthenticated and rate-limited
# requests for two tenants, then the metrics. Installs what it needs; safe to re-run.
# Stops everything it started when done, on Ctrl-C, or on error.
#   --no-wait   exit after the walkthrough instead of leaving the gateway up
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

WAIT=1
[ "${1:-}" = "--no-wait" ] && WAIT=0
GATEWAY=http://127.0.0.1:10000
ADMIN=http://127.0.0.1:9901
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fairgate-demo.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in 10000 9901 18000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use; stop what listens there first" >&2
    exit 1
  fi
done

say "set-up: Rust target, Envoy $ENVOY_VERSION, build"
ensure_rustup target wasm32-wasip1
ensure_envoy
build_filter
cargo build --quiet --release -p fairgate-mock -p fairgate-e2e --bin fairgate-mock --bin fairgate-token

say "start the mock model server (127.0.0.1:18000) and Envoy with fairgate (127.0.0.1:10000)"
target/release/fairgate-mock --listen 127.0.0.1:18000 --name pool_a >"$RUN_DIR/mock.log" 2>&1 &
PIDS+=($!)
"$ENVOY_BIN" -c envoy/envoy.yaml --concurrency 2 --disable-hot-restart -l warning >"$RUN_DIR/envoy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  [ "$(curl -s "$ADMIN/ready" || true)" = LIVE ] && break
  sleep 0.1
done
[ "$(curl -s "$ADMIN/ready" || true)" = LIVE ] || { cat "$RUN_DIR/envoy.log"; exit 1; }
for _ in $(seq 50); do
  grep -q '^listening on' "$RUN_DIR/mock.log" && break
  sleep 0.1
done
grep -q '^listening on' "$RUN_DIR/mock.log" || { cat "$RUN_DIR/mock.log"; exit 1; }

ACME=$(target/release/fairgate-token acme --alg RS256)
GLOBEX=$(target/release/fairgate-token globex --alg HS256)
CHAT='{"model":"fairgate-mock-1","messages":[{"role":"user","content":"Say hello"}],"max_tokens":32}'
ask() { # ask <title> <curl args...>
  local title=$1; shift
  printf '\n\033[36m%s\033[0m\n' "$title"
  curl -s -i "$GATEWAY/v1/chat/completions" -H 'content-type: application/json' -d "$CHAT" "$@" \
    | grep -iE '^(HTTP/|retry-after|x-ratelimit|www-authenticate|\{)' || true
}

say "1. tenants identified by verified JWTs"
ask "acme, RS256 token -> admitted; the model server sees x-fairgate-tenant: acme" \
  -H "authorization: Bearer $ACME" -H 'x-fairgate-tenant: globex'
ask "globex, HS256 token -> admitted" -H "authorization: Bearer $GLOBEX"

say "2. unauthenticated"
ask "no token -> 401 missing_tenant"
ask "forged token (alg none) -> 401 invalid_tenant_token" \
  -H "authorization: Bearer $(printf '%s' '{"alg":"none","kid":"hs-1"}' | base64 | tr -d '=\n' | tr '/+' '_-').$(printf '%s' '{"tenant":"acme"}' | base64 | tr -d '=\n' | tr '/+' '_-')."

say "3. budgets: globex may send 1 request/s (burst 3), acme 20/s (burst 40)"
for tenant in globex acme; do
  token=$GLOBEX; [ $tenant = acme ] && token=$ACME
  codes=""
  for i in $(seq 8); do
    codes+="$(curl -s -o /dev/null -D "$RUN_DIR/$tenant-$i.headers" -w '%{http_code} ' \
      "$GATEWAY/v1/chat/completions" -H "authorization: Bearer $token" \
      -H 'content-type: application/json' -d "$CHAT")"
  done
  printf '%-7s 8 requests in a row: %s\n' "$tenant" "$codes"
done
printf '\n\033[36m%s\033[0m\n' "globex's last reply: 429 rate_limit_exceeded, with retry-after and x-ratelimit-*"
grep -iE '^(HTTP/|retry-after|x-ratelimit)' "$RUN_DIR/globex-8.headers"

say "4. metrics ($ADMIN/stats/prometheus)"
sleep 0.5 # each worker flushes its counters every 100 ms
curl -s "$ADMIN/stats/prometheus" | grep '^fg_requests'
printf '\nmodel server per-tenant totals: %s\n' "$(curl -s http://127.0.0.1:18000/mock/stats)"

if [ $WAIT = 1 ]; then
  say "the gateway stays up; Ctrl-C stops everything"
  echo "try:  curl -s $GATEWAY/v1/chat/completions -H \"authorization: Bearer \$(target/release/fairgate-token acme)\" -d '$CHAT'"
  echo "metrics: $ADMIN/stats/prometheus"
  wait
fi
