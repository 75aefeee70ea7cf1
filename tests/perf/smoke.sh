#!/usr/bin/env bash
# Perf smoke test: `make perf`'s driver in its quick mode (one repetition, short runs,
# small inputs) must run every scenario and write a well-formed results.json. It checks
# shape, not speed: every figure of perf-method.md is present, a finite number, and
# positive where zero would mean the scenario did not run (lost packets may be 0).
# Usage: bash tests/perf/smoke.sh BUILD_DIR
set -uo pipefail
B=${1:-build}
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

PERF_QUICK=1 PERF_OUT="$out" bash perf/run.sh "$B" >"$out/run.log" 2>&1
rc=$?
tail -40 "$out/run.log"
/usr/bin/python3 - "$out/results.json" "$rc" <<'PY'
import json, math, sys
path, rc = sys.argv[1], int(sys.argv[2])
# (scenario, key, may be zero)
CASES = [
    ("io_ceiling", "mpps", False),
    ("fast_path_64", "mpps", False),
    ("fast_path_64", "cycles_per_pkt", False),
    ("fast_path_64", "ratio", False),
    ("fast_path_imix", "mpps", False),
    ("fast_path_imix", "gbps", False),
    ("fast_path_imix", "ratio", False),
    ("new_flows_l34", "flows_per_s", False),
    ("new_flows_l34", "cycles_per_flow", False),
    ("new_flows_sni", "flows_per_s", False),
    ("new_flows_sni", "cycles_per_flow", False),
    ("rules_scale", "domains_100k_compile_s", False),
    ("rules_scale", "domains_100k_blob_mib", False),
    ("rules_scale", "match_ns_10", False),
    ("rules_scale", "match_ns_100k", False),
    ("rules_scale", "regex_10k_compile_s", False),
    ("swap", "activation_ms_p50", False),
    ("swap", "activation_ms_p99", False),
    ("swap", "lost", True),
    ("flow_memory", "bytes_per_flow", False),
    ("flow_records", "emit_per_s", False),
    ("flow_records", "drain_per_s", False),
    ("flow_records", "no_reader_cycles", False),
    ("flow_records", "no_reader_kept", False),
    ("established_limited", "cycles_per_pkt", False),
    ("new_flows_limited", "flows_per_s", False),
]
passed = failed = 0
def check(name, ok, why=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s %s" % (name, why))
check("perf/run.sh exits 0", rc == 0, "exit %d" % rc)
try:
    res = json.load(open(path))
except Exception as e:  # a missing or broken file fails every case below
    res = {}
    check("results.json parses", False, str(e))
check("cpu_ghz is positive", isinstance(res.get("cpu_ghz"), (int, float)) and res["cpu_ghz"] > 0)
check("commit is named", isinstance(res.get("commit"), str) and res["commit"] != "")
sc = res.get("scenarios", {})
for scen, key, zero_ok in CASES:
    v = sc.get(scen, {}).get(key)
    good = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and \
        (v >= 0 if zero_ok else v > 0)
    check("%s.%s" % (scen, key), good, "got %r" % (v,))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
