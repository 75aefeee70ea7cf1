#!/usr/bin/env bash
# Fault injection: egw-mgmt SIGKILLs itself at each step of a commit (EGW_MGMT_FAULT);
# after a restart without the fault the store holds the old or the new version, whole,
# its current.egwp boots a dataplane at that version, the attached dataplane converges
# to it, and the next commit works. Dataplanes run on net_null ports (no network).
# Usage: bash tests/e2e/faults.sh BUILD_DIR   (root; ends with "N passed, N failed")
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")

# Fault point | the version the store must hold after the crash: old, new or either.
# Before the rename nothing is committed (old); once publishing starts the commit is
# durable (new); right after the rename either is whole and acceptable.
POINTS=(
  "before_write|old"
  "after_temp_write|old"
  "after_rename|either"
  "before_publish|new"
  "after_publish|new"
)

EGW_SUITE=faults
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"

# Policy document number $1 (each differs by one harmless rule), written to $2.
write_doc() {
  /usr/bin/python3 - "$1" >"$2" <<'EOF'
import json, sys
n = int(sys.argv[1])
print(json.dumps({"schema": 1, "default_action": "deny",
                  "services": {"web": {"cidrs": ["198.18.1.0/24"]}},
                  "rulesets": [{"name": "faults", "rules": [
                      {"id": "http", "from": ["web"], "proto": "tcp", "ports": [80],
                       "to": {"cidrs": ["198.19.1.0/24"]}, "action": "allow"},
                      {"id": "doc-%d" % n, "from": ["any"], "proto": "udp", "ports": [1000 + n],
                       "to": {"cidrs": ["198.19.3.0/24"]}, "action": "allow"}]}]}, indent=1))
EOF
}

# The store after the crash: GET /v1/policy is doc A or doc B byte for byte, its ETag is
# the last history entry, the history is 1..N with that entry's sha256 of the body, and
# which one it is matches the fault point's expectation. Prints "VERSION WHICH".
STORE_VERSION=""
check_store() {
  local want=$1 a=$2 b=$3 out
  out=$(/usr/bin/python3 - "$EGW_MGMT_URL" "$EGW_TOKEN_FILE" "$a" "$b" "$want" "$EGW_TRAFFIC" <<'EOF'
import hashlib, http.client, json, sys
url, tokfile, fa, fb, want = sys.argv[1:6]
port = int(url.rsplit(":", 1)[1])
tok = open(tokfile).read().split()[0]
def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"Authorization": "Bearer " + tok})
    r = c.getresponse()
    return r.status, r.getheader("ETag"), r.read()
st, etag, body = get("/v1/policy")
assert st == 200, f"GET /v1/policy: HTTP {st}"
A, B = open(fa, "rb").read(), open(fb, "rb").read()
which = "old" if body == A else "new" if body == B else None
if which is None:
    j = json.loads(body)
    hint = "old (JSON only)" if j == json.loads(A) else "new (JSON only)" if j == json.loads(B) else "neither"
    raise AssertionError(f"the document is not byte-identical to either version: {hint}")
assert want in ("either", which), f"holds the {which} version, expected the {want} one"
st, _, h = get("/v1/policy/history")
h = json.loads(h)
v = int(etag.strip('"'))
assert [e["version"] for e in h] == list(range(1, v + 1)), f"history {[e['version'] for e in h]}, ETag {etag}"
assert v == (1 if which == "old" else 2), f"version {v} for the {which} document"
sha = hashlib.sha256(body).hexdigest()
assert h[-1]["sha256"] == sha, f"history sha256 {h[-1]['sha256'][:12]} != sha256(document) {sha[:12]}"
print(v, which)
EOF
  ) || { echo "$out"; return 1; }
  echo "${out%% *}" >"$EGW_WORK/store-version"  # check runs this in a subshell
  echo "the $(echo "$out" | awk '{print $2}') version, v${out%% *}, whole; history 1..${out%% *}"
}

# A second dataplane boots from DIR/current.egwp and reports the store's version.
check_blob_boots() {
  local n=$1 out="$EGW_WORK/boot-$1.out" rc=0
  [ -f "$EGW_STATE/current.egwp" ] || { echo "no $EGW_STATE/current.egwp"; return 1; }
  egw_null_dataplane "$BUILD" "$EGW_INSTANCE-b$n" "egw-faults-b$n-$$" "$EGW_STATE/current.egwp" "$out" ||
    { echo "it did not start: $(tail -n 1 "$out.err")"; return 1; }
  grep -q "policy version $STORE_VERSION with" "$out" || rc=1
  egw_stop_pid "$EGW_NULL_PID"
  grep -o 'policy version [0-9]* with [0-9]* rules' "$out" || echo "no version line in $out"
  return $rc
}

