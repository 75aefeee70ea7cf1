#!/usr/bin/env bash
# The whole suite: unit tests (GoogleTest), packet tests (pcap replay through
# egw-replay, its names against tshark's) and end-to-end tests (network namespaces,
# name rules, observability), then a smoke run of the benchmarks. Ends with one
# summary line.
set -uo pipefail
B=${1:-build}
cd "$(dirname "$0")/.."
passed=0 failed=0 broken=()

# count SUITE LOG: adds the suite's "N passed, N failed" (or GoogleTest's) to the totals.
count() {
  local suite=$1 log=$2 p f
  if line=$(grep -E '^\[==========\] [0-9]+ tests? from .* ran' "$log" | tail -1) && [ -n "$line" ]; then
    p=$(grep -oE '^\[  PASSED  \] [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    # The failures are the tests that ran and did not pass: --gtest_brief prints no
    # "N tests, listed below" line to count them from.
    f=$(($(echo "$line" | grep -oE '[0-9]+' | head -1) - ${p:-0}))
  else
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
  fi
  p=${p:-0}; f=${f:-0}
  passed=$((passed + p)); failed=$((failed + f))
  echo "== $suite: $p passed, $f failed"
}

run_suite() {
  local suite=$1; shift
  local log; log=$(mktemp)
  echo "== $suite: $*"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count "$suite" "$log"
  if [ "$rc" -ne 0 ]; then
    broken+=("$suite(exit $rc)")
    # A suite that died before reporting its failures still failed.
    if ! grep -qE '^[0-9]+ passed, [0-9]+ failed|^\[  FAILED  \]' "$log"; then failed=$((failed + 1)); fi
  fi
  rm -f "$log"
}

# Each suite has a time limit, so a hang fails the run instead of stalling CI.
run_suite unit timeout 600 "$B/tests/unit_tests" --gtest_brief=1
# The strict Prometheus text parser the observability tests rely on, on its own cases.
run_suite promtext timeout 60 /usr/bin/python3 tests/support/prom_text_test.py
run_suite packet timeout 900 /usr/bin/python3 tests/packet/run_packet_tests.py --build "$B"
run_suite tshark timeout 300 /usr/bin/python3 tests/packet/tshark_names.py --build "$B"
run_suite e2e timeout -s INT 600 bash tests/e2e/run.sh "$B"
run_suite names timeout -s INT 300 bash tests/e2e/names.sh "$B"
# Observability: flow records and /metrics against real traffic and a capture.
run_suite observe timeout -s INT 300 bash tests/e2e/observe.sh "$B"
run_suite telemetry timeout -s INT 120 bash tests/e2e/telemetry.sh "$B"
# Rate limits, quotas and report-only rulesets with real clients (curl loop, iperf3).
run_suite limits timeout -s INT 300 bash tests/e2e/limits.sh "$B"
# Management plane: REST contract, commit crash points, hitless swap, restarts.
run_suite rest timeout 300 /usr/bin/python3 tests/mgmt/rest/run_rest_tests.py --build "$B"
run_suite faults timeout -s INT 300 bash tests/e2e/faults.sh "$B"
run_suite swap timeout -s INT 300 bash tests/e2e/swap.sh "$B"
run_suite restart timeout -s INT 300 bash tests/e2e/restart.sh "$B"
# make perf's driver in its quick mode: every benchmark runs and writes its results.
run_suite perf timeout -s INT 400 bash tests/perf/smoke.sh "$B"

[ ${#broken[@]} -gt 0 ] && echo "suites with a non-zero exit: ${broken[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#broken[@]} -eq 0 ]
