# fairgate demo, fleet mode (sourced by scripts/demo.sh --replicas N): a Redis, N
# Envoys each with its own GPU sidecar (the demo's, with a [fleet] section), the same
# model servers behind all of them. Then:
# - tenant "free" (2 requests/s, burst 5) sent as fast as one client per Envoy can,
#   through every Envoy at once. Without fleet mode each Envoy would admit the whole
#   budget; with it, all of them together admit it once;
# - the shared pools saturated by three tenants entering through different gateways:
#   globex (weight 3) through every one, initech (1) only through the first, hooli (1)
#   only through the last. The pools' slots are the fleet's, so the shares follow the
#   weights fleet-wide: 60 %, 20 %, 20 %.

say "start Redis on 127.0.0.1:$REDIS_PORT, $REPLICAS sidecars and $REPLICAS Envoys (fleet mode, outage: safe)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  >"$RUN_DIR/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.1
done

ENVOY_PIDS=()
for ((i = 0; i < REPLICAS; i++)); do
  sidecar_port=$((SIDECAR_PORT + i))
  {
    cat "$RUN_DIR/sidecar.toml"
    printf '\n[fleet]\nredis_url = "redis://127.0.0.1:%s/0"\nreplica = "sidecar-%s"\n' "$REDIS_PORT" "$i"
  } >"$RUN_DIR/sidecar-$i.toml"
  "$BIN/fairgate-sidecar" --config "$RUN_DIR/sidecar-$i.toml" --source sim \
    --listen "127.0.0.1:$sidecar_port" >"$RUN_DIR/sidecar-$i.log" 2>&1 &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$sidecar_port/healthz" "fairgate-sidecar $i" "$RUN_DIR/sidecar-$i.log"
  sed -e "s/port_value: $GATEWAY_PORT\b/port_value: $((GATEWAY_PORT + i))/" \
    -e "s/port_value: $ADMIN_PORT\b/port_value: $((ADMIN_PORT + i))/" \
    -e "s/port_value: $SIDECAR_PORT\b/port_value: $sidecar_port/" \
    -e 's/^\( *\)"sidecar": {/\1"fleet": {"outage": "safe"},\n\1"sidecar": {/' \
    "$RUN_DIR/envoy-on.yaml" >"$RUN_DIR/envoy-$i.yaml"
  # --service-node: the Envoy's node.id, its name in the fleet.
  "$ENVOY_BIN" -c "$RUN_DIR/envoy-$i.yaml" --concurrency 2 --disable-hot-restart -l warning \
    --service-node "gateway-$i" --service-cluster fairgate-demo >"$RUN_DIR/envoy-$i.log" 2>&1 &
  ENVOY_PIDS+=($!)
  PIDS+=($!)
  echo "  gateway-$i: Envoy on 127.0.0.1:$((GATEWAY_PORT + i)) (admin $((ADMIN_PORT + i))), its sidecar on 127.0.0.1:$sidecar_port"
done
# exact ADMIN_URL: whether that Envoy's fleet state is exact. (The stats are read whole
# first: grep -q on curl's pipe would stop reading early, and pipefail count it a failure.)
exact() {
  local stats
  stats=$(curl -s "$1/stats/prometheus" || true)
  grep -q "^${METRIC_PREFIX}fg_fleet_state{} 0" <<<"$stats"
}
for ((i = 0; i < REPLICAS; i++)); do
  admin="http://127.0.0.1:$((ADMIN_PORT + i))"
  for _ in $(seq 300); do
    [ "$(curl -s "$admin/ready" || true)" = LIVE ] && exact "$admin" && break
    sleep 0.1
  done
  exact "$admin" || {
    echo "gateway-$i did not reach its fleet; its log:" >&2
    cat "$RUN_DIR/envoy-$i.log" >&2
    exit 1
  }
done

TOKEN=$("$LOADGEN" token --scenario demo/scenario.toml free)
say "tenant free (2 requests/s, burst 5) through all $REPLICAS gateways at once, one client each ($DURATION s)"
# free is sheddable: a request its budget admits is still shed (503) where the pools
# are saturated. The budget admitted it all the same, so it counts here.
hammer() { # hammer URL SECONDS OUT: "admitted refused shed" of requests sent back to back
  local end ok=0 limited=0 shed=0 code
  end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$end" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1/v1/models" -H "authorization: Bearer $TOKEN")
    case $code in 200) ok=$((ok + 1)) ;; 429) limited=$((limited + 1)) ;; 503) shed=$((shed + 1)) ;; esac
  done
  echo "$((ok + shed)) $limited $shed" >"$3"
}
start=$(date +%s.%N)
HAMMERS=()
for ((i = 0; i < REPLICAS; i++)); do
  hammer "http://127.0.0.1:$((GATEWAY_PORT + i))" "$DURATION" "$RUN_DIR/hammer-$i" &
  HAMMERS+=($!)
done
wait "${HAMMERS[@]}"
end=$(date +%s.%N)

total=0
per=()
for ((i = 0; i < REPLICAS; i++)); do
  read -r ok limited shed <"$RUN_DIR/hammer-$i"
  printf '  gateway-%s: %4s admitted (%s of them shed by the pool, 503), %5s refused (429)\n' \
    "$i" "$ok" "$shed" "$limited"
  total=$((total + ok))
  per+=("$ok")
