#!/usr/bin/env bash
# Copies the repository's Prometheus rule files (alerts/*.yaml|yml whose top level is `groups:`, so not
# alerts/tests/ nor alertmanager.example.yml) and Grafana dashboards (dashboards/*.json) into the chart, which
# cannot read files outside itself. Copies of files that no longer exist are removed.
#   helm/sync-files.sh          update the chart's copies
#   helm/sync-files.sh --check  only report differences; exit 1 if there are any (tests/python runs the same check)
# Usage from anywhere; paths are relative to the repository root. Override the roots with SYNC_SRC / SYNC_CHART.
set -euo pipefail
root="${SYNC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
chart="${SYNC_CHART:-$root/helm/genesys-cloud-exporter}"
check=0
[ "${1:-}" = "--check" ] && check=1

is_rule_file() { # a Prometheus rule file: not an Alertmanager config, and has a top-level `groups:`
  case "$(basename "$1")" in alertmanager*) return 1 ;; esac
  grep -Eq '^groups:' "$1"
}

differ=0
sync_dir() { # sync_dir <source dir> <dest dir> <predicate> <glob>...
  local src="$1" dest="$2" pred="$3"; shift 3
  local want=() f name
  if [ -d "$src" ]; then
    for pattern in "$@"; do
      for f in "$src"/$pattern; do
        [ -f "$f" ] || continue
        "$pred" "$f" || continue
        want+=("$(basename "$f")")
      done
    done
  fi
  [ "$check" = 1 ] || mkdir -p "$dest"
  for name in "${want[@]+"${want[@]}"}"; do
    if ! cmp -s "$src/$name" "$dest/$name"; then
      differ=1
      if [ "$check" = 1 ]; then echo "differs: ${dest#"$root"/}/$name (from ${src#"$root"/}/$name)"
      else cp "$src/$name" "$dest/$name"; echo "copied ${src#"$root"/}/$name"; fi
    fi
  done
  if [ -d "$dest" ]; then
    for pattern in "$@"; do
      for f in "$dest"/$pattern; do
        [ -f "$f" ] || continue
        name="$(basename "$f")"
        if ! printf '%s\n' "${want[@]+"${want[@]}"}" | grep -qxF "$name"; then
          differ=1
          if [ "$check" = 1 ]; then echo "stale: ${dest#"$root"/}/$name (no ${src#"$root"/}/$name)"
          else rm "$f"; echo "removed ${dest#"$root"/}/$name"; fi
        fi
      done
    done
  fi
}

any() { :; }
sync_dir "$root/alerts" "$chart/files/alerts" is_rule_file '*.yaml' '*.yml'
sync_dir "$root/dashboards" "$chart/files/dashboards" any '*.json'

if [ "$check" = 1 ] && [ "$differ" = 1 ]; then
  echo "the chart's copies are out of date: run helm/sync-files.sh and commit the result" >&2
  exit 1
fi
