#!/usr/bin/env bash
# Runs fairgate-core's unit tests compiled to wasm32-unknown-unknown, under
# wasm-bindgen-test in node. The runner comes from .cargo/config.toml and must be
# the same version as the wasm-bindgen crate in Cargo.lock.
# Usage (from the repo root): scripts/wasm-unit-tests.sh [extra cargo test args]
set -euo pipefail

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print }' Cargo.lock)
if [[ -z "$want" || "$want" == *$'\n'* ]]; then
    echo "expected exactly one wasm-bindgen version in Cargo.lock, found: '${want}'" >&2
    exit 1
fi

have=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{ print $2 }' || true)
if [[ "$have" != "$want" ]]; then
    echo "wasm-bindgen-test-runner is '${have:-missing}', Cargo.lock wants ${want}: installing" >&2
    cargo install wasm-bindgen-cli --version "$want"
fi

rustup target add wasm32-unknown-unknown
cargo test -p fairgate-core --target wasm32-unknown-unknown --lib "$@"
