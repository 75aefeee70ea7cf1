#!/usr/bin/env bash
# Restarts, end to end: the dataplane restarted with --policy STATE/current.egwp enforces
# the committed policy from its first packet and egw-mgmt reconnects; egw-mgmt killed -9
# changes nothing the dataplane enforces, and a restarted egw-mgmt reconnects; after an
# upgrade that changed the blob ABI, egw-mgmt recompiles the stored blob and publishes it.
# Usage: bash tests/e2e/restart.sh BUILD_DIR   (root; ends with "N passed, N failed")
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")

EGW_SUITE=restart
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"

CURL="curl -sS -o /dev/null --max-time 3"
# Enforcement cases: description | expected exit | command in the client namespace.
# curl: 0 allowed, 28 dropped silently (timeout), 7 rejected (RST).
ENFORCE=(
  "allowed HTTP tcp/80 passes|0|$CURL -f http://$SRV_V4_OK/"
  "tcp/9090 (no rule) is dropped|28|$CURL http://$SRV_V4_OK:9090/"
  "tcp to 198.19.2.10 is rejected (RST)|7|$CURL http://$SRV_V4_REJ/"
)

# Runs the enforcement cases, label $1.
enforce() {
  local label=$1 c desc want cmd
  for c in "${ENFORCE[@]}"; do
    IFS='|' read -r desc want cmd <<<"$c"
    egw_exec_case "$NS_CLI" "$cmd"
    if [ "$CASE_RC" -eq "$want" ]; then
      report 1 "$label: $desc" "exit $CASE_RC in ${CASE_SECS}s"
    else
      report 0 "$label: $desc" "exit $CASE_RC, expected $want"
    fi
  done
}

# The dataplane's ready line names the expected policy version.
boot_version_is() {
  grep -o 'policy version [0-9]* with [0-9]* rules' "$EGW_DP_OUT" | tee /dev/stderr |
    grep -q "^policy version $1 "
}

# Health: dataplane connected, at the store's version on both sides.
mgmt_sees_dataplane_at() {
  egw_wait_health connected "$1" 15 || { echo "health: $(egw_health dataplane) v$(egw_health policy_version)"; return 1; }
  local dv
  dv=$(egw_health dataplane_policy_version)
  [ -z "$dv" ] || [ "$dv" = "$1" ] || { echo "dataplane_policy_version $dv"; return 1; }
  echo "connected, v$1"
}

# A commit through the restarted egw-mgmt reaches the dataplane.
commit_reaches_dataplane() {
  local out
  out=$(egw_apply "$BUILD" "$1") || { echo "$out"; return 1; }
  mgmt_sees_dataplane_at "$2"
}

# Rewrites the policy ABI version (header bytes 4-5, little endian) of blob $1 to $2, as
# an older build wrote it.
set_blob_abi() {
  /usr/bin/python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4); f.write(int(sys.argv[2]).to_bytes(2, "little"))' "$1" "$2"
}

# After the "upgrade", egw-mgmt put the recompiled v2 blob (saved in $1) back in the
# store, audited it and published it ($2: published lines in the log before the restart).
recompiled_and_published() {
  local good=$1 n0=$2 f i
  for ((i = 0; i < 50; i++)); do
    [ "$(grep -c 'published version 2 to the dataplane' "$EGW_MGMT_LOG")" -gt "$n0" ] && break
    sleep 0.2
  done
  for f in "$EGW_STATE/current.egwp" "$EGW_STATE/versions/2/policy.egwp"; do
    cmp -s "$f" "$good" || { echo "$f was not recompiled"; return 1; }
  done
  tail -n 1 "$EGW_STATE/audit.jsonl" | grep -q '"method":"RECOMPILE".*"status":200,.*"version":2' ||
    { echo "last audit line: $(tail -n 1 "$EGW_STATE/audit.jsonl")"; return 1; }
  grep 'recompiled from its document' "$EGW_MGMT_LOG" | tail -n 1
  [ "$(grep -c 'published version 2 to the dataplane' "$EGW_MGMT_LOG")" -gt "$n0" ] ||
    { echo "egw-mgmt did not publish version 2"; return 1; }
}

