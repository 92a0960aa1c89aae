#!/usr/bin/env bash
# Real-GPU check of fairgate-sidecar, for a machine with an NVIDIA GPU and driver:
# builds the sidecar (release), runs it with `--source nvml` and a config that maps
# every GPU to one cluster for a few seconds, prints /v1/headroom, /metrics and
# /healthz, then stops it. Every step is bounded (the sidecar by `timeout`).
# Where NVML is unavailable, it prints the sidecar's one-line error and exits with
# the sidecar's code (2).
#   SIDECAR_BIN=path        use this binary instead of building one
#   GPU_CHECK_SECONDS=5     how long the sidecar polls before the pages are printed
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

SECONDS_TO_POLL=${GPU_CHECK_SECONDS:-5}
LIMIT_S=$((SECONDS_TO_POLL + 30))
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fairgate-gpu-check.XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${SIDECAR_BIN:-}" ]; then
  say "build fairgate-sidecar (release)"
  cargo build --quiet --release -p fairgate-sidecar
  SIDECAR_BIN=target/release/fairgate-sidecar
fi

say "the GPUs"
GPUS=
if command -v nvidia-smi >/dev/null; then
  timeout 20 nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv || true
  GPUS=$(timeout 20 nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | paste -sd, - || true)
else
  echo "no nvidia-smi on PATH"
fi
GPUS=${GPUS:-0}
cat >"$RUN_DIR/sidecar.toml" <<TOML
poll_ms = 500

[clusters.all_gpus]
gpus = [$GPUS]
base_capacity = 64
TOML
cat "$RUN_DIR/sidecar.toml"

say "run fairgate-sidecar --source nvml for ${SECONDS_TO_POLL}s"
timeout "$LIMIT_S" "$SIDECAR_BIN" --config "$RUN_DIR/sidecar.toml" --source nvml \
  --listen 127.0.0.1:0 >"$RUN_DIR/out" 2>"$RUN_DIR/err" &
PID=$!
ADDR=
for _ in $(seq 1 300); do
  ADDR=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$RUN_DIR/out")
  [ -n "$ADDR" ] && break
  if ! kill -0 "$PID" 2>/dev/null; then
    rc=0
    wait "$PID" || rc=$?
    PID=
    cat "$RUN_DIR/err" >&2
    echo "fairgate-sidecar exited with code $rc" >&2
    exit "$rc"
  fi
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$RUN_DIR/err" >&2; echo "fairgate-sidecar did not start" >&2; exit 1; }
cat "$RUN_DIR/out"
sleep "$SECONDS_TO_POLL"

fetch() {
  if command -v curl >/dev/null; then
    curl -sS --max-time 5 "http://$ADDR$1"
  else
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://$ADDR$1"
  fi
}
say "GET /v1/headroom"
if command -v python3 >/dev/null; then fetch /v1/headroom | python3 -m json.tool; else fetch /v1/headroom; fi
say "GET /metrics"
fetch /metrics
say "GET /healthz"
fetch /healthz
echo

say "stop"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
echo "fairgate-sidecar exited with code $rc; its log:"
cat "$RUN_DIR/err"
