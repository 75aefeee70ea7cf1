#!/usr/bin/env bash
# Hitless swap, end to end: egw-mgmt + egw-dataplane on net_af_packet between network
# namespaces; a paced UDP stream and a rate-limited TCP download run while 60 policy
# versions are applied through REST; then zero loss is proven from the receiver and the
# dataplane's own counters, a revoke stops the stream within a packet of activation,
# and an idle-system swap completes. Usage: bash tests/e2e/swap.sh BUILD_DIR  (root)
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")

SWAPS=${EGW_SWAPS:-60}          # policy versions applied under traffic
UDP_RATE=2000                   # packets per second; the stream runs until the swaps end
TCP_RATE=262144                 # bytes/s of the download, which also runs until the swaps end
SPORT_SWAP=40001                # UDP source port of the stream under swaps
SPORT_REVOKE=40002              # ... of the stream that gets revoked
IN_FLIGHT=2                     # packets allowed past a revoke (sent before it took effect)

EGW_SUITE=swap
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"


# The policy of this test: web -> tcp/80, icmp, udp/7 to the server; $1 = 0 drops udp/7.
write_policy() {
  local with_udp=$1 out=$2
  /usr/bin/python3 - "$with_udp" >"$out" <<'EOF'
import json, sys
rules = [
    {"id": "http", "from": ["web"], "proto": "tcp", "ports": [80],
     "to": {"cidrs": ["198.19.1.10/32"]}, "action": "allow"},
    {"id": "ping", "from": ["web"], "proto": "icmp", "to": {"cidrs": ["198.19.1.0/24"]},
     "action": "allow"},
]
if sys.argv[1] == "1":
    rules.append({"id": "udp-stream", "from": ["web"], "proto": "udp", "ports": [7],
                  "to": {"cidrs": ["198.19.1.10/32"]}, "action": "allow"})
print(json.dumps({"schema": 1, "default_action": "deny",
                  "services": {"web": {"cidrs": ["198.18.1.0/24"]}},
                  "rulesets": [{"name": "swap-test", "rules": rules}]}, indent=1))
EOF
}

# The HTTP server (a large file) and the UDP receiver on the server side.
start_servers() {
  egw_spawn "$NS_SRV" "$EGW_WORK/http.log" \
    /usr/bin/python3 "$EGW_TRAFFIC" http-stream --bind "$SRV_V4_OK" --port 80 --rate "$TCP_RATE" \
    --stop-file "$EGW_WORK/stop-swap" --out "$EGW_WORK/http-sent.jsonl"
  egw_spawn "$NS_SRV" "$EGW_WORK/udp-recv.log" \
    /usr/bin/python3 "$EGW_TRAFFIC" udp-recv --bind "$SRV_V4_OK" --port 7 --out "$EGW_WORK/recv.json"
  RECV_PID=${EGW_PIDS[-1]}
  local i
  for ((i = 0; i < 100; i++)); do
    [ -f "$EGW_WORK/recv.json.ready" ] &&
      [ "$(ip netns exec "$NS_SRV" ss -Hltn 2>/dev/null | wc -l)" -ge 1 ] && return 0
    sleep 0.1
  done
  egw_die "the servers did not start"
}

# The idle-system swap: no traffic at all, the apply still completes (active:true).
idle_swap() {
  local out
  out=$(egw_rest PUT /v1/policy "$EGW_WORK/policy-udp.json")
  /usr/bin/python3 -c 'import json, sys
r = json.loads(sys.argv[1].split("\n", 1)[1])
assert r.get("active") is True, "not active: %r" % r
print("version %s active in %s ms" % (r["version"], r["activation_ms"]))' "$out"
}

