#!/usr/bin/env bash
# End-to-end test of enforcement beyond allow and deny, with real clients through
# egw-dataplane and egw-mgmt: a client opening connections faster than its rule's
# new_flows_per_s gets the rate's share (burst included) over 10 s, the rest reset at
# once; an iperf3 TCP transfer under a rule's bytes_per_s lands at that rate; a report-only
# rule that would reject a flow lets it pass and says so in its record and in /metrics.
# Usage: bash tests/e2e/limits.sh BUILD_DIR     (root; ends with "N passed, N failed")
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")

EGW_SUITE=limits
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"

RATE=20    # new flows a second on tcp/8081
BURST=20
BYTES=1000000  # bytes a second on tcp/5201 (8 Mbit/s)
WINDOW=10  # seconds of each measurement

# The demo policy plus: a report-only ruleset first, and two limited allow rules. Its
# inspect rule is left out: a policed segment of an inspected flow also makes inspection
# drop the segments after it until the resend (docs/policy.md), which this test does not
# measure.
limits_policy() {
  /usr/bin/python3 - "$EGW_ROOT/rules/examples/demo.json" "$EGW_WORK/limits.json" \
    "$RATE" "$BURST" "$BYTES" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
doc.pop("inspect", None)
rate, burst, nbytes = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
web = {"cidrs": ["198.19.1.0/24", "2001:2:0:100::/64"]}
doc["rulesets"].insert(0, {"name": "candidates", "mode": "report", "rules": [
    {"id": "would-block-http", "from": ["web"], "proto": "tcp", "ports": [80], "to": web,
     "action": "reject"}]})
doc["rulesets"].insert(1, {"name": "limited", "rules": [
    {"id": "syn-limited", "from": ["web"], "proto": "tcp", "ports": [8081], "to": web,
     "action": "allow",
     "rate_limit": {"new_flows_per_s": rate, "burst": burst, "per": "source"}},
    {"id": "bulk", "from": ["web"], "proto": "tcp", "ports": [5201], "to": web,
     "action": "allow",
     "rate_limit": {"bytes_per_s": nbytes, "bytes_burst": nbytes // 2}, "max_flows": 4}]})
json.dump(doc, open(sys.argv[2], "w"), indent=1)
EOF
}

# A listener on tcp/8081 that accepts and closes, with a backlog that never fills (the
# HTTP servers' 5 would drop SYNs of a fast client: not what is measured here).
ACCEPT_SERVER='
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8081))
s.listen(4096)
while True:
    c, _ = s.accept()
    c.close()
'

# Connects to tcp/8081 as fast as it can for WINDOW seconds (each connection closed at
# once); prints "allowed refused". A refused connection is reset at once, or, past egw's
# limit on the RSTs it sends (1000/s), dropped: the connect times out.
CONNECT_LOOP='
import socket, sys, time
host, secs = sys.argv[1], float(sys.argv[2])
ok = refused = timeouts = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    s = socket.socket()
    s.settimeout(0.25)
    try:
        s.connect((host, 8081))
        ok += 1
    except (ConnectionRefusedError, ConnectionResetError):
        refused += 1
    except TimeoutError:
        refused += 1
        timeouts += 1
    finally:
        s.close()
print(ok, refused, timeouts)
'

# A metric's value from a /metrics text file: metric FILE 'NAME{LABELS}'.
metric() {
  awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$1"
}

# within VALUE WANT PCT: VALUE is within PCT % of WANT.
within() {
  awk -v v="$1" -v w="$2" -v p="$3" 'BEGIN { d = v - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'
}

check_connect_rate() {
  local allowed=$1 refused=$2 timeouts=$3 want
  want=$((RATE * WINDOW + BURST))
  echo "$allowed allowed, $refused refused ($timeouts timed out) in ${WINDOW}s; expected $want (rate $RATE/s x ${WINDOW}s + burst $BURST) +-10%"
  [ "$refused" -gt 0 ] && within "$allowed" "$want" 10
}

check_metric_delta() {
  local name=$1 want=$2 a b
  a=$(metric "$EGW_WORK/metrics-0.txt" "$name")
  b=$(metric "$EGW_WORK/metrics-1.txt" "$name")
  echo "$name moved by $((b - a)), expected $want"
  [ $((b - a)) -eq "$want" ]
}

check_limited_flows() {
  local refused=$1 a b
  a=$(metric "$EGW_WORK/metrics-0.txt" 'egw_rate_limited_flows_total{rule="syn-limited"}')
  b=$(metric "$EGW_WORK/metrics-1.txt" 'egw_rate_limited_flows_total{rule="syn-limited"}')
  echo "$((b - a)) new flows refused by the rate, of $refused refused connections"
  [ $((b - a)) -gt 0 ] && [ $((b - a)) -le "$refused" ]
}

# iperf3 counts payload; the rule counts frames: the goodput the rule allows over the
# window is its rate plus its burst spread over the window, times payload / frame (MSS +
# 66: Ethernet 14, IPv4 20, TCP 32 with timestamps).
check_iperf() {
  /usr/bin/python3 - "$EGW_WORK/iperf.json" "$BYTES" "$WINDOW" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
bps = d["end"]["sum_received"]["bits_per_second"]
mss = d["start"].get("tcp_mss_default") or 1448
rate, secs = int(sys.argv[2]), int(sys.argv[3])
want = (rate + rate / 2 / secs) * 8 * mss / (mss + 66)
print(f"iperf3 received {bps / 1e6:.2f} Mbit/s; the rule allows {want / 1e6:.2f} Mbit/s of "
      f"payload (MSS {mss}) +-10%")
sys.exit(0 if abs(bps - want) <= want * 0.10 else 1)
EOF
}

flow_report() {
  /usr/bin/python3 - "$EGW_DP_FLOWLOG" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# The connect loop's ephemeral ports may reuse 41300: the flow is 41300 -> tcp/80.
hit = [r for r in recs if r.get("src_port") == 41300 and r.get("dest_port") == 80]
if len(hit) != 1:
    sys.exit(f"{len(hit)} records of 41300 -> tcp/80")
r = hit[0]
want = {"verdict": "allow", "report": {"rule_id": "would-block-http", "verdict": "reject"}}
got = {k: r.get(k) for k in want}
if got != want:
    sys.exit(f"record says {got}, expected {want}")
limited = sum(1 for x in recs if x.get("limited") == "rate" and x.get("rule_id") == "syn-limited")
print(f"allowed, with report {r['report']}; {limited} records say limited: rate")
EOF
}

# The operator's question before enforcing a report ruleset, over the flow log.
diff_against_traffic() {
  local out rc
  out=$("$BUILD/egwctl" diff --against-traffic "$EGW_DP_FLOWLOG" --json)
  rc=$?
  echo "$out"
  [ "$rc" -eq 1 ] && /usr/bin/python3 -c 'import json, sys
r = json.loads(sys.argv[1])["rules"]["would-block-http"]
print(f"would-block-http: {r}")
sys.exit(0 if r["would_block"] >= 1 and r["flows"] >= 1 else 1)' "$out"
}

main() {
  egw_require iperf3
  egw_init
  egw_topology_up
  egw_start_servers
  egw_spawn "$NS_SRV" "$EGW_WORK/iperf3-server.log" iperf3 -s -B "$SRV_V4_OK" -p 5201 -1
  egw_spawn "$NS_SRV" "$EGW_WORK/accept-server.log" /usr/bin/python3 -c "$ACCEPT_SERVER" "$SRV_V4_OK"
  limits_policy
  EGW_FLOWLOG_BY_MGMT=1
  egw_start_mgmt "$BUILD"
  egw_start_dataplane "$BUILD" ""
  egw_wait_health connected "" 15 || egw_die "egw-mgmt did not see the dataplane"
  egw_apply "$BUILD" "$EGW_WORK/limits.json" >"$EGW_WORK/apply.log" 2>&1 ||
    egw_die "egwctl apply failed: $(tail -n 2 "$EGW_WORK/apply.log")"
  egw_wait_path 10
  sleep 1.5  # the rate-limit bucket of the path check's source is full again
  egw_scrape "$EGW_WORK/metrics-0.txt" || egw_die "the first scrape failed"

  run_case "report-only rule would-block-http: HTTP to tcp/80 still passes|$NS_CLI|ok|curl -sS -o /dev/null -f --max-time 3 --local-port 41300 http://$SRV_V4_OK/"
  local out
  out=$(ip netns exec "$NS_CLI" /usr/bin/python3 -c "$CONNECT_LOOP" "$SRV_V4_OK" "$WINDOW")
  # shellcheck disable=SC2086
  check "connections faster than ${RATE}/s get the rate's share over ${WINDOW}s" check_connect_rate $out
  ip netns exec "$NS_CLI" iperf3 -c "$SRV_V4_OK" -p 5201 -t "$WINDOW" -J >"$EGW_WORK/iperf.json" 2>&1
  check "iperf3 TCP under bytes_per_s ${BYTES} lands at the rate" check_iperf
  sleep 0.3
  check "/metrics and /v1/stats after the traffic" egw_scrape "$EGW_WORK/metrics-1.txt"
  # Every refused SYN is one policy_reject drop (nothing else is rejected meanwhile); the
  # rule counts the new flows among them (a port the client reuses meets its refused
  # flow again, which refuses it without a new decision).
  check "/metrics: every refused connection is one policy_reject drop" \
    check_metric_delta 'egw_drops_total{reason="policy_reject"}' "$(echo "$out" | cut -d' ' -f2)"
  check "/metrics: egw_rate_limited_flows_total counts the refused new flows" \
    check_limited_flows "$(echo "$out" | cut -d' ' -f2)"
  check "/metrics: egw_report_hits_total counts the report rule's flow" \
    check_metric_delta 'egw_report_hits_total{rule="would-block-http"}' 1
  check "/metrics: the transfer was policed (drops counted by direction)" \
    bash -c "[ \"\$(awk '\$1 == \"egw_policed_packets_total{rule=\\\"bulk\\\",direction=\\\"toserver\\\"}\" { print \$2 }' '$EGW_WORK/metrics-1.txt')\" -gt 0 ]"
  egw_stop_dataplane
  check "SIGTERM: the dataplane exits 0" test "$EGW_DP_RC" -eq 0
  sleep 0.5
  egw_stop_mgmt
  check "flow records: the report rule's verdict beside the real one; limited flows say so" \
    flow_report
  check "egwctl diff --against-traffic: would-block-http would have blocked the allowed flow" \
    diff_against_traffic
  egw_finish
}

main
