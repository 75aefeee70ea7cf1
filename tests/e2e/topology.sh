#!/usr/bin/env bash
# `make run` / `make demo`: egw-dataplane between a client and a server namespace and
# egw-mgmt beside it; rules/examples/demo.json is loaded through REST (egwctl apply).
# run: stays up until Ctrl-C; demo: sends allowed and denied traffic with real clients,
# revokes a port live and rolls it back, prints what happened, exits 0 if the policy held.
# Usage: bash tests/e2e/topology.sh run|demo BUILD_DIR   (root)
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/names_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/names_lib.sh"

MODE=${1:-}
BUILD=$(egw_build_dir "${2:-build}")
case "$MODE" in
  run | demo) ;;
  *) echo "usage: $0 run|demo BUILD_DIR" >&2; exit 2 ;;
esac

# Builds the topology, starts the servers (HTTP, UDP echo, TLS, the resolver), egw-mgmt
# and the dataplane (fail-closed, no policy file), then loads rules/examples/demo.json through egw-mgmt's REST API
# with `egwctl apply`, as an operator would.
bring_up() {
  egw_require openssl dnsmasq dig
  egw_init
  echo "egw: creating namespaces $NS_CLI, $NS_GW, $NS_SRV"
  egw_topology_up
  egw_start_servers
  egw_start_name_servers
  echo "egw: TLS on $SRV_V4_OK and [$SRV_V6_OK] port 443 (any SNI), resolver $RESOLVER_V4 and [$RESOLVER_V6]"
  egw_start_mgmt "$BUILD"
  echo "egw: egw-mgmt listening on $EGW_MGMT_URL (state dir $EGW_STATE)"
  echo "egw: starting egw-dataplane in $NS_GW (instance $EGW_INSTANCE, no policy yet: fail-closed)"
  egw_start_dataplane "$BUILD" ""
  egw_wait_health connected "" 15 || egw_die "egw-mgmt did not see the dataplane connect"
  echo "egw: egwctl apply rules/examples/demo.json"
  egwctl_show apply "$EGW_ROOT/rules/examples/demo.json" || egw_die "egwctl apply failed"
  egw_wait_path 10
}

# Runs egwctl against this run's egw-mgmt, output indented; returns egwctl's status.
egwctl_show() {
  local out rc
  out=$("$BUILD/egwctl" --server "$EGW_MGMT_URL" --token-file "$EGW_TOKEN_FILE" "$@" 2>&1)
  rc=$?
  echo "$out" | sed 's/^/    /'
  return $rc
}

# Stops egw-mgmt, then the dataplane (its final counters shown).
show_final_counters() {
  egw_stop_mgmt TERM
  show_dataplane_counters
}

# Stops the dataplane and shows its final counters (drops by reason).
show_dataplane_counters() {
  egw_stop_dataplane
  local last
  last=$(egw_dp_last_line)
  echo "egw: egw-dataplane exited with status $EGW_DP_RC; final counters:"
  /usr/bin/python3 - "$last" 2>/dev/null <<'EOF' || echo "  (not JSON) $last"
import json, sys
d = json.loads(sys.argv[1])
for p in d["ports"]:
    print(f"  port {p['port']}: rx {p['rx_packets']} pkts / {p['rx_bytes']} B, "
          f"tx {p['tx_packets']} pkts / {p['tx_bytes']} B")
drops = {k: v for k, v in d["drops"].items() if v}
print("  drops: " + (", ".join(f"{k}={v}" for k, v in sorted(drops.items())) or "none"))
print(f"  flows created: {d['flows_created']}")
EOF
}

