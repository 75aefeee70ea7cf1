#!/usr/bin/env bash
# End-to-end test of egw-dataplane's DPDK telemetry commands (dataplane/telemetry.h)
# through Debian's dpdk-telemetry.py. The dataplane runs alone (no namespaces, no
# egw-mgmt) with a boot policy: its inside port (net_pcap) replays once a capture of
# outbound flows written here, its outside port replays an empty one. Once the worker
# has taken every packet, each command is asked once and the JSON answers are checked
# against the capture (a table of cases in the checker below).
# Telemetry works with --no-shconf: its socket lives in DPDK's runtime directory
# (RUNTIME_DIR/dpdk/FILE_PREFIX), which this test removes afterwards.
# Usage: bash tests/e2e/telemetry.sh BUILD_DIR   (ends with "N passed, N failed")
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")
PY=/usr/bin/python3
TELEMETRY=${DPDK_TELEMETRY:-/usr/bin/dpdk-telemetry.py}
PREFIX="egwtel$$"
# As dpdk-telemetry.py (and the EAL) find it.
if [ -n "${RUNTIME_DIRECTORY:-}" ]; then
  RUNTIME_DIR="$RUNTIME_DIRECTORY/dpdk/$PREFIX"
elif [ "$(id -u)" -eq 0 ]; then
  RUNTIME_DIR="/var/run/dpdk/$PREFIX"
else
  RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}/dpdk/$PREFIX"
fi
FILLER=60  # UDP flows beyond the special ones: more than one answer can list

EGW_SUITE=telemetry
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"

tel_cleanup() {
  egw_cleanup
  rm -rf "$RUNTIME_DIR"
}

# What egw_leftovers checks, and the runtime directory.
tel_leftovers() {
  local left=0
  egw_leftovers || left=1
  if [ -e "$RUNTIME_DIR" ]; then
    echo "DPDK runtime directory left: $RUNTIME_DIR"
    left=1
  fi
  return $left
}

for bin in egw-dataplane egwctl; do
  [ -x "$BUILD/$bin" ] || egw_die "$BUILD/$bin not found: run 'make' first"
done
[ -f "$TELEMETRY" ] || egw_die "$TELEMETRY not found (Debian: apt-get install dpdk)"
egw_init
trap tel_cleanup EXIT

cat >"$EGW_WORK/policy.json" <<'EOF'
{"schema": 1, "default_action": "deny",
 "services": {"cli": {"cidrs": ["198.18.0.0/16", "2001:2:0:1::/64"]}},
 "rulesets": [{"name": "telemetry", "rules": [
   {"id": "tel-udp-echo", "from": ["cli"], "proto": "udp", "ports": [7],
    "to": {"cidrs": ["198.19.1.0/24", "2001:2:0:100::/64"]}, "action": "allow"},
   {"id": "tel-http", "from": ["cli"], "proto": "tcp", "ports": [80],
    "to": {"cidrs": ["198.19.1.0/24"]}, "action": "allow"},
   {"id": "tel-unused", "from": ["cli"], "proto": "udp", "ports": [1234],
    "to": {"cidrs": ["198.19.9.0/24"]}, "action": "allow"}]}]}
EOF
"$BUILD/egwctl" compile "$EGW_WORK/policy.json" -o "$EGW_WORK/policy.egwp" >"$EGW_WORK/egwctl.log" 2>&1 ||
  { cat "$EGW_WORK/egwctl.log" >&2; egw_die "egwctl compile failed"; }

# The captures. A fresh flow table hands out its entries in order and lists them in
# entry order: the special flows come first, so that any listing holds them.
$PY - "$EGW_WORK" "$FILLER" <<'EOF' || egw_die "cannot write the captures"
import struct, sys
from scapy.all import Ether, IP, IPv6, UDP, TCP, Raw, wrpcap
work, filler = sys.argv[1], int(sys.argv[2])
eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
pkts = [
    eth / IPv6(src="2001:2:0:1::2", dst="2001:2:0:100::10") / UDP(sport=4000, dport=7) / Raw(b"v6"),
    eth / IP(src="198.18.1.2", dst="198.19.1.10") / TCP(sport=4001, dport=80, flags="S", seq=1000),
    eth / IP(src="198.18.1.2", dst="198.19.1.10") / UDP(sport=4002, dport=9) / Raw(b"denied"),
]
pkts += [eth / IP(src="198.18.1.2", dst="198.19.1.10") / UDP(sport=5000 + i, dport=7) / Raw(b"x" * 10)
         for i in range(filler)]
wrpcap(work + "/in.pcap", pkts)
with open(work + "/out.pcap", "wb") as f:  # the global header alone: no packet
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
EOF

