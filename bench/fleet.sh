#!/usr/bin/env bash
# Fleet mode's figures (SPEC section 9), measured through real Envoys, real sidecars
# (release build) and a real redis-server on 127.0.0.1. Run by hand, on a quiet
# machine; never in CI. See bench/README.md.
#
#   bench/fleet.sh                           15 s per run (about 2 min)
#   FAIRGATE_FLEET_SECS=5 bench/fleet.sh     a shorter run
#   FAIRGATE_HOST=module bench/fleet.sh      the native module instead of the wasm filter
#
# Prints, as "FIGURE ..." lines:
# - accuracy at 2, 4 and 8 Envoys (--concurrency 2 each, one sidecar each): one tenant
#   of 20 requests/s, burst 20, offered about 100 requests/s per Envoy; admitted ÷
#   (rate × t + burst);
# - Redis commands per second and each sidecar's CPU with 4 Envoys at two request
#   rates about ten times apart (four clients per Envoy, paced 40 ms, then unpaced).
# - pools: the queue wait fleet mode adds, at 80 % of a pool of 14 slots (100 ms each),
#   two Envoys sharing it against one Envoy holding it alone (open-loop arrivals).
# The time for a replica to reach 90 % of a moved load is printed by the e2e test
# fleet::a_load_that_moves_to_another_envoy_... ; the pools' shares, Jain's index and
# peak in flight against the per-replica baseline, and the time to rebalance, by
# fleet_pools:: (both run as part of scripts/test.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"
ensure_envoy
ensure_redis
if [ "${FAIRGATE_HOST:-wasm}" = module ]; then build_module; else build_filter; fi
cargo build --quiet --release -p fairgate-sidecar
export FAIRGATE_SIDECAR_BIN="$REPO_ROOT/target/release/fairgate-sidecar"
cargo test --quiet -p fairgate-e2e --test e2e -- --ignored --exact \
  fleet::bench_fleet_figures --nocapture --test-threads=1 2>&1 | grep '^FIGURE'
cargo test --quiet -p fairgate-e2e --test e2e -- --ignored --exact \
  fleet_pools::bench_fleet_pool_queue_wait --nocapture --test-threads=1 2>&1 |
  grep -E '^(one|two) Envoy' | sed 's/^/FIGURE pool queue wait: /'
