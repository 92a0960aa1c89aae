# fairgate demo, fleet mode (sourced by scripts/demo.sh --replicas N): a Redis, N
# Envoys each with its own GPU sidecar (the demo's, with a [fleet] section), the same
# model servers behind all of them; then tenant "free" (2 requests/s, burst 5) sent
# as fast as one client per Envoy can, through every Envoy at once. Without fleet mode
# each Envoy would admit the whole budget; with it, all of them together admit it once.

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
for ((i = 0; i < REPLICAS; i++)); do
  admin="http://127.0.0.1:$((ADMIN_PORT + i))"
  for _ in $(seq 100); do
    [ "$(curl -s "$admin/ready" || true)" = LIVE ] &&
      curl -s "$admin/stats/prometheus" | grep -q "^${METRIC_PREFIX}fg_fleet_state{} 0" && break
    sleep 0.1
  done
  curl -s "$admin/stats/prometheus" | grep -q "^${METRIC_PREFIX}fg_fleet_state{} 0" || {
    echo "gateway-$i did not reach its fleet; its log:" >&2
    cat "$RUN_DIR/envoy-$i.log" >&2
    exit 1
  }
done

TOKEN=$("$LOADGEN" token --scenario demo/scenario.toml free)
say "tenant free (2 requests/s, burst 5) through all $REPLICAS gateways at once, one client each ($DURATION s)"
hammer() { # hammer URL SECONDS OUT: "admitted refused" of requests sent back to back
  local end ok=0 limited=0 code
  end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$end" ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1/v1/models" -H "authorization: Bearer $TOKEN")
    case $code in 200) ok=$((ok + 1)) ;; 429) limited=$((limited + 1)) ;; esac
  done
  echo "$ok $limited" >"$3"
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
  read -r ok limited <"$RUN_DIR/hammer-$i"
  printf '  gateway-%s: %4s admitted, %5s refused (429)\n' "$i" "$ok" "$limited"
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
if [ -n "$JSON" ]; then
  printf '{"replicas": %s, "seconds": %s, "admitted": %s, "allowed": %s, "per_gateway": [%s], "check": "%s"}\n' \
    "$REPLICAS" "$secs" "$total" "$allowed" "$(IFS=,; echo "${per[*]}")" "$check" >"$JSON"
  echo "figures: $JSON"
fi

say "metrics"
for ((i = 0; i < REPLICAS; i++)); do
  echo "gateway-$i  http://127.0.0.1:$((ADMIN_PORT + i))/stats/prometheus:"
  curl -s "http://127.0.0.1:$((ADMIN_PORT + i))/stats/prometheus" |
    grep -E "^${METRIC_PREFIX}fg_(fleet_state|fleet_replicas|requests\\{tenant=\"free\")" | sed 's/^/    /'
  echo "sidecar-$i  http://127.0.0.1:$((SIDECAR_PORT + i))/metrics:"
  curl -s "http://127.0.0.1:$((SIDECAR_PORT + i))/metrics" |
    grep -E '^fairgate_fleet_(granted_total\{tenant="free",kind="requests"\}|replicas|redis_up)' | sed 's/^/    /'
done
[ "$check" = ok ] || exit 1

if [ $WAIT = 1 ]; then
  say "the gateways stay up; Ctrl-C stops everything"
  wait
fi