done
verdict=$(awk -v t0="$start" -v t1="$end" -v n="$total" -v r="$REPLICAS" 'BEGIN {
  secs = t1 - t0; allowed = 2 * secs + 5
  printf "%.1f %.1f %.1f %s", secs, allowed, r * allowed, (n <= allowed + 1 && n >= 0.9 * allowed) ? "ok" : "FAILED"
}')
read -r secs allowed without check <<<"$verdict"
echo
echo "  all gateways: $total admitted in $secs s; the budget allows 2 x $secs + 5 = $allowed for the whole fleet"
echo "  (without fleet mode each gateway would admit that much: about $without)"
echo "  held across the fleet, 90-100 % of it: $check"

last=$((REPLICAS - 1))
say "the shared pools, saturated: globex (weight 3) through all $REPLICAS gateways, initech (1) only through gateway-0, hooli (1) only through gateway-$last ($DURATION s)"
BODY='{"model":"fairgate-mock-1","messages":[{"role":"user","content":"Say hello"}],"max_tokens":24}'
flood() { # flood URL TENANT SECONDS OUT: appends "tenant completed-at" per 200, back to back
  local end token code
  token=$("$LOADGEN" token --scenario demo/scenario.toml "$2")
  end=$(($(date +%s) + $3))
  while [ "$(date +%s)" -lt "$end" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1/v1/chat/completions" \
      -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$BODY")
    [ "$code" = 200 ] && echo "$2 $EPOCHREALTIME" >>"$4"
  done
}
: >"$RUN_DIR/completed"
pool_start=$EPOCHREALTIME
FLOODS=()
for ((c = 0; c < 6; c++)); do
  for ((i = 0; i < REPLICAS; i++)); do
    flood "http://127.0.0.1:$((GATEWAY_PORT + i))" globex "$DURATION" "$RUN_DIR/completed" &
    FLOODS+=($!)
  done
  flood "http://127.0.0.1:$GATEWAY_PORT" initech "$DURATION" "$RUN_DIR/completed" &
  FLOODS+=($!)
  flood "http://127.0.0.1:$((GATEWAY_PORT + last))" hooli "$DURATION" "$RUN_DIR/completed" &
  FLOODS+=($!)
done
wait "${FLOODS[@]}"
# Counted once the leases have formed (after 2 s) until the clients wind down.
pool_verdict=$(awk -v t0="$pool_start" -v d="$DURATION" '
  $2 >= t0 + 2 && $2 < t0 + d - 0.5 { n[$1]++; all++ }
  END {
    g = n["globex"] / all; i = n["initech"] / all; h = n["hooli"] / all
    ok = (g - 0.6 < 0.05 && 0.6 - g < 0.05 && i - 0.2 < 0.05 && 0.2 - i < 0.05 &&
          h - 0.2 < 0.05 && 0.2 - h < 0.05) ? "ok" : "FAILED"
    printf "%d %d %d %.3f %.3f %.3f %s", n["globex"], n["initech"], n["hooli"], g, i, h, ok
  }' "$RUN_DIR/completed")
read -r n_g n_i n_h s_g s_i s_h pool_check <<<"$pool_verdict"
printf '  globex  (weight 3, every gateway): %5s completed, share %s (fair: 0.600)\n' "$n_g" "$s_g"
printf '  initech (weight 1, gateway-0):     %5s completed, share %s (fair: 0.200)\n' "$n_i" "$s_i"
printf '  hooli   (weight 1, gateway-%s):     %5s completed, share %s (fair: 0.200)\n' "$last" "$n_h" "$s_h"
echo "  fleet-wide shares within 5 points of the weights: $pool_check"

if [ -n "$JSON" ]; then
  printf '{"replicas": %s, "seconds": %s, "admitted": %s, "allowed": %s, "per_gateway": [%s], "check": "%s", "pool_shares": {"globex": %s, "initech": %s, "hooli": %s}, "pool_check": "%s"}\n' \
    "$REPLICAS" "$secs" "$total" "$allowed" "$(IFS=,; echo "${per[*]}")" "$check" \
    "$s_g" "$s_i" "$s_h" "$pool_check" >"$JSON"
  echo "figures: $JSON"
fi

say "metrics"
for ((i = 0; i < REPLICAS; i++)); do
  echo "gateway-$i  http://127.0.0.1:$((ADMIN_PORT + i))/stats/prometheus:"
  curl -s "http://127.0.0.1:$((ADMIN_PORT + i))/stats/prometheus" |
    grep -E "^${METRIC_PREFIX}fg_(fleet_state|fleet_replicas|pool_capacity|requests\\{tenant=\"free\")" | sed 's/^/    /'
  echo "sidecar-$i  http://127.0.0.1:$((SIDECAR_PORT + i))/metrics:"
  curl -s "http://127.0.0.1:$((SIDECAR_PORT + i))/metrics" |
    grep -E '^fairgate_fleet_(granted_total\{tenant="free",kind="requests"\}|replicas|redis_up|slots|pool_in_flight|rebalances_total)' | sed 's/^/    /'
done
[ "$check" = ok ] && [ "$pool_check" = ok ] || exit 1

if [ $WAIT = 1 ]; then
  say "the gateways stay up; Ctrl-C stops everything"
  wait
fi