"$BUILD/egw-dataplane" -l 0,1 --no-huge --no-pci --no-shconf -m 1024 --file-prefix "$PREFIX" \
  --log-level='lib.*:error' \
  --vdev="net_pcap0,rx_pcap=$EGW_WORK/in.pcap" --vdev="net_pcap1,rx_pcap=$EGW_WORK/out.pcap" \
  -- --instance "$EGW_INSTANCE" --policy "$EGW_WORK/policy.egwp" \
  >"$EGW_WORK/dataplane.out" 2>"$EGW_WORK/dataplane.err" </dev/null &
DP_PID=$!
EGW_PIDS+=("$DP_PID")
EGW_PID_NAMES+=("egw-dataplane")
for ((i = 0; i < 300; i++)); do
  grep -q '^egw-dataplane: forwarding' "$EGW_WORK/dataplane.out" 2>/dev/null && break
  kill -0 "$DP_PID" 2>/dev/null ||
    { tail -n 5 "$EGW_WORK/dataplane.err" >&2; egw_die "egw-dataplane exited at start"; }
  sleep 0.1
done
[ "$i" -lt 300 ] || egw_die "egw-dataplane did not print its ready line within 30 s"

# ask CMD...: one answer (a JSON line) per command.
ask() { printf '%s\n' "$@" | "$PY" "$TELEMETRY" -f "$PREFIX" 2>&1; }

# Every packet taken and counted, and the port counters (published every 100 ms) too.
N_PKTS=$((FILLER + 3))
for ((i = 0; i < 100; i++)); do
  ask /egw/stats >"$EGW_WORK/wait.json"
  $PY -c 'import json, sys
s = json.load(open(sys.argv[1]))["/egw/stats"]
sys.exit(not (s["worker"]["rx_packets"] == s["inside"]["rx_packets"] == int(sys.argv[2])))' \
    "$EGW_WORK/wait.json" "$N_PKTS" 2>/dev/null && break
  sleep 0.1
done
[ "$i" -lt 100 ] || { cat "$EGW_WORK/wait.json" >&2; egw_die "the worker did not take $N_PKTS packets within 10 s"; }

COMMANDS=(/ "/help,/egw/flows" /egw/stats /egw/policy /egw/flows "/egw/flows,5" "/egw/flows,100"
          "/egw/flows,101" "/egw/flows,-1" "/egw/flows,abc")
ask "${COMMANDS[@]}" >"$EGW_WORK/answers.jsonl"

# The checker: one "OK<TAB>case<TAB>detail" line per case (OK 1 or 0).
$PY - "$EGW_WORK/answers.jsonl" "$FILLER" "${COMMANDS[@]}" >"$EGW_WORK/checks.tsv" <<'EOF'
import json, sys
# An answer is keyed by the command without its parameter: by the command as asked here.
lines = [l for l in open(sys.argv[1]) if l.strip()]
answers = {cmd: next(iter(json.loads(l).values()), None) for cmd, l in zip(sys.argv[3:], lines)}
filler = int(sys.argv[2])
stats, policy = answers.get("/egw/stats", {}), answers.get("/egw/policy", {})
flows, five, hundred = (answers.get(k, {}) for k in ("/egw/flows", "/egw/flows,5", "/egw/flows,100"))
packets = filler + 3                     # one per flow
allowed = filler + 2                     # all but the one to port 9 (the default denies)
# The special flows by source port, as a listing must show them.
special = {
    4000: dict(src_ip="2001:2:0:1::2", dest_ip="2001:2:0:100::10", dest_port=7, proto="UDP",
               verdict="allow", rule_id="tel-udp-echo", pkts_toserver=1, pkts_toclient=0,
               bytes_toserver=64, bytes_toclient=0, state="new"),
    4001: dict(src_ip="198.18.1.2", dest_ip="198.19.1.10", dest_port=80, proto="TCP",
               verdict="allow", rule_id="tel-http", pkts_toserver=1, bytes_toserver=54,
               state="syn_sent"),
    4002: dict(dest_port=9, proto="UDP", verdict="deny", rule_id="(default)", pkts_toserver=1,
               bytes_toserver=48, state="new"),
}
keys = {"worker", "flow_id", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "verdict",
        "rule_id", "pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient", "state"}

def listed(answer):
    return list(answer.get("flows", {}).values())

def by_port(answer):
    return {f.get("src_port"): f for f in listed(answer)}

def special_bad(answer):
    got = by_port(answer)
    return [p for p, want in special.items() if any(got.get(p, {}).get(k) != v for k, v in want.items())]