# The dataplane attached all along reports the store's version as active.
check_converged() {
  local i v=""
  for ((i = 0; i < 75; i++)); do
    if [ "$(egw_health dataplane)" = connected ]; then
      v=$(egw_health dataplane_policy_version)
      [ -n "$v" ] || v=$(egw_health policy_version)
      [ "$v" = "$STORE_VERSION" ] && { echo "dataplane active at v$v"; return 0; }
    fi
    sleep 0.2
  done
  echo "dataplane at '$v', store at v$STORE_VERSION (health: $(egw_health dataplane))"
  return 1
}

# The store takes the next commit and the dataplane activates it.
check_next_commit() {
  local out
  out=$(egw_rest PUT /v1/policy "$1") || { echo "$out" | tail -n 1; return 1; }
  /usr/bin/python3 -c 'import json, sys
r = json.loads(sys.argv[1].split("\n", 1)[1]); want = int(sys.argv[2])
assert r.get("version") == want and r.get("active") is True, f"{r}, want version {want} active"
print("version %d active in %s ms" % (want, r["activation_ms"]))' "$out" "$((STORE_VERSION + 1))"
}

run_point() {
  local n=$1 point=$2 want=$3
  local a="$EGW_WORK/doc-$n-a.json" b="$EGW_WORK/doc-$n-b.json" c="$EGW_WORK/doc-$n-c.json"
  write_doc $((n * 10 + 1)) "$a"
  write_doc $((n * 10 + 2)) "$b"
  write_doc $((n * 10 + 3)) "$c"
  EGW_STATE="$EGW_WORK/state-$point"
  EGW_MGMT_PORT=""
  EGW_MGMT_INSTANCE="$EGW_INSTANCE-f$n"
  egw_start_mgmt "$BUILD"
  egw_null_dataplane "$BUILD" "$EGW_MGMT_INSTANCE" "egw-faults-f$n-$$" "" "$EGW_WORK/dp-$n.out" ||
    egw_die "the dataplane for $point did not start: $(tail -n 2 "$EGW_WORK/dp-$n.out.err")"
  local dp_pid=$EGW_NULL_PID
  egw_wait_health connected "" 15 || egw_die "$point: egw-mgmt did not see the dataplane"
  egw_rest PUT /v1/policy "$a" >/dev/null || egw_die "$point: the first commit failed"
  egw_stop_mgmt TERM

  # The crash: the PUT of doc B gets no answer; egw-mgmt is gone by SIGKILL.
  egw_start_mgmt "$BUILD" "EGW_MGMT_FAULT=$point"
  egw_wait_health connected 1 15 || egw_die "$point: egw-mgmt with the fault did not reconnect"
  local put
  put=$(egw_rest PUT /v1/policy "$b" 2>&1 | head -n 1)
  local pid=$EGW_MGMT_PID rc died=1
  {  # silences bash's "Killed" notice
    egw_wait_gone "$pid" 10 || { died=0; kill -KILL "$pid"; }
    wait "$pid"
  } 2>/dev/null
  rc=$?
  [ "$died" -eq 1 ] || rc=255  # still alive 10 s after the PUT: the fault never fired
  EGW_MGMT_PID=""
  check "$point: egw-mgmt dies by SIGKILL mid-commit, the PUT unanswered" \
    test "$rc" -eq 137 -a "$put" != 200
  [ "$rc" -eq 137 ] || egw_log "$point: exit $rc, PUT answered '$put'"

  egw_start_mgmt "$BUILD"
  rm -f "$EGW_WORK/store-version"
  local what="the $want version"
  [ "$want" = either ] && what="the old or the new version"
  check "$point: the restarted store holds $what, whole" check_store "$want" "$a" "$b"
  STORE_VERSION=$(cat "$EGW_WORK/store-version" 2>/dev/null)
  if [ -n "$STORE_VERSION" ]; then
    check "$point: DIR/current.egwp boots a dataplane at v$STORE_VERSION" check_blob_boots "$n"
    check "$point: the attached dataplane converges to v$STORE_VERSION" check_converged
    check "$point: the next commit is v$((STORE_VERSION + 1)), active" check_next_commit "$c"
  fi
  STORE_VERSION=""
  egw_stop_mgmt TERM
  egw_stop_pid "$dp_pid"
}

main() {
  [ "$(id -u)" -eq 0 ] || egw_die "needs root (DPDK vdevs, shared memory of other users)"
  egw_init
  if [ ! -x "$BUILD/egw-dataplane" ] || [ ! -x "$BUILD/egw-mgmt" ]; then
    egw_die "build first: make all"
  fi
  local i point want
  for i in "${!POINTS[@]}"; do
    IFS='|' read -r point want <<<"${POINTS[$i]}"
    run_point "$((i + 1))" "$point" "$want"
  done
  egw_finish "process or shm object"
}

main
