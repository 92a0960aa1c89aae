#!/usr/bin/env bash
# The soak (tests/tests/e2e/soak.rs) for SOAK_SECS seconds of load (default 600),
# through a real Envoy (--concurrency 2, the wasm filter delivered through ECDS), the
# real sidecar and the mock model server: JSON and streamed load from four tenants
# into a saturated pool, a third of the requests vanishing at random moments,
# upstream resets, malformed bodies, the plugin config changed every 30 s, the
# sidecar killed and restarted, one hot restart of Envoy. Prints its figures (the
# `soak:` lines) and fails where a check after the load fails. Run it by hand on a
# quiet machine; scripts/test.sh runs a 45 s form.
#   bench/soak.sh                 10 minutes of load, about 11 in all
#   SOAK_SECS=120 bench/soak.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"
SOAK_SECS=${SOAK_SECS:-600}
ensure_rustup target wasm32-wasip1
ensure_envoy
build_filter
cargo build --quiet -p fairgate-sidecar
cargo test --quiet -p fairgate-e2e --test e2e --no-run
log=$(mktemp)
echo "soak: $SOAK_SECS s of load; the whole output goes to $log"
status=0
FAIRGATE_HOST=wasm FAIRGATE_SOAK_SECS=$SOAK_SECS cargo test -p fairgate-e2e --test e2e -- \
  --ignored --nocapture --test-threads=1 soak:: >"$log" 2>&1 || status=$?
grep -o 'soak: .*' "$log" || true
if [ "$status" -ne 0 ]; then
  grep -A3 "panicked at" "$log" | head -20
  echo "soak: FAILED (exit $status); the whole output is in $log" >&2
  exit "$status"
fi
rm -f "$log"