def keyed_by_id(answer):
    return all(k == str(f["flow_id"]) for k, f in answer.get("flows", {}).items())

def usage(cmd):
    return "usage" in answers.get(cmd, {}).get("error", "")

# (case, check, detail: a string or a function giving one)
CASES = [
    ("/ lists the three commands",
     lambda: {"/egw/stats", "/egw/policy", "/egw/flows"} <= set(answers["/"]), ""),
    ("/help names the parameter of /egw/flows",
     lambda: "N" in answers["/help,/egw/flows"]["/egw/flows"], ""),
    ("stats: the inside port received the capture",
     lambda: stats["inside"]["rx_packets"] == packets and stats["inside"]["tx_packets"] == 0, ""),
    ("stats: the outside port sent the allowed packets, received none",
     lambda: stats["outside"]["tx_packets"] == allowed and stats["outside"]["rx_packets"] == 0, ""),
    ("stats: the denied packet is the only drop",
     lambda: stats["drops"] == {"policy_deny": 1} and stats["drops_total"] == 1, ""),
    ("stats: flows created and active",
     lambda: stats["flows"]["created"] == packets and stats["flows"]["active"] == packets
     and stats["flows"]["capacity"] > 0, ""),
    ("stats: worker counters summed",
     lambda: stats["workers"] == 1 and stats["worker"]["rx_packets"] == packets
     and stats["worker"]["tx_packets"] == allowed, ""),
    ("policy: the boot policy (version 0 from egwctl), no activation yet",
     lambda: policy["active_version"] == 0 and policy["activations"] == 0
     and policy["activation_failures"] == 0 and policy["last_activation_us"] == 0, ""),
    ("policy: ids of the rules in force",
     lambda: sorted(policy["rules"]) == ["tel-http", "tel-udp-echo", "tel-unused"]
     and policy["rules_active"] == 3 and policy["truncated"] == 0, ""),
    ("policy: rule slots",
     lambda: policy["rule_slots_used"] == 3 and policy["rule_slots"] >= 5
     and policy["rules_without_slot"] == 0, ""),
    ("flows: per worker and in total, none listed without N",
     lambda: flows["active"] == sum(flows["per_worker"]) == packets
     and len(flows["per_worker"]) == 1 and flows["listed"] == 0 and not listed(flows), ""),
    ("flows,5: five flows with every field, keyed by flow id",
     lambda: five["listed"] == len(listed(five)) == 5 and five["truncated"] == 0
     and all(set(f) == keys for f in listed(five)) and keyed_by_id(five), ""),
    ("flows,5: the IPv6 UDP, the TCP and the denied flow",
     lambda: not special_bad(five),
     lambda: "source ports %s differ" % special_bad(five) if special_bad(five) else ""),
    ("flows,100: cut short to fit one telemetry answer",
     lambda: hundred["truncated"] == 1 and 5 < hundred["listed"] == len(listed(hundred)) < packets
     and len(lines[sys.argv[3:].index("/egw/flows,100")]) < 16384, ""),
    ("flows,100: filler flows named by their rule",
     lambda: all(f["rule_id"] == "tel-udp-echo" and f["bytes_toserver"] == 52
                 for p, f in by_port(hundred).items() if p >= 5000), ""),
    ("flows,101 refused with the usage", lambda: usage("/egw/flows,101"), ""),
    ("flows,-1 refused with the usage", lambda: usage("/egw/flows,-1"), ""),
    ("flows,abc refused with the usage", lambda: usage("/egw/flows,abc"), ""),
]
for desc, ok, detail in CASES:
    try:
        good = bool(ok())
        detail = detail() if callable(detail) else detail
    except Exception as e:  # a missing key is a failed case, not a crashed checker
        good, detail = False, "%s: %r" % (type(e).__name__, e)
    print("%d\t%s\t%s" % (good, desc, detail))
EOF
[ -s "$EGW_WORK/checks.tsv" ] || report 0 "telemetry answers checked" "the checker failed: see $EGW_WORK"
while IFS=$'\t' read -r ok desc detail; do
  report "$ok" "$desc" "$detail"
done <"$EGW_WORK/checks.tsv"

# The commands are detached before the segment and the workers go: a clean exit.
egw_stop_pid "$DP_PID"
rc=$?
report "$([ "$rc" -eq 0 ] && echo 1 || echo 0)" "egw-dataplane exits cleanly after the queries" "exit $rc"

[ "$FAILED" -eq 0 ] || EGW_KEEP_WORK=1
tel_cleanup
check "cleanup leaves no process, shm object or runtime directory" tel_leftovers
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