mode_run() {
  bring_up
  local c="ip netns exec $NS_CLI" s="ip netns exec $NS_SRV"
  cat <<EOF

egw is up: $NS_CLI ($CLI_V4, $CLI_V6) --[in0 | egw-dataplane | out0]-- $NS_SRV
($SRV_V4_OK, $SRV_V4_REJ, $SRV_V6_OK, $SRV_V6_REJ; resolver $RESOLVER_V4, $RESOLVER_V6).
Policy: rules/examples/demo.json, loaded through egw-mgmt's REST API as version 1.
Send traffic from another terminal:

EOF
  printf '  %-72s # %s\n' \
    "$c curl http://$SRV_V4_OK/" "allowed (rule http-allowed)" \
    "$c curl http://$SRV_V4_OK:8080/" "allowed (rule http-allowed)" \
    "$c curl -g -6 'http://[$SRV_V6_OK]/'" "allowed (IPv6)" \
    "$c ping -c 3 $SRV_V4_OK" "allowed (rule ping-allowed)" \
    "$c curl --max-time 3 http://$SRV_V4_OK:9090/" "denied: dropped silently, times out" \
    "$c curl http://$SRV_V4_REJ/" "rejected: RST, 'Connection refused'" \
    "$c curl -g -6 'http://[$SRV_V6_REJ]/'" "rejected (IPv6)" \
    "$s curl --max-time 3 http://$CLI_V4:8000/" "unsolicited inbound: dropped"
  echo
  echo "Name rules (ruleset demo-names): TLS SNI, HTTP Host, DNS query names:"
  echo
  printf '  %-104s # %s\n' \
    "$c curl -k --resolve allowed.egw.test:443:$SRV_V4_OK https://allowed.egw.test/" "allowed (tls-allowed)" \
    "$c curl -k --resolve x.ok.egw.test:443:$SRV_V4_OK https://x.ok.egw.test/" "allowed (*.ok.egw.test)" \
    "$c curl -k --resolve blocked.egw.test:443:$SRV_V4_OK https://blocked.egw.test/" "rejected: RST (tls-blocked)" \
    "$c curl -k --max-time 3 --resolve other.example:443:$SRV_V4_OK https://other.example/" "denied: no rule, times out" \
    "$c curl -H 'Host: www.egw.test' http://$SRV_V4_OK/" "allowed (http-www)" \
    "$c curl -H 'Host: other.egw.test' http://$SRV_V4_OK/" "rejected: RST (http-other-names)" \
    "$c dig @$RESOLVER_V4 allowed.egw.test" "answered by the resolver (dns-egw-test)" \
    "$c dig @$RESOLVER_V4 evil.example" "REFUSED by egw itself (dns-refused)"
  cat <<EOF

Manage the policy live through egw-mgmt ($EGW_MGMT_URL, admin token $EGW_TOKEN_FILE):

  E="$BUILD/egwctl --server $EGW_MGMT_URL --token-file $EGW_TOKEN_FILE"
  \$E get; \$E history; \$E stats        # the active policy, its versions, counters
  \$E diff my.json; \$E apply my.json    # change it live, no restart
  \$E rollback 1                          # back to the first version
  curl -H "Authorization: Bearer \$(cat $EGW_TOKEN_FILE)" $EGW_MGMT_URL/v1/policy/history

Flow records (a JSON line when a flow ends): tail -f $EGW_DP_FLOWLOG
Dataplane output: $EGW_DP_OUT
Press Ctrl-C to stop; everything created here is removed.
EOF
  trap 'echo; show_final_counters; exit 0' INT TERM
  wait "$EGW_DP_PID"
  EGW_DP_RC=$?
  EGW_DP_PID=""
  EGW_KEEP_WORK=1
  echo "egw: egw-dataplane exited on its own (status $EGW_DP_RC)"
  tail -n 20 "$EGW_DP_OUT" "$EGW_DP_ERR"
  exit 1
}

# Demo steps: expected outcome | what | namespace | command.
# Outcome seen: exit 0 = ALLOWED; curl exit 7 (RST on the SYN), 35 (RST during the TLS
# handshake), 52/56 (RST after the request; dnsq's RST too) and dnsq's 7 (a REFUSED
# answer) = REJECTED; anything else (timeouts) = DENIED.
CURL="curl -sS -o /dev/null --max-time 3"
demo_steps() {
  STEPS=(
    "ALLOWED|client -> $SRV_V4_OK tcp/80 (curl)|$NS_CLI|$CURL http://$SRV_V4_OK/"
    "ALLOWED|client -> $SRV_V4_OK tcp/8080 (curl)|$NS_CLI|$CURL http://$SRV_V4_OK:8080/"
    "ALLOWED|client -> [$SRV_V6_OK] tcp/80 (curl -6)|$NS_CLI|$CURL -g -6 http://[$SRV_V6_OK]/"
    "ALLOWED|client -> $SRV_V4_OK icmp echo (ping)|$NS_CLI|ping -c 1 -W 1 -q $SRV_V4_OK"
    "ALLOWED|client -> $SRV_V6_OK icmpv6 echo (ping -6)|$NS_CLI|ping -6 -c 1 -W 1 -q $SRV_V6_OK"
    "DENIED|client -> $SRV_V4_OK tcp/9090 (curl)|$NS_CLI|$CURL http://$SRV_V4_OK:9090/"
    "DENIED|client -> $SRV_V4_REJ icmp echo (ping)|$NS_CLI|ping -c 1 -W 1 -q $SRV_V4_REJ"
    "REJECTED|client -> $SRV_V4_REJ tcp/80 (curl)|$NS_CLI|$CURL http://$SRV_V4_REJ/"
    "REJECTED|client -> [$SRV_V6_REJ] tcp/80 (curl -6)|$NS_CLI|$CURL -g -6 http://[$SRV_V6_REJ]/"
    "DENIED|server -> client $CLI_V4 tcp/8000, unsolicited inbound (curl)|$NS_SRV|$CURL http://$CLI_V4:8000/"
  )
}

