#!/usr/bin/env bash
# Runs every fairgate test: formatting, lints, unit tests (native and on wasm32), the
# deployment files (scripts/validate-deploy.sh), the end-to-end tests through a real
# Envoy, and the demo (short). Installs what it needs; safe to re-run.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

say "set-up: Rust targets, Envoy $ENVOY_VERSION, the OpenAI Python SDK $OPENAI_VERSION, Redis"
ensure_rustup target wasm32-wasip1 wasm32-unknown-unknown
ensure_rustup component rustfmt clippy
ensure_envoy
"$ENVOY_BIN" --version
ensure_openai_sdk
ensure_redis

say "format"
cargo fmt --all --check

say "lints (native, and the core and the filter for wasm32-wasip1)"
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet -p fairgate-core -p fairgate-filter --target wasm32-wasip1 -- -D warnings

say "build the filter (wasm32-wasip1, release) and the native module"
build_filter
ls -l target/wasm32-wasip1/release/fairgate_filter.wasm
build_module
ls -l target/release/libfairgate.so
scripts/validate-deploy.sh

say "unit and end-to-end tests (the e2e tests run the real sidecar binary)"
cargo build --quiet -p fairgate-sidecar
cargo test --workspace --exclude fairgate-e2e
# One at a time: each starts Envoy, servers and load of its own, and several of them
# time what Envoy's workers do (ticks, polls, wake-ups); on a 2-core CI machine two at
# once would measure each other.
cargo test -p fairgate-e2e -- --test-threads=1

say "the soak, 45 s (bench/soak.sh runs it for 10 minutes): faults, ECDS updates, a hot restart"
FAIRGATE_SOAK_SECS=45 cargo test -p fairgate-e2e --test e2e -- --ignored --nocapture soak::

say "the end-to-end tests where the host matters, against the native module"
# FAIRGATE_HOST=module puts libfairgate.so in each test's Envoy instead of the wasm
# filter. Not here: what only the wasm host has (held headers learnt per VM, its
# exports and VM roots on updates, its stats tags), the panic test (below), and the
# fleet tests whose hosts' part (the poll and its grants, the pools' reports and
# slots) the four-Envoy, shares and Redis outage tests already cover.
FAIRGATE_HOST=module cargo test -p fairgate-e2e --test e2e -- --test-threads=1 \
  --skip module:: --skip isolation::an_envoy_that_cannot \
  --skip metrics::the_shipped_envoy_config_carries_the_stats_tags \
  --skip fleet::without_fleet_mode --skip fleet::a_token_budget \
  --skip fleet::a_load_that_moves --skip fleet::a_killed_sidecar \
  --skip fleet_pools::without_fleet_mode --skip fleet_pools::an_envoy_whose_tenants_stop \
  --skip fleet_pools::a_sheddable_tenant --skip fleet_pools::a_sheddable_flood \
  --skip fleet_pools::a_higher_band --skip fleet_pools::a_killed_sidecar

say "a panic on each host: the test-only builds (--features test-panic)"
mkdir -p target/test-panic
cargo build --quiet -p fairgate-module --release --features test-panic
cp target/release/libfairgate.so target/test-panic/libfairgate.so
cargo build --quiet -p fairgate-filter --target wasm32-wasip1 --release --features test-panic
cp target/wasm32-wasip1/release/fairgate_filter.wasm target/test-panic/fairgate_filter.wasm
build_module
build_filter
FAIRGATE_HOST=module FAIRGATE_MODULE_DIR=target/test-panic cargo test -p fairgate-e2e --test e2e \
  -- --test-threads=1 --ignored panic::a_panic_in_the_module
FAIRGATE_WASM=target/test-panic/fairgate_filter.wasm cargo test -p fairgate-e2e --test e2e \
  -- --test-threads=1 --ignored panic::a_crashed_vm panic::the_requests_queued_in_a_crashed_vm

say "filter logic compiled to wasm32, under wasm-bindgen-test"
scripts/wasm-unit-tests.sh

say "the demo, short: fairness off then on, and its fairness claims, on each host"
scripts/demo-test.sh
DEMO_TEST_HOST=module scripts/demo-test.sh
DEMO_TEST_REPLICAS=2 DEMO_TEST_DURATION=8 scripts/demo-test.sh
