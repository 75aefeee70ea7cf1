#!/usr/bin/env bash
# End-to-end test: real clients (curl, ping, a UDP client) in network namespaces,
# through egw-dataplane on net_af_packet, under rules/examples/demo.json.
# Usage: bash tests/e2e/run.sh BUILD_DIR     (root; ends with "N passed, N failed")
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")

EGW_SUITE=e2e
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"

# Traffic cases: description | namespace | expected | command.
# expected: "ok" (exit 0), "exit=N" (exactly N), optionally " within=S" seconds.
# curl exit 7 = connection refused (the RST egw sends on reject); exit 28 = timeout
# (silently denied); ping exit 1 = no reply.
CURL="curl -sS -o /dev/null --max-time 3"
UDP_CLIENT='import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(b"egw-e2e", (sys.argv[1], int(sys.argv[2]))); sys.exit(0 if s.recvfrom(100)[0] == b"egw-e2e" else 3)'
udp() { printf "/usr/bin/python3 -c '%s' %s %s" "$UDP_CLIENT" "$1" "$2"; }

traffic_cases() {
  CASES=(
    "HTTP tcp/80 to an allowed server returns its page|$NS_CLI|ok|curl -sSf --max-time 3 http://$SRV_V4_OK/ | grep -q 'egw-e2e hello'"
    "HTTP tcp/8080 to an allowed server|$NS_CLI|ok|$CURL -f http://$SRV_V4_OK:8080/"
    "2 MiB download over an allowed flow arrives intact|$NS_CLI|ok|curl -sSf --max-time 10 http://$SRV_V4_OK/big.bin | cmp - $EGW_WORK/www/big.bin"
    "tcp/9090 (no rule) is dropped silently: curl times out|$NS_CLI|exit=28|$CURL http://$SRV_V4_OK:9090/"
    "tcp to 198.19.2.0/24 is rejected: RST, refused at once|$NS_CLI|exit=7 within=2|$CURL http://$SRV_V4_REJ/"
    "IPv6 HTTP tcp/80 to an allowed server|$NS_CLI|ok|$CURL -f -g -6 http://[$SRV_V6_OK]/"
    "IPv6 tcp to 2001:2:0:200::/64 is rejected: RST|$NS_CLI|exit=7 within=2|$CURL -g -6 http://[$SRV_V6_REJ]/"
    "IPv6 tcp/9090 (no rule) is dropped silently|$NS_CLI|exit=28|$CURL -g -6 http://[$SRV_V6_OK]:9090/"
    "ping to an allowed server|$NS_CLI|ok|ping -c 2 -i 0.2 -W 1 -q $SRV_V4_OK"
    "ping to 198.19.2.10 (no icmp rule) gets no reply|$NS_CLI|exit=1|ping -c 1 -W 1 -q $SRV_V4_REJ"
    "IPv6 ping to an allowed server|$NS_CLI|ok|ping -6 -c 2 -i 0.2 -W 1 -q $SRV_V6_OK"
    "IPv6 ping to 2001:2:0:200::10 gets no reply|$NS_CLI|exit=1|ping -6 -c 1 -W 1 -q $SRV_V6_REJ"
    "UDP echo on udp/7 answers|$NS_CLI|ok|$(udp "$SRV_V4_OK" 7)"
    "UDP echo on udp/9 (no rule) never answers|$NS_CLI|exit=1|$(udp "$SRV_V4_OK" 9)"
    "unsolicited inbound HTTP to the client is dropped|$NS_SRV|exit=28|$CURL http://$CLI_V4:8000/"
    "unsolicited inbound ping to the client gets no reply|$NS_SRV|exit=1|ping -c 1 -W 1 -q $CLI_V4"
    "allowed HTTP still works after the denied traffic|$NS_CLI|ok|$CURL -f http://$SRV_V4_OK/"
  )
}

# The final counters line: the contract's keys, traffic on both ports.
check_counters_json() {
  /usr/bin/python3 - "$1" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
ports = d["ports"]
assert isinstance(ports, list) and len(ports) >= 2, "ports: expected 2 entries"
for p in ports:
    for k in ("port", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes"):
        assert isinstance(p.get(k), int), f"ports[].{k} missing or not an integer"
    assert p["rx_packets"] > 0 and p["tx_packets"] > 0, f"port {p['port']}: no traffic counted"
assert isinstance(d["drops"], dict), "drops is not an object"
assert isinstance(d["flows_created"], int) and d["flows_created"] > 0, "flows_created is 0"
EOF
}

# Drop reasons the cases must have caused.
check_drop_counts() {
  /usr/bin/python3 - "$1" <<'EOF'
import json, sys
drops = json.loads(sys.argv[1])["drops"]
zero = [r for r in ("policy_deny", "policy_reject", "inbound_no_flow") if not drops.get(r)]
assert not zero, "zero drop count for: " + ", ".join(zero)
EOF
}

# The flow log: every verdict recorded with its rule; src_* is the inside endpoint, so
# no record may have a server address as its source (nothing inbound creates a flow).
check_flow_log() {
  /usr/bin/python3 - "$1" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
need = [
    dict(dest_ip="198.19.1.10", dest_port=80, proto="TCP", verdict="allow", rule_id="http-allowed"),
    dict(dest_ip="198.19.1.10", dest_port=9090, proto="TCP", verdict="deny", rule_id=None),
    dict(dest_ip="198.19.2.10", dest_port=80, proto="TCP", verdict="reject", rule_id="block-other-server"),
    dict(dest_ip="2001:2:0:100::10", dest_port=80, proto="TCP", verdict="allow"),
    dict(dest_ip="2001:2:0:200::10", dest_port=80, proto="TCP", verdict="reject"),
    dict(dest_ip="198.19.1.10", dest_port=7, proto="UDP", verdict="allow", rule_id="udp-echo"),
]
missing = [n for n in need if not any(all(r.get(k) == v for k, v in n.items()) for r in recs)]
assert not missing, f"{len(recs)} records, none like: {missing[0]}"
server = ("198.19.1.10", "198.19.2.10", "2001:2:0:100::10", "2001:2:0:200::10")
inbound = [r for r in recs if r.get("src_ip") in server]
assert not inbound, f"a flow created from outside: {inbound[0]}"
EOF
}

main() {
  egw_require
  egw_init
  egw_topology_up
  egw_start_servers
  egw_compile_policy "$BUILD" "$EGW_ROOT/rules/examples/demo.json"
  egw_start_dataplane "$BUILD" "$EGW_POLICY"
  egw_wait_path 10

  traffic_cases
  local c
  for c in "${CASES[@]}"; do run_case "$c"; done

  egw_stop_dataplane
  local last
  last=$(egw_dp_last_line)
  check "SIGTERM: the dataplane exits 0" test "$EGW_DP_RC" -eq 0
  check "final counters: one JSON object on the last stdout line" check_counters_json "$last"
  check "drop counts: policy_deny, policy_reject, inbound_no_flow > 0" check_drop_counts "$last"
  check "flow log: a record per verdict, none created from outside" check_flow_log "$EGW_DP_FLOWLOG"

  egw_finish
}

main
