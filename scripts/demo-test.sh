#!/usr/bin/env bash
# The demo as a test: scripts/demo.sh on free ports with short runs and dev-profile
# programs, then the claims checked on its JSON summary (fairgate-loadgen check): with
# fairgate on, globex and initech get their weight shares within 5 points; with
# fairness off, hooli's flood visibly takes more than its share.
#   DEMO_TEST_DURATION  seconds per run (default 15)
#   DEMO_TEST_HOST      wasm (default) or module: the demo's --host
#   DEMO_TEST_REPLICAS  2 to 8: the demo's fleet mode (--replicas) instead, its check
#                       that the fleet held one budget
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

REPLICAS=${DEMO_TEST_REPLICAS:-1}
# Free ports, all held at once (so all differ), then released for the demo: for the
# gateway, the admin and the sidecar, REPLICAS consecutive ones each (Envoy i adds i).
read -r -a ports < <(python3 -c '
import socket, sys
n = int(sys.argv[1])
held, out = [], []
while len(out) < 7:
    run = n if len(out) in (0, 1, 5) else 1
    first = socket.socket()
    first.bind(("127.0.0.1", 0))
    socks, port = [first], first.getsockname()[1]
    try:
        for i in range(1, run):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", port + i))
    except OSError:
        for s in socks:
            s.close()
        continue
    held += socks
    out.append(port)
print(" ".join(map(str, out)))
' "$REPLICAS")
export DEMO_PORT_GATEWAY=${ports[0]} DEMO_PORT_ADMIN=${ports[1]} DEMO_PORT_POOL_A=${ports[2]} \
  DEMO_PORT_POOL_B=${ports[3]} DEMO_PORT_ACME=${ports[4]} DEMO_PORT_SIDECAR=${ports[5]} \
  DEMO_PORT_REDIS=${ports[6]}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/fairgate-demo-test.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
start=$SECONDS
if ! scripts/demo.sh --duration "${DEMO_TEST_DURATION:-15}" --no-wait --dev --host "${DEMO_TEST_HOST:-wasm}" \
  --replicas "$REPLICAS" --json "$OUT/summary.json" >"$OUT/demo.log" 2>&1 </dev/null; then
  cat "$OUT/demo.log"
  exit 1
fi
if [ "$REPLICAS" -gt 1 ]; then
  sed -n '/== tenant free/,/== metrics/p' "$OUT/demo.log" | grep -v '== metrics'
  echo "demo test (fleet of $REPLICAS, ${DEMO_TEST_HOST:-wasm} host): $((SECONDS - start)) s"
  exit 0
fi
sed -n '/== side by side/,/^$/p' "$OUT/demo.log"
target/debug/fairgate-loadgen check "$OUT/summary.json"
echo "demo test (${DEMO_TEST_HOST:-wasm} host): $((SECONDS - start)) s"