# As mgmt_sees_dataplane_at, and health's status is ok (no policy_error).
health_ok_at() {
  mgmt_sees_dataplane_at "$1" || return 1
  [ "$(egw_health status)" = ok ] ||
    { echo "status $(egw_health status): $(egw_health policy_error)"; return 1; }
}

# The final counters: no packet of the restarted dataplane fell to no_policy.
no_fail_closed_drops() {
  /usr/bin/python3 - "$(egw_dp_last_line)" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])["drops"]
assert d.get("no_policy", 0) == 0, f"no_policy={d['no_policy']}: packets saw no policy"
print(f"no_policy=0, policy_deny={d.get('policy_deny')}, policy_reject={d.get('policy_reject')}")
EOF
}

main() {
  egw_require
  egw_init
  egw_topology_up
  egw_start_servers
  egw_start_mgmt "$BUILD"
  egw_start_dataplane "$BUILD" ""
  egw_wait_health connected 0 15 || egw_die "egw-mgmt did not see the dataplane"
  egw_apply "$BUILD" "$EGW_ROOT/rules/examples/demo.json" >"$EGW_WORK/apply.log" 2>&1 ||
    egw_die "egwctl apply demo.json failed: $(tail -n 1 "$EGW_WORK/apply.log")"
  egw_wait_path 10
  enforce "before any restart"

  # 1. The dataplane restarts from the state dir's compiled policy; first packets judged.
  egw_stop_dataplane
  check "the dataplane stops on SIGTERM (exit 0)" test "$EGW_DP_RC" -eq 0
  EGW_DP_TAG=dataplane2 egw_start_dataplane "$BUILD" "$EGW_STATE/current.egwp"
  enforce "dataplane restarted, first packets"
  check "the restarted dataplane booted at v1 from STATE/current.egwp" boot_version_is 1
  check "egw-mgmt reconnects to the restarted dataplane" mgmt_sees_dataplane_at 1

  # 2. egw-mgmt dies hard: nothing the dataplane enforces changes.
  egw_stop_mgmt KILL
  check "egw-mgmt killed with SIGKILL" test "$EGW_MGMT_RC" -eq 137
  enforce "egw-mgmt down"
  egw_start_mgmt "$BUILD"
  check "a restarted egw-mgmt reconnects, dataplane still at v1" mgmt_sees_dataplane_at 1
  /usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); d["rulesets"][0]["rules"].append({"id": "extra", "from": ["any"],
    "proto": "udp", "ports": [5353], "to": {"cidrs": ["198.19.3.0/24"]}, "action": "allow"})
print(json.dumps(d))' "$EGW_ROOT/rules/examples/demo.json" >"$EGW_WORK/demo-v2.json"
  check "a commit through the restarted egw-mgmt activates v2" \
    commit_reaches_dataplane "$EGW_WORK/demo-v2.json" 2
  enforce "after egw-mgmt's restart and v2"

  # 3. An upgrade changed the blob ABI: the stored v2 blob is one the dataplane refuses.
  egw_stop_mgmt TERM
  local abi published
  cp "$EGW_STATE/current.egwp" "$EGW_WORK/v2.egwp"
  abi=$(od -An -tu2 -j4 -N2 "$EGW_WORK/v2.egwp" | tr -d ' ')
  set_blob_abi "$EGW_STATE/current.egwp" $((abi - 1))
  set_blob_abi "$EGW_STATE/versions/2/policy.egwp" $((abi - 1))
  published=$(grep -c 'published version 2 to the dataplane' "$EGW_MGMT_LOG")
  egw_start_mgmt "$BUILD"
  check "after an ABI change egw-mgmt recompiles v2, stores, audits and publishes it" \
    recompiled_and_published "$EGW_WORK/v2.egwp" "$published"
  check "health: connected at v2, status ok" health_ok_at 2
  egw_stop_dataplane
  EGW_DP_TAG=dataplane3 egw_start_dataplane "$BUILD" "$EGW_STATE/current.egwp"
  enforce "dataplane restarted from the recompiled current.egwp"
  check "the dataplane booted at v2 from the recompiled STATE/current.egwp" boot_version_is 2

  egw_stop_dataplane
  check "the restarted dataplane never dropped for want of a policy" no_fail_closed_drops

  egw_finish
}

main
