#!/usr/bin/env bash
# End-to-end test of what egw tells about the traffic it passes: real clients (curl over
# HTTP and TLS, dig, a UDP echo, a connection the server resets, one that is never
# answered, one the default action denies) through egw-dataplane, with egw-mgmt draining
# the flow records into its state dir's flows.jsonl and serving /metrics. Checks that
# the flow log holds exactly one record per flow with the right verdict, rule, name,
# packet and byte counts both ways (against a capture on the client), RTT and time to
# first byte; that /metrics passes a strict exposition-format parser and its counters
# moved by exactly what was sent; and that with egw-mgmt stopped the dataplane keeps
# forwarding and the records wait in shared memory for the next egw-mgmt.
# Usage: bash tests/e2e/observe.sh BUILD_DIR     (root; ends with "N passed, N failed")
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")

EGW_SUITE=observe
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"
# shellcheck source=tests/e2e/names_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/names_lib.sh"

# A second client address whose SYN-ACKs the server side drops (a blackhole route):
# its connection is never answered, and times out in syn_sent.
CLI_V4_MUTE=198.18.1.3
CHECK="$EGW_ROOT/tests/e2e/observe_check.py"

# The traffic: name | namespace | expected exit | command. Client ports are pinned: the
# checker finds each flow's record and packets by them.
traffic() {
  local curl="curl -sS -o /dev/null --max-time 3"
  CASES=(
    "http-www|$NS_CLI|ok|$curl -f --local-port 41201 -H 'Host: www.egw.test' http://$SRV_V4_OK/"
    "tls-allowed|$NS_CLI|ok|$curl -k -f --local-port 41202 --resolve allowed.egw.test:443:$SRV_V4_OK https://allowed.egw.test/"
    "dns-allowed|$NS_CLI|ok|$EGW_DNSQ -b $CLI_V4#41203 @$RESOLVER_V4 allowed.egw.test A"
    "dns-refused|$NS_CLI|exit=7|$EGW_DNSQ -b $CLI_V4#41204 @$RESOLVER_V4 evil.example A"
    "tls-blocked|$NS_CLI|exit=35,56|$curl -k --local-port 41205 --resolve blocked.egw.test:443:$SRV_V4_OK https://blocked.egw.test/"
    "server-reset|$NS_CLI|exit=7|$curl --local-port 41206 -g http://[$SRV_V6_OK]:8080/"
    "udp-echo|$NS_CLI|ok|/usr/bin/python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"$CLI_V4\", 41207)); s.settimeout(2); s.sendto(b\"hello egw\", (\"$SRV_V4_OK\", 7)); s.recv(100)'"
    "syn-timeout|$NS_CLI|exit=28|curl -sS -o /dev/null --max-time 2 --interface $CLI_V4_MUTE --local-port 41208 http://$SRV_V4_OK:8080/"
    "default-deny|$NS_CLI|exit=28|curl -sS -o /dev/null --max-time 1 --local-port 41209 http://$SRV_V4_OK:9090/"
  )
}

# The demo policy with short timeouts: every flow of the test ends (and the unanswered
# connection is counted) while the test waits, each with its own end reason.
short_timeouts_policy() {
  /usr/bin/python3 - "$EGW_ROOT/rules/examples/demo.json" "$EGW_WORK/observe.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["limits"] = {"tcp_syn_s": 3, "udp_s": 2, "tcp_closing_s": 1}
json.dump(doc, open(sys.argv[2], "w"), indent=1)
EOF
}

main() {
  egw_require dnsmasq dig tcpdump
  egw_init
  egw_topology_up
  egw_start_servers
  egw_start_name_servers
  ip -n "$NS_CLI" addr add "$CLI_V4_MUTE/15" dev eth0 || egw_die "cannot add $CLI_V4_MUTE"
  ip -n "$NS_SRV" route add blackhole "$CLI_V4_MUTE/32" || egw_die "cannot add the blackhole route"
  short_timeouts_policy

  EGW_FLOWLOG_BY_MGMT=1
  egw_start_mgmt "$BUILD"
  egw_start_dataplane "$BUILD" ""
  egw_wait_health connected "" 15 || egw_die "egw-mgmt did not see the dataplane"
  egw_apply "$BUILD" "$EGW_WORK/observe.json" >"$EGW_WORK/apply.log" 2>&1 ||
    egw_die "egwctl apply failed: $(tail -n 2 "$EGW_WORK/apply.log")"
  egw_wait_path 10

  # The capture covers the scrapes: the checker counts the client's frames between them.
  CAP_FILE="$EGW_WORK/client.pcap"
  egw_spawn "$NS_CLI" "$EGW_WORK/tcpdump.log" tcpdump -i eth0 -n -s 0 -U --immediate-mode -w "$CAP_FILE"
  CAP_PID=${EGW_PIDS[-1]}
  local i
  for ((i = 0; i < 50; i++)); do
    grep -q 'listening on' "$EGW_WORK/tcpdump.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 1  # quiet: the path check's last packets are counted before the first scrape
  check "/metrics before the traffic" egw_scrape "$EGW_WORK/metrics-0.txt"
  date +%s.%N >"$EGW_WORK/t0"
  sleep 0.3

  traffic
  local c
  for c in "${CASES[@]}"; do run_case "$c"; done
  # The operator's views while the last flows are live (REST only: the capture and the
  # counters see nothing of it).
  local ctl=("$BUILD/egwctl" --server "$EGW_MGMT_URL" --token-file "$EGW_TOKEN_FILE")
  check "egwctl flows --verdict deny lists the denied flow, live" \
    bash -c '"$@" flows --json --verdict deny | grep "\"src_port\":41209"' _ "${ctl[@]}"
  check "egwctl flows --service web shows it in its table" \
    bash -c '"$@" flows --service web | grep -E "^web .*:41209 "' _ "${ctl[@]}"
  check "egwctl top: a frame with the rules that saw traffic" \
    bash -c '"$@" top --iterations 1 | grep -E "^ *tls-allowed "' _ "${ctl[@]}"
  sleep 4.5  # the unanswered flow's SYN timeout (3 s) passes, the others end too
  date +%s.%N >"$EGW_WORK/t1"
  sleep 0.3  # the control thread republishes the port counters every 100 ms
  check "/metrics after the traffic" egw_scrape "$EGW_WORK/metrics-1.txt"
  sleep 0.5
  egw_stop_pid "$CAP_PID"

  check "/metrics: a strict exposition-format parser accepts it" \
    /usr/bin/python3 "$EGW_ROOT/tests/support/prom_text.py" "$EGW_WORK/metrics-1.txt"
  check "/metrics: the counters moved by exactly what was sent" \
    /usr/bin/python3 "$CHECK" metrics "$EGW_WORK" 

  # egw-mgmt stops: the dataplane forwards on, its records wait in shared memory.
  egw_stop_mgmt
  run_case "with egw-mgmt stopped, traffic still passes|$NS_CLI|ok|curl -sS -o /dev/null --max-time 3 -f --local-port 41210 http://$SRV_V4_OK/"
  egw_start_mgmt "$BUILD"
  egw_stop_dataplane
  check "SIGTERM: the dataplane exits 0" test "$EGW_DP_RC" -eq 0
  sleep 0.5  # egw-mgmt drains what the stopped dataplane left in its rings
  egw_stop_mgmt
  check "the flow log holds exactly the expected records" \
    /usr/bin/python3 "$CHECK" flows "$EGW_WORK" "$EGW_DP_FLOWLOG"
  egw_finish
}

main
