#!/usr/bin/env bash
# CPU and memory of fairgate-sidecar (release build) on simulated GPUs, polling
# every POLL_MS (default 100) ms, while something reads /v1/headroom every 100 ms as
# the filter would. Run by hand on a quiet machine; prints one line of figures.
#   bench/sidecar.sh            30 s
#   DUR=60 POLL_MS=100 bench/sidecar.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-30}
POLL_MS=${POLL_MS:-100}
cargo build --quiet --release -p fairgate-sidecar
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
sed "s/^poll_ms = .*/poll_ms = $POLL_MS/" sidecar/sidecar.example.toml >"$tmp/sidecar.toml"
target/release/fairgate-sidecar --config "$tmp/sidecar.toml" --source sim --listen 127.0.0.1:0 >"$tmp/out" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "listening on" "$tmp/out" && break; sleep 0.1; done
addr=$(grep -o 'listening on [^ ]*' "$tmp/out" | awk '{print $3}')
[ -n "$addr" ] || { cat "$tmp/out"; exit 1; }
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
end=$((SECONDS + DUR))
while [ $SECONDS -lt $end ]; do curl -s -o /dev/null "http://$addr/v1/headroom"; sleep 0.1; done
t1=$(ticks)
hz=$(getconf CLK_TCK)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
python3 -c "print(f'fairgate-sidecar, sim source, poll every $POLL_MS ms, /v1/headroom read every 100 ms, ${DUR} s: CPU {($t1-$t0)/$hz/$DUR*100:.2f} % of one core, RSS {$rss/1024:.1f} MiB (peak {$hwm/1024:.1f} MiB)')"