# Sender results vs receiver: every packet of the stream arrived, none twice.
SEND_RC=""
CURL_RC=""
check_no_loss() {
  [ "$SEND_RC" -eq 0 ] || { echo "the sender exited $SEND_RC"; return 1; }
  /usr/bin/python3 - "$EGW_WORK/send-swap.json" "$EGW_WORK/recv.json" "$SPORT_SWAP" \
    "$EGW_DP_FLOWLOG" <<'EOF'
import json, sys
sent = json.load(open(sys.argv[1]))["sent"]
r = json.load(open(sys.argv[2])).get(sys.argv[3], {"received": 0, "unique": 0})
recs = [json.loads(l) for l in open(sys.argv[4]) if l.strip()]
dp = [x["flow"]["pkts_toserver"] for x in recs
      if x.get("proto") == "UDP" and x.get("src_port") == int(sys.argv[3])]
where = ""
if dp and r["unique"] < sent:
    where = (f"; the dataplane received {dp[0]} and passed {r['unique']}: "
             f"{sent - dp[0]} never reached it (af_packet RX ring overrun: CPU starved?), "
             f"{dp[0] - r['unique']} lost inside")
assert r["received"] == sent and r["unique"] == sent, \
    f"sent {sent}, received {r['received']} ({r['unique']} distinct): {sent - r['unique']} lost{where}"
print(f"{sent} sent, {sent} received")
EOF
}

check_download() {
  [ "$CURL_RC" -eq 0 ] || { echo "curl exited $CURL_RC: $(tail -n 1 "$EGW_WORK/curl.log")"; return 1; }
  /usr/bin/python3 - "$EGW_WORK/http-sent.jsonl" "$EGW_WORK/download.bin" "$EGW_WORK/swaps.json" <<'EOF'
import hashlib, json, sys
sent = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(sent) == 1, f"{len(sent)} answers served, want 1"
got = open(sys.argv[2], "rb").read()
assert len(got) == sent[0]["bytes"], f"received {len(got)} bytes, the server sent {sent[0]['bytes']}"
assert hashlib.sha256(got).hexdigest() == sent[0]["sha256"], "same size, different bytes"
swaps = json.load(open(sys.argv[3]))
spanned = sum(1 for x in swaps if x["watched_alive"])
assert spanned == len(swaps), f"only {spanned} of {len(swaps)} swaps happened during the download"
print(f"{len(got)} bytes, sha256 identical; all {spanned} swaps happened during it")
EOF
}

check_swaps() {
  /usr/bin/python3 - "$EGW_WORK/swaps.json" "$SWAPS" "$EGW_WORK/send-swap.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
times = json.load(open(sys.argv[3]))["times_ns"]
during = [x for x in s if times[0] <= x["t_req_ns"] and x["t_ack_ns"] <= times[-1]]
assert len(during) >= 50, f"only {len(during)} of {len(s)} swaps happened while the stream ran"
bad = [x for x in s if not x["ok"]]
assert len(s) == int(sys.argv[2]) and not bad, f"{len(bad)} of {len(s)} not active: {bad[:1]}"
v = [x["version"] for x in s]
assert v == list(range(v[0], v[0] + len(v))), f"versions not consecutive: {v}"
ms = sorted(x["activation_ms"] for x in s)
p = lambda q: ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]
rest = sorted(x["rest_ms"] for x in s)
print(f"{len(s)} versions {v[0]}..{v[-1]} active, {len(during)} under traffic; activation_ms "
      f"p50 {p(0.5):.3f} p99 {p(0.99):.3f} max {ms[-1]:.3f}; PUT round trip p50 "
      f"{rest[len(rest) // 2]:.1f} ms")
print(f"activation p50 {p(0.5):.3f} ms p99 {p(0.99):.3f} ms over {len(s)} swaps")
EOF
}