# The name rules: TLS by SNI (curl resolves the name to the server itself), HTTP by Host,
# DNS by query name through the resolver.
name_steps() {
  local tls="$CURL -k" v6="[$SRV_V6_OK]"
  STEPS=(
    "ALLOWED|https://allowed.egw.test, SNI allowed.egw.test (curl)|$NS_CLI|$tls --resolve allowed.egw.test:443:$SRV_V4_OK https://allowed.egw.test/"
    "ALLOWED|https://allowed.egw.test over IPv6 (curl -6)|$NS_CLI|$tls --resolve allowed.egw.test:443:$v6 https://allowed.egw.test/"
    "ALLOWED|https://a.b.ok.egw.test, *.ok.egw.test at any depth (curl)|$NS_CLI|$tls --resolve a.b.ok.egw.test:443:$SRV_V4_OK https://a.b.ok.egw.test/"
    "ALLOWED|https://api7.egw.test, regex ^api[0-9]+\\.egw\\.test\$ (curl)|$NS_CLI|$tls --resolve api7.egw.test:443:$SRV_V4_OK https://api7.egw.test/"
    "REJECTED|https://ok.egw.test, the apex is not *.ok.egw.test (curl)|$NS_CLI|$tls --resolve ok.egw.test:443:$SRV_V4_OK https://ok.egw.test/"
    "REJECTED|https://blocked.egw.test (curl)|$NS_CLI|$tls --resolve blocked.egw.test:443:$SRV_V4_OK https://blocked.egw.test/"
    "REJECTED|https://blocked.egw.test over IPv6 (curl -6)|$NS_CLI|$tls --resolve blocked.egw.test:443:$v6 https://blocked.egw.test/"
    "DENIED|https://other.example, no rule (curl)|$NS_CLI|$tls --resolve other.example:443:$SRV_V4_OK https://other.example/"
    "ALLOWED|http://$SRV_V4_OK/ with Host www.egw.test (curl)|$NS_CLI|$CURL -H 'Host: www.egw.test' http://$SRV_V4_OK/"
    "REJECTED|http://$SRV_V4_OK/ with Host other.egw.test (curl)|$NS_CLI|$CURL -H 'Host: other.egw.test' http://$SRV_V4_OK/"
    "ALLOWED|DNS allowed.egw.test @$RESOLVER_V4 over UDP (dig)|$NS_CLI|$EGW_DNSQ @$RESOLVER_V4 allowed.egw.test"
    "ALLOWED|DNS AAAA api7.egw.test @$RESOLVER_V6 over TCP (dig +tcp)|$NS_CLI|$EGW_DNSQ +tcp @$RESOLVER_V6 api7.egw.test AAAA"
    "REJECTED|DNS evil.example @$RESOLVER_V4 over UDP: REFUSED (dig)|$NS_CLI|$EGW_DNSQ @$RESOLVER_V4 evil.example"
    "REJECTED|DNS evil.example @$RESOLVER_V6 over UDP: REFUSED (dig)|$NS_CLI|$EGW_DNSQ @$RESOLVER_V6 evil.example"
    "REJECTED|DNS evil.example @$RESOLVER_V4 over TCP: RST (dig +tcp)|$NS_CLI|$EGW_DNSQ +tcp @$RESOLVER_V4 evil.example"
  )
}

# One line for a check that is not traffic: held_if WHAT COMMAND...
held_if() {
  local what=$1
  shift
  if "$@"; then
    held=$((held + 1))
    printf '  %-8s as expected      %s\n' held "$what"
  else
    broken=$((broken + 1))
    printf '  %-8s NOT AS EXPECTED  %s\n' broken "$what"
  fi
}

# The REFUSED answers came from egw: the resolver never saw evil.example.
resolver_never_saw_evil() {
  grep -q 'query\[' "$EGW_DNS_LOG" && ! grep -q 'evil\.example' "$EGW_DNS_LOG"
}

