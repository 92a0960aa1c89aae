#!/usr/bin/env bash
# The demo as a test: scripts/demo.sh on free ports with short runs and dev-profile
# programs, then the claims checked on its JSON summary (fairgate-loadgen check): with
# fairgate on, globex and initech get their weight shares within 5 points; with
# fairness off, hooli's flood visibly takes more than its share.
#   DEMO_TEST_DURATION  seconds per run (default 15)
#   DEMO_TEST_HOST      wasm (default) or module: the demo's --host
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

# Six free ports: bound to port 0 at once (so all differ), then released for the demo.
read -r -a ports < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')
export DEMO_PORT_GATEWAY=${ports[0]} DEMO_PORT_ADMIN=${ports[1]} DEMO_PORT_POOL_A=${ports[2]} \
  DEMO_PORT_POOL_B=${ports[3]} DEMO_PORT_ACME=${ports[4]} DEMO_PORT_SIDECAR=${ports[5]}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/fairgate-demo-test.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
start=$SECONDS
if ! scripts/demo.sh --duration "${DEMO_TEST_DURATION:-15}" --no-wait --dev --host "${DEMO_TEST_HOST:-wasm}" \
  --json "$OUT/summary.json" >"$OUT/demo.log" 2>&1 </dev/null; then
  cat "$OUT/demo.log"
  exit 1
fi
sed -n '/== side by side/,/^$/p' "$OUT/demo.log"
target/debug/fairgate-loadgen check "$OUT/summary.json"
echo "demo test (${DEMO_TEST_HOST:-wasm} host): $((SECONDS - start)) s"