# The revoke: no packet sent after the activation ack passed (beyond IN_FLIGHT), the
# ones before the request all passed, and the receiver saw a clean prefix.
check_revoke() {
  /usr/bin/python3 - "$EGW_WORK/send-revoke.json" "$EGW_WORK/recv.json" "$SPORT_REVOKE" \
    "$EGW_WORK/revoke.json" "$IN_FLIGHT" <<'EOF'
import json, sys
snd = json.load(open(sys.argv[1]))
recv = json.load(open(sys.argv[2])).get(sys.argv[3], {"seqs": []})
rv = json.load(open(sys.argv[4]))
bound = int(sys.argv[5])
assert rv["status"] == 200 and rv["body"].get("active") is True, f"revoke: {rv}"
times, got = snd["times_ns"], set(recv["seqs"])
before_req = [i for i, t in enumerate(times) if t < rv["t_req_ns"]]
after_ack = [i for i, t in enumerate(times) if t > rv["t_ack_ns"]]
lost_before = [i for i in before_req if i not in got]
passed_after = [i for i in after_ack if i in got]
assert after_ack, "the stream ended before the revoke was acknowledged"
assert not lost_before, f"{len(lost_before)} packets sent before the revoke were lost"
assert len(passed_after) <= bound, \
    f"{len(passed_after)} packets sent after activation still passed (bound {bound})"
last = max(got) if got else -1
holes = [i for i in range(last + 1) if i not in got]
assert not holes, f"holes in the delivered prefix: {holes[:5]}"
window = len(times) - len(before_req) - len(after_ack)
last_ms = (rv["t_ack_ns"] - times[last]) / 1e6
print(f"{len(got)} of {len(times)} passed; {len(passed_after)} sent after the ack passed "
      f"(bound {bound}); the last one passed was sent {last_ms:.1f} ms before the ack "
      f"(activation {rv['body'].get('activation_ms')} ms, PUT {(rv['t_ack_ns'] - rv['t_req_ns']) / 1e6:.1f} ms, "
      f"{window} packets sent meanwhile)")
EOF
}

# Flow records of the dataplane: the swap-phase UDP flow, pkts_toserver == sent, allowed;
# the TCP download allowed with all its bytes to the client.
check_flow_records() {
  /usr/bin/python3 - "$EGW_DP_FLOWLOG" "$EGW_WORK/send-swap.json" "$SPORT_SWAP" \
    "$(stat -c %s "$EGW_WORK/download.bin")" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sent = json.load(open(sys.argv[2]))["sent"]
udp = [r for r in recs if r.get("proto") == "UDP" and r.get("src_port") == int(sys.argv[3])]
assert len(udp) == 1, f"{len(udp)} records of the UDP stream flow"
u = udp[0]
assert u["verdict"] == "allow", f"UDP flow verdict {u['verdict']}"
assert u["flow"]["pkts_toserver"] == sent, f"pkts_toserver {u['flow']['pkts_toserver']} != sent {sent}"
tcp = [r for r in recs if r.get("proto") == "TCP" and r.get("dest_port") == 80]
assert tcp, "no record of the TCP download"
big = max(tcp, key=lambda r: r["flow"]["bytes_toclient"])
assert big["verdict"] == "allow", f"TCP verdict {big['verdict']}"
assert big["flow"]["bytes_toclient"] >= int(sys.argv[4]), f"bytes_toclient {big['flow']['bytes_toclient']}"
print(f"UDP flow: {sent} pkts_toserver, verdict allow (policy_version {u.get('policy_version')}); "
      f"TCP: {big['flow']['bytes_toclient']} bytes to the client")
EOF
}

# The final counters: no drop reason but the expected ones, no rx_missed, no tx_full;
# policy_deny is the revoked stream's packets plus at most a few of the namespaces' own
# chatter (IPv6 MLD/RS), so no packet of the allowed flows fell to the policy.
CHATTER=20
check_final_drops() {
  /usr/bin/python3 - "$(egw_dp_last_line)" "$EGW_WORK/send-revoke.json" "$EGW_WORK/recv.json" \
    "$SPORT_REVOKE" "$CHATTER" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
expected = {"policy_deny", "inbound_no_flow"}
bad = {k: v for k, v in d["drops"].items() if v and k not in expected}
missed = [p["rx_missed"] for p in d["ports"] if p.get("rx_missed")]
assert not bad and not missed, f"unexpected drops {bad}, rx_missed {missed}"
revoked = json.load(open(sys.argv[2]))["sent"] - json.load(open(sys.argv[3]))[sys.argv[4]]["unique"]
other = d["drops"]["policy_deny"] - revoked
assert 0 <= other <= int(sys.argv[5]), \
    f"policy_deny {d['drops']['policy_deny']}: {revoked} of the revoked stream, {other} others"
print(f"policy_deny {d['drops']['policy_deny']} = {revoked} revoked-stream packets + {other} "
      f"chatter; inbound_no_flow {d['drops']['inbound_no_flow']}; nothing else dropped")
EOF
}