# Runs STEPS; counts outcomes as expected (held) or not (broken).
held=0
broken=0
run_steps() {
  local step want what ns cmd seen
  for step in "${STEPS[@]}"; do
    IFS='|' read -r want what ns cmd <<<"$step"
    egw_exec_case "$ns" "$cmd"
    case "$CASE_RC" in
      0) seen=ALLOWED ;;
      7 | 35 | 52 | 56) seen=REJECTED ;;
      *) seen=DENIED ;;
    esac
    if [ "$seen" = "$want" ]; then
      held=$((held + 1))
      printf '  %-8s as expected      %s (%ss)\n' "$seen" "$what" "$CASE_SECS"
    else
      broken=$((broken + 1))
      printf '  %-8s NOT AS EXPECTED  %s (expected %s, exit %s)\n' "$seen" "$what" "$want" "$CASE_RC"
    fi
  done
}

# The steps around the live change: tcp/8080 as $1 expects, tcp/80 always allowed.
port_8080_steps() {
  STEPS=(
    "$1|client -> $SRV_V4_OK tcp/8080 (curl)|$NS_CLI|$CURL http://$SRV_V4_OK:8080/"
    "ALLOWED|client -> $SRV_V4_OK tcp/80 (curl)|$NS_CLI|$CURL http://$SRV_V4_OK/"
  )
}

# demo.json without tcp/8080 in rule http-allowed, on stdout.
demo_without_8080() {
  /usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for rs in d["rulesets"]:
    for r in rs["rules"]:
        if r["id"] == "http-allowed":
            r["ports"] = [p for p in r["ports"] if p != 8080]
print(json.dumps(d, indent=2))' "$EGW_ROOT/rules/examples/demo.json"
}

mode_demo() {
  bring_up
  echo
  echo "egw demo: policy rules/examples/demo.json (version 1); each line: outcome, expected or not"
  demo_steps
  run_steps
  echo
  echo "egw demo: name rules (ruleset demo-names): TLS SNI, HTTP Host, DNS query names"
  name_steps
  run_steps
  held_if "the resolver never saw evil.example: the REFUSED answers came from egw" \
    resolver_never_saw_evil

  # A live change: revoke tcp/8080, then roll back; real clients show each version.
  local revoked="$EGW_WORK/demo-no-8080.json"
  demo_without_8080 >"$revoked"
  echo
  echo "egw demo: revoke tcp/8080 live: egwctl diff shows the change, egwctl apply makes it version 2"
  egwctl_show diff "$revoked"
  egwctl_show apply "$revoked" || broken=$((broken + 1))
  port_8080_steps DENIED
  run_steps
  echo
  echo "egw demo: egwctl rollback 1 restores tcp/8080 (version 3 = version 1)"
  egwctl_show rollback 1 || broken=$((broken + 1))
  port_8080_steps ALLOWED
  run_steps
  echo
  echo "egw demo: egwctl history"
  egwctl_show history
  echo
  show_final_counters
  if [ -s "$EGW_DP_FLOWLOG" ]; then
    echo "egw: flow records ($EGW_DP_FLOWLOG):"
    /usr/bin/python3 - "$EGW_DP_FLOWLOG" <<'EOF'
import json, sys
def ep(ip, port):
    return f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    r = json.loads(line)
    f = r.get("flow", {})
    app = r.get("app_proto") or ""
    name = next((r[a][k] for a, k in (("tls", "sni"), ("http", "hostname"), ("dns", "rrname"))
                 if isinstance(r.get(a), dict) and k in r[a]), None)
    what = f" {app} {name}" if name else ""
    print(f"  {r.get('proto'):9} {ep(r.get('src_ip'), r.get('src_port'))} -> "
          f"{ep(r.get('dest_ip'), r.get('dest_port'))}{what} {r.get('verdict')} "
          f"(rule {r.get('rule_id') or 'default'}), "
          f"packets out/in {f.get('pkts_toserver')}/{f.get('pkts_toclient')}")
EOF
  fi
  echo
  if [ "$broken" -eq 0 ]; then
    echo "egw demo: the policy held ($held of $held outcomes as expected)"
    return 0
  fi
  EGW_KEEP_WORK=1
  echo "egw demo: the policy did NOT hold ($broken of $((held + broken)) outcomes unexpected)"
  return 1
}

if [ "$MODE" = run ]; then mode_run; else mode_demo; fi
