#!/usr/bin/env bash
# Envoy's resident memory while a million distinct tenants pass (SPEC 11: policy from
# tokens, or any unlisted tenant on the default policy): each gets a bucket of its own,
# kept in shared data only while it refills. Run by hand; never in CI. See
# bench/README.md.
#
#   bench/tenants.sh                      1,000,000 tenants, two requests each (minutes)
#   FAIRGATE_TENANTS=100000 bench/tenants.sh
#   FAIRGATE_HOST=module bench/tenants.sh the native module instead of the wasm filter
#
# Prints "FIGURE tenants=N rss_mib=M" after each quarter.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"
ensure_envoy
if [ "${FAIRGATE_HOST:-wasm}" = module ]; then build_module; else build_filter; fi
cargo test --quiet --release -p fairgate-e2e --test e2e -- --ignored --exact \
  budgets::bench_memory_while_a_million_tenants_pass --nocapture --test-threads=1 2>&1 |
  grep '^FIGURE'
