#!/usr/bin/env bash
# Runs every libFuzzer target for a short time from its seed corpus (a copy: the
# checked-in corpus only changes by hand, or by tests/fuzz/seeds_from_pcaps.py, which
# writes the l7_* corpora's pcap-* seeds). Fails on the first crash, leak or timeout.
set -euo pipefail
B=${1:-build}
SECONDS_EACH=${2:-60}
cd "$(dirname "$0")/../.."
for target in "$B"/fuzz/fuzz_*; do
  name=$(basename "$target")
  # Only the fuzzers themselves: crash artifacts land beside them as NAME-crash-*.
  [[ -x "$target" && "$name" != *-* ]] || continue
  seeds="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  echo "== $name for ${SECONDS_EACH}s (seeds: $(ls "$work" | wc -l))"
  "$target" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$B/fuzz/$name-" -print_final_stats=1 "$work" 2>&1 | tail -4
  rm -rf "$work"
done
