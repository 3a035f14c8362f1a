#!/usr/bin/env bash
# Runs every test of genesys-cloud-exporter on a fresh Debian machine: installs what the tests need (Debian
# packages for the real Prometheus/Alertmanager tools, Chromium for the status page test), checks formatting and
# lints, then runs the whole suite.
# Usage: tests/run-all.sh            (from anywhere; CI calls it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------------------------------------------
need_pkgs=()
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v amtool >/dev/null 2>&1 || need_pkgs+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# The Debian packages start services on install; the tests run their own instances on free ports.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
  (command -v systemctl >/dev/null 2>&1 && systemctl stop "$svc" >/dev/null 2>&1) || true
  pkill -x "$svc" >/dev/null 2>&1 || true
done
export PATH="$PATH:/usr/bin"

# --- Rust checks ------------------------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --lib --bins --tests --no-fail-fast
else
  cargo test --lib --bins --tests --no-fail-fast
fi
log "benchmarks, tiny size (keeps them compiling and working; figures come from cargo bench, see BENCHMARKS.md)"
cargo test --quiet --bench scrape -- --quick
cargo test --quiet --bench ingest -- --quick
cargo test --quiet --bench sim_throughput -- --quick
cargo test --quiet --bench freshness -- --quick
cargo test --quiet --bench stream_clients -- --quick
cargo test --quiet --bench rss -- --quick
# Doc tests are not run by nextest.
cargo test --doc --quiet

# --- Helm chart tests (Python: Helm's own engine via helm-python-sdk, the Kubernetes schemas) --------------------
log "chart tests (pytest tests/python)"
venv=target/py-venv
if [ ! -x "$venv/bin/pip" ]; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv's pip bootstrap (ensurepip's wheels) in a separate package.
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
"$venv/bin/python" -m pytest -q tests/python