main() {
  egw_require
  egw_init
  egw_topology_up
  start_servers
  write_policy 1 "$EGW_WORK/policy-udp.json"
  write_policy 0 "$EGW_WORK/policy-no-udp.json"
  egw_start_mgmt "$BUILD"
  egw_start_dataplane "$BUILD" ""
  egw_wait_health connected 0 15 || egw_die "egw-mgmt did not see the dataplane connect"

  # First version through egwctl, the operator's way.
  check "egwctl apply: the first version is active" egw_apply "$BUILD" "$EGW_WORK/policy-udp.json"
  egw_wait_path 10
  check "idle-system swap: apply returns active:true" idle_swap

  # Traffic: the UDP stream and the download, while SWAPS versions are applied back to
  # back; the stream stops a second after the last one.
  ip netns exec "$NS_CLI" curl -sS --max-time 250 \
    -o "$EGW_WORK/download.bin" "http://$SRV_V4_OK/stream" >"$EGW_WORK/curl.log" 2>&1 &
  local curl_pid=$!
  EGW_PIDS+=("$curl_pid")
  EGW_PID_NAMES+=("curl")
  ip netns exec "$NS_CLI" /usr/bin/python3 "$EGW_TRAFFIC" udp-send --dst "$SRV_V4_OK" --port 7 \
    --sport "$SPORT_SWAP" --rate "$UDP_RATE" --duration 250 --stop-file "$EGW_WORK/stop-swap" \
    --out "$EGW_WORK/send-swap.json" >"$EGW_WORK/send-swap.log" 2>&1 &
  local send_pid=$!
  EGW_PIDS+=("$send_pid")
  EGW_PID_NAMES+=("udp sender")
  sleep 1
  /usr/bin/python3 "$EGW_TRAFFIC" apply-loop --url "$EGW_MGMT_URL" --token-file "$EGW_TOKEN_FILE" \
    --base "$EGW_WORK/policy-udp.json" --count "$SWAPS" --interval 0.05 --watch-pid "$curl_pid" \
    --out "$EGW_WORK/swaps.json" >"$EGW_WORK/apply-loop.log" 2>&1
  sleep 1
  touch "$EGW_WORK/stop-swap"
  wait "$send_pid"
  local send_rc=$? curl_rc
  wait "$curl_pid"
  curl_rc=$?
  sleep 0.5  # the last packets reach the receiver

  check "$SWAPS policy versions applied under traffic, each active" check_swaps
  SEND_RC=$send_rc
  CURL_RC=$curl_rc
  check "TCP download across the swaps completed, right size and bytes" check_download

  # The revoke while a second stream runs. The stream goes on for a second after the
  # revoke was answered, however long the apply took: its fsync'd commit waits for the
  # disk, which took seconds once, after earlier suites left much to write back.
  ip netns exec "$NS_CLI" /usr/bin/python3 "$EGW_TRAFFIC" udp-send --dst "$SRV_V4_OK" --port 7 \
    --sport "$SPORT_REVOKE" --rate "$UDP_RATE" --duration 60 --stop-file "$EGW_WORK/stop-revoke" \
    --out "$EGW_WORK/send-revoke.json" >"$EGW_WORK/send-revoke.log" 2>&1 &
  send_pid=$!
  EGW_PIDS+=("$send_pid")
  EGW_PID_NAMES+=("udp sender (revoke)")
  sleep 1.2
  /usr/bin/python3 "$EGW_TRAFFIC" apply-one --url "$EGW_MGMT_URL" --token-file "$EGW_TOKEN_FILE" \
    --doc "$EGW_WORK/policy-no-udp.json" --out "$EGW_WORK/revoke.json" >>"$EGW_WORK/apply-loop.log" 2>&1
  sleep 1
  touch "$EGW_WORK/stop-revoke"
  wait "$send_pid"
  sleep 0.5
  kill -TERM "$RECV_PID"
  egw_wait_gone "$RECV_PID" 5
  check "revoked UDP destination stops passing within $IN_FLIGHT packets of activation" check_revoke

  egw_stop_dataplane
  check "UDP stream under swaps: every packet sent was received" check_no_loss
  check "the dataplane's flow records: UDP pkts_toserver == sent, TCP allowed whole" \
    check_flow_records
  check "final counters: only the revoked stream (and chatter) dropped, no rx_missed" check_final_drops

  egw_finish
}

main
