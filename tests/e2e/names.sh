#!/usr/bin/env bash
# End-to-end test of name rules: the demo-names ruleset of rules/examples/demo.json with
# real TLS (curl, openssl s_client), HTTP (curl) and DNS (dig) clients through
# egw-dataplane, against a TLS server answering any SNI, the HTTP server and dnsmasq;
# and of its inspect rule no-aws-keys (an AWS key id in an HTTP request resets the flow).
# Checks the outcomes, that egw (not the resolver) answered REFUSED, that its RSTs reach
# the servers, the flow records' names, and replays the client's capture through
# egw-replay to compare its names with tshark's.
# Usage: bash tests/e2e/names.sh BUILD_DIR     (root; ends with "N passed, N failed")
set -uo pipefail

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(egw_build_dir "${1:-build}")

EGW_SUITE=names
# shellcheck source=tests/e2e/cases.sh
source "$(dirname "${BASH_SOURCE[0]}")/cases.sh"
# shellcheck source=tests/e2e/names_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/names_lib.sh"

# Client ports pinned for the cases whose server-side RST is checked in the servers' logs.
PORT_TLS_REJ_V4=41443
PORT_TLS_REJ_V6=41444
PORT_HTTP_REJ=41080
PORT_KEY_V4=41081
PORT_KEY_V6=41082

# An HTTP/1.1 server (keep-alive; python's http.server answers in HTTP/1.0 and closes) on
# another allowed address, logging by client port: a request after the first one on a
# connection is scanned as part of the stream, not of the first flight held for the name.
SRV_V4_KEEP=198.19.1.11
HTTP11_SERVER='
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, fmt, *args):
        print(f"{self.client_address[1]} " + fmt % args, flush=True)
class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, peer):
        print(f"{peer[1]} {sys.exc_info()[0].__name__}", flush=True)
Server((sys.argv[1], 80), functools.partial(Handler, directory=sys.argv[2])).serve_forever()
'
start_http11_server() {
  ip -n "$NS_SRV" addr add "$SRV_V4_KEEP/15" dev eth0 || egw_die "cannot add $SRV_V4_KEEP"
  egw_spawn "$NS_SRV" "$EGW_WORK/http11.log" \
    /usr/bin/python3 -u -c "$HTTP11_SERVER" "$SRV_V4_KEEP" "$EGW_WORK/www"
  local i
  for ((i = 0; i < 50; i++)); do
    ip netns exec "$NS_SRV" ss -Hltn "src $SRV_V4_KEEP" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  egw_die "the HTTP/1.1 server did not start: see $EGW_WORK/http11.log"
}

# The client port of the keep-alive connection: the one whose GET / was answered (curl's
# retry of the second request, on a new connection, is reset in its first flight). Its
# port is not pinned: the retry would reuse it, and the rejected flow would refuse it.
keepalive_port() {
  awk '/"GET \/ HTTP\/1.1" 200/ { print $1; exit }' "$EGW_WORK/http11.log"
}

# An AWS access key id (AWS's documented example), which the inspect rule no-aws-keys
# (AKIA[0-9A-Z]{16}) matches, and a value that looks alike but does not match.
AWS_KEY=AKIAIOSFODNN7EXAMPLE
NOT_KEY=AKIAiosfodnn7example

# curl https://NAME/ with NAME resolved to ADDR (no DNS involved): tls NAME ADDR [OPTS].
CURL="curl -sS -o /dev/null --max-time 3"
tls() {
  local name=$1 addr=$2
  shift 2
  [[ $addr == *:* ]] && addr="[$addr]"
  echo "$CURL -k $* --resolve $name:443:$addr https://$name/"
}

# openssl s_client to the allowed server: sclient NAME OPTS...; exit 0 only once the
# handshake completed. A ClientHello over several TLS records: -max_send_frag 512 (the
# minimum) with an ffdhe3072 key share (384 bytes) makes a ~650-byte hello in 2 records.
# A big one: the installed OpenSSL 3.0 has no X25519MLKEM768, so an ffdhe8192 key share
# (1 KB) and an ALPN list make a ~1.7 KB hello in one record, 2 TCP segments.
sclient() {
  local name=$1
  shift
  echo "timeout 4 openssl s_client -connect $SRV_V4_OK:443 -servername $name -brief $* </dev/null 2>&1 |" \
       "grep '^CONNECTION ESTABLISHED' >/dev/null"
}
SPLIT="-max_send_frag 512 -groups ffdhe3072"
BIG_ALPN=$(for i in 1 2 3 4 5 6 7 8; do printf 'egw-padding-%02d-%040d,' "$i" 0; done)
BIG="-groups ffdhe8192 -alpn ${BIG_ALPN}http/1.1"

# Traffic cases: description | namespace | expected | command.
# expected: "ok" (exit 0), "exit=N[,M...]" (one of these), optionally " within=S" seconds.
# curl: 35 = TLS handshake failed (the reset), 56/52 = reset or nothing after the request,
# 28 = timeout (dropped silently); s_client: 1 = handshake failed; dnsq: 7 = REFUSED,
# 56 = reset. A rejected query gets REFUSED over UDP; over TCP, like any TCP flow, RSTs.
names_cases() {
  CASES=()
  local v addr host res p_rej
  for v in 4 6; do
    if [ $v = 4 ]; then addr=$SRV_V4_OK host=$SRV_V4_OK res=$RESOLVER_V4 p_rej=$PORT_TLS_REJ_V4
    else addr=$SRV_V6_OK host="[$SRV_V6_OK]" res=$RESOLVER_V6 p_rej=$PORT_TLS_REJ_V6; fi
    CASES+=(
      "IPv$v TLS SNI allowed.egw.test (exact name) is allowed|$NS_CLI|ok|$(tls allowed.egw.test "$addr" -f)"
      "IPv$v TLS SNI a.b.ok.egw.test (*.ok.egw.test, two labels deep) is allowed|$NS_CLI|ok|$(tls a.b.ok.egw.test "$addr" -f)"
      "IPv$v TLS SNI api7.egw.test (domain_regex) is allowed|$NS_CLI|ok|$(tls api7.egw.test "$addr" -f)"
      "IPv$v TLS SNI ok.egw.test (the apex of *.ok.egw.test) is rejected|$NS_CLI|exit=35,56 within=2|$(tls ok.egw.test "$addr")"
      "IPv$v TLS SNI blocked.egw.test is rejected: reset at once|$NS_CLI|exit=35,56 within=2|$(tls blocked.egw.test "$addr" --local-port "$p_rej")"
      "IPv$v TLS SNI other.example (no rule) is dropped: curl times out|$NS_CLI|exit=28|$(tls other.example "$addr")"
      "IPv$v HTTP Host www.egw.test is allowed (200)|$NS_CLI|ok|$CURL -f -g -H 'Host: www.egw.test' http://$host/"
      "IPv$v HTTP Host other.egw.test is rejected: reset|$NS_CLI|exit=52,56 within=2|$CURL -g -H 'Host: other.egw.test' http://$host/"
      "IPv$v HTTP POST to www.egw.test with an AWS key id in the body: reset at once (no-aws-keys)|$NS_CLI|exit=52,56 within=2|$CURL -g --local-port $((v == 4 ? PORT_KEY_V4 : PORT_KEY_V6)) -H 'Host: www.egw.test' --data 'key=$AWS_KEY' http://$host/"
      "IPv$v HTTP GET to www.egw.test with an AWS key id in the query: reset at once|$NS_CLI|exit=52,56 within=2|$CURL -g -G -H 'Host: www.egw.test' --data 'key=$AWS_KEY' http://$host/"
      "IPv$v HTTP GET to www.egw.test without the key: 200|$NS_CLI|ok|$CURL -f -g -G -H 'Host: www.egw.test' --data 'key=$NOT_KEY' http://$host/"
      "IPv$v DNS/UDP allowed.egw.test is answered by the resolver|$NS_CLI|ok|$EGW_DNSQ @$res allowed.egw.test A | grep '$SRV_V4_OK' >/dev/null"
      "IPv$v DNS/TCP AAAA api7.egw.test is answered|$NS_CLI|ok|$EGW_DNSQ +tcp @$res api7.egw.test AAAA | grep '$SRV_V6_OK' >/dev/null"
      "IPv$v DNS/UDP evil.example gets REFUSED at once|$NS_CLI|exit=7 within=1|$EGW_DNSQ @$res evil.example A"
      "IPv$v DNS/TCP evil.example is rejected: reset at once|$NS_CLI|exit=56 within=1|$EGW_DNSQ +tcp @$res evil.example A"
    )
  done
  CASES+=(
    "TLS SNI Api7.EGW.test (upper case) is normalised and allowed|$NS_CLI|ok|$(sclient Api7.EGW.test)"
    "TLS ClientHello over 2 TLS records (split.ok.egw.test) is allowed|$NS_CLI|ok|$(sclient split.ok.egw.test "$SPLIT")"
    "TLS ClientHello of ~1.7 KB over 2 TCP segments (big.ok.egw.test) is allowed|$NS_CLI|ok|$(sclient big.ok.egw.test "$BIG")"
    "TLS ClientHello over 2 TLS records for blocked.egw.test is rejected|$NS_CLI|exit=1 within=2|$(sclient blocked.egw.test "$SPLIT")"
    "TLS ClientHello of ~1.7 KB for blocked.egw.test is rejected|$NS_CLI|exit=1 within=2|$(sclient blocked.egw.test "$BIG")"
    "HTTP Host WWW.EGW.TEST:80 (case, port) is allowed|$NS_CLI|ok|$CURL -f -H 'Host: WWW.EGW.TEST:80' http://$SRV_V4_OK/"
    "HTTP/1.1 keep-alive: a GET (200), then one with an AWS key id on the same connection: reset|$NS_CLI|exit=52,56 within=2|$CURL -H 'Host: www.egw.test' -o /dev/null http://$SRV_V4_KEEP/ http://$SRV_V4_KEEP/?key=$AWS_KEY"
    "HTTP Host 198.19.1.10 (an IP literal, no name) falls through to http-allowed|$NS_CLI|ok|$CURL -f http://$SRV_V4_OK/"
    "HTTP absolute target http://evil.example/ wins over Host www.egw.test: rejected|$NS_CLI|exit=52,56 within=2|$CURL --local-port $PORT_HTTP_REJ --request-target http://evil.example/ -H 'Host: www.egw.test' http://$SRV_V4_OK/"
    "TLS to tcp/443 of 198.19.2.10 is still rejected by block-other-server|$NS_CLI|exit=7 within=2|$CURL -k --resolve allowed.egw.test:443:$SRV_V4_REJ https://allowed.egw.test/"
  )
}

# The resolver's log: the allowed queries reached it, evil.example never did.
check_resolver_log() {
  grep -q 'query\[A\] allowed\.egw\.test' "$EGW_DNS_LOG" ||
    { echo "no allowed.egw.test query in $EGW_DNS_LOG"; return 1; }
  if grep -q 'evil\.example' "$EGW_DNS_LOG"; then
    echo "dnsmasq saw: $(grep -m1 'evil\.example' "$EGW_DNS_LOG")"
    return 1
  fi
  echo "$(grep -c 'query\[' "$EGW_DNS_LOG") queries logged, none for evil.example"
}

# The server saw a connection reset from the pinned client port: server_reset LOG PORT.
# The TLS server logs "PORT ConnectionResetError"; http.server a traceback under
# "Exception occurred during processing of request from ('ADDR', PORT...)".
server_reset() {
  local rsts
  # What the server's interface received: egw's RST from the client's port, seen by the
  # capture in the server's namespace (its log says more when the thread got to the
  # socket first: ConnectionResetError).
  rsts=$(tshark -r "$SRV_CAP_FILE" -Y "tcp.flags.reset == 1 && tcp.srcport == $2" \
           -T fields -e tcp.seq_raw 2>/dev/null | wc -l)
  if [ "$rsts" -gt 0 ]; then
    echo "client port $2: $rsts RST(s) reached the server's interface$(
      grep -q "^$2 ConnectionResetError" "$1" 2>/dev/null && echo ', ConnectionResetError logged')"
    return 0
  fi
  echo "no RST from client port $2 reached the server's interface ($(basename "$1"))"
  return 1
}

# The HTTP servers' logs (request lines) never show the key: the requests that held it
# were reset before any of it reached a server; the look-alike's GET was logged.
no_key_logged() {
  if grep -h "$AWS_KEY" "$EGW_WORK"/http-*.log "$EGW_WORK/http11.log"; then return 1; fi
  local n
  n=$(cat "$EGW_WORK"/http-*.log | grep -c "GET /?key=$NOT_KEY")
  echo "no request line with the key; $n GETs with the look-alike"
  [ "$n" -eq 2 ]
}

# flow_has JSON: a flow record with these fields ("tls.sni" reads r["tls"]["sni"]).
flow_has() {
  /usr/bin/python3 - "$EGW_DP_FLOWLOG" "$1" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = json.loads(sys.argv[2])
def get(r, k):
    for part in k.split("."):
        if not isinstance(r, dict) or part not in r:
            return "<absent>"
        r = r[part]
    return r
if not any(all(get(r, k) == v for k, v in want.items()) for r in recs):
    near = [r for r in recs if get(r, "dest_port") == want.get("dest_port")]
    print(f"{len(recs)} records, none like {want}; same port: "
          + "; ".join(json.dumps({k: get(r, k) for k in want}) for r in near[:3]))
    sys.exit(1)
print("found")
EOF
}

# Flow records, one per name case: what | fields (JSON; "tls.sni" is r["tls"]["sni"]).
flow_expectations() {
  local tls='"proto": "TCP", "dest_port": 443, "app_proto": "tls"'
  local http='"proto": "TCP", "dest_port": 80, "app_proto": "http"'
  local dns='"dest_port": 53, "app_proto": "dns"'
  local allow='"verdict": "allow"' reject='"verdict": "reject"'
  FLOWS=(
    "tls allowed.egw.test (IPv4): allow, tls-allowed|{$tls, \"dest_ip\": \"$SRV_V4_OK\", \"tls.sni\": \"allowed.egw.test\", $allow, \"rule_id\": \"tls-allowed\"}"
    "tls allowed.egw.test (IPv6): allow, tls-allowed|{$tls, \"dest_ip\": \"$SRV_V6_OK\", \"tls.sni\": \"allowed.egw.test\", $allow, \"rule_id\": \"tls-allowed\"}"
    "tls a.b.ok.egw.test: allow, tls-allowed|{$tls, \"tls.sni\": \"a.b.ok.egw.test\", $allow, \"rule_id\": \"tls-allowed\"}"
    "tls api7.egw.test: allow, tls-allowed|{$tls, \"tls.sni\": \"api7.egw.test\", $allow, \"rule_id\": \"tls-allowed\"}"
    "tls split.ok.egw.test (2 records): allow, tls-allowed|{$tls, \"tls.sni\": \"split.ok.egw.test\", $allow, \"rule_id\": \"tls-allowed\"}"
    "tls big.ok.egw.test (2 segments): allow, tls-allowed|{$tls, \"tls.sni\": \"big.ok.egw.test\", $allow, \"rule_id\": \"tls-allowed\"}"
    "tls ok.egw.test: reject, tls-other-egw-test|{$tls, \"tls.sni\": \"ok.egw.test\", $reject, \"rule_id\": \"tls-other-egw-test\"}"
    "tls blocked.egw.test: reject, tls-blocked|{$tls, \"src_port\": $PORT_TLS_REJ_V4, \"tls.sni\": \"blocked.egw.test\", $reject, \"rule_id\": \"tls-blocked\"}"
    "tls other.example: deny, no rule|{$tls, \"dest_ip\": \"$SRV_V4_OK\", \"tls.sni\": \"other.example\", \"verdict\": \"deny\", \"rule_id\": null}"
    "http www.egw.test: allow, http-www|{$http, \"dest_ip\": \"$SRV_V4_OK\", \"http.hostname\": \"www.egw.test\", $allow, \"rule_id\": \"http-www\"}"
    "http other.egw.test: reject, http-other-names|{$http, \"http.hostname\": \"other.egw.test\", $reject, \"rule_id\": \"http-other-names\"}"
    "http absolute target evil.example: reject, http-other-names|{$http, \"src_port\": $PORT_HTTP_REJ, \"http.hostname\": \"evil.example\", $reject, \"rule_id\": \"http-other-names\"}"
    "http POST with a key (IPv4): reject, no-aws-keys|{$http, \"src_port\": $PORT_KEY_V4, \"dest_ip\": \"$SRV_V4_OK\", \"http.hostname\": \"www.egw.test\", $reject, \"rule_id\": \"no-aws-keys\"}"
    "http POST with a key (IPv6): reject, no-aws-keys|{$http, \"src_port\": $PORT_KEY_V6, \"dest_ip\": \"$SRV_V6_OK\", \"http.hostname\": \"www.egw.test\", $reject, \"rule_id\": \"no-aws-keys\"}"
    "http keep-alive, the key in the 2nd request: reject, no-aws-keys|{$http, \"src_port\": ${KEEP_PORT:-0}, \"dest_ip\": \"$SRV_V4_KEEP\", \"http.hostname\": \"www.egw.test\", $reject, \"rule_id\": \"no-aws-keys\"}"
    "http IP literal $SRV_V4_OK: allow, http-allowed|{$http, \"http.hostname\": \"$SRV_V4_OK\", $allow, \"rule_id\": \"http-allowed\"}"
    "dns/udp allowed.egw.test: allow, dns-egw-test|{$dns, \"proto\": \"UDP\", \"dest_ip\": \"$RESOLVER_V4\", \"dns.rrname\": \"allowed.egw.test\", $allow, \"rule_id\": \"dns-egw-test\"}"
    "dns/tcp api7.egw.test (IPv6): allow, dns-egw-test|{$dns, \"proto\": \"TCP\", \"dest_ip\": \"$RESOLVER_V6\", \"dns.rrname\": \"api7.egw.test\", $allow, \"rule_id\": \"dns-egw-test\"}"
    "dns/udp evil.example: reject, dns-refused|{$dns, \"proto\": \"UDP\", \"dest_ip\": \"$RESOLVER_V4\", \"dns.rrname\": \"evil.example\", $reject, \"rule_id\": \"dns-refused\"}"
    "dns/tcp evil.example (IPv6): reject, dns-refused|{$dns, \"proto\": \"TCP\", \"dest_ip\": \"$RESOLVER_V6\", \"dns.rrname\": \"evil.example\", $reject, \"rule_id\": \"dns-refused\"}"
  )
}

# The capture holds the hellos the cases meant to send (tshark, independent of egw):
# split.ok.egw.test's in 2+ TLS records, big.ok.egw.test's over 1600 bytes in 2+ segments.
check_hello_shapes() {
  local split big
  split=$(tshark -r "$1" -Y 'tls.handshake.extensions_server_name == "split.ok.egw.test"' \
            -T fields -e tls.record.length 2>/dev/null | head -n 1)
  big=$(tshark -r "$1" -Y 'tls.handshake.extensions_server_name == "big.ok.egw.test"' \
          -T fields -e tls.handshake.length -e tcp.segment.count 2>/dev/null | head -n 1)
  echo "split.ok.egw.test records: ${split:-none}; big.ok.egw.test hello length, segments: ${big:-none}"
  [[ $split == *,* ]] || return 1
  read -r len segs <<<"$big"
  [ "${len:-0}" -gt 1600 ] && [ "${segs:-0}" -ge 2 ]
}

# Starts tcpdump on the client's interface (every byte) and on the server's (TCP
# headers); sets CAP_PID/CAP_FILE and SRV_CAP_PID/SRV_CAP_FILE. --immediate-mode: without
# it libpcap hands packets over a buffer at a time, and those of the last second before
# the capture stops can be lost.
CAP_PID=""
CAP_FILE=""
SRV_CAP_PID=""
SRV_CAP_FILE=""
start_capture() {
  CAP_FILE="$EGW_WORK/client.pcap"
  SRV_CAP_FILE="$EGW_WORK/server.pcap"
  egw_spawn "$NS_CLI" "$EGW_WORK/tcpdump.log" tcpdump -i eth0 -n -s 0 -U --immediate-mode -w "$CAP_FILE"
  CAP_PID=${EGW_PIDS[-1]}
  egw_spawn "$NS_SRV" "$EGW_WORK/tcpdump-srv.log" tcpdump -i eth0 -n -s 128 -U --immediate-mode \
    -w "$SRV_CAP_FILE" tcp
  SRV_CAP_PID=${EGW_PIDS[-1]}
  local i
  for ((i = 0; i < 50; i++)); do
    grep -q 'listening on' "$EGW_WORK/tcpdump.log" 2>/dev/null &&
      grep -q 'listening on' "$EGW_WORK/tcpdump-srv.log" 2>/dev/null && return 0
    sleep 0.1
  done
  egw_die "tcpdump did not start: $(tail -n 1 "$EGW_WORK/tcpdump.log" "$EGW_WORK/tcpdump-srv.log")"
}

main() {
  egw_require openssl dnsmasq dig tcpdump tshark
  egw_init
  egw_topology_up
  egw_start_servers
  egw_start_name_servers
  start_http11_server
  egw_compile_policy "$BUILD" "$EGW_ROOT/rules/examples/demo.json"
  egw_start_dataplane "$BUILD" "$EGW_POLICY"
  egw_wait_path 10
  start_capture

  names_cases
  local c
  for c in "${CASES[@]}"; do run_case "$c"; done

  check "DNS: dnsmasq answered the allowed names and never saw evil.example" check_resolver_log
  sleep 1  # the last RSTs reach the server's capture
  egw_stop_pid "$SRV_CAP_PID"
  check "TLS reject (IPv4): egw's RST reached the server too" \
    server_reset "$EGW_WORK/tls-$SRV_V4_OK.log" "$PORT_TLS_REJ_V4"
  check "TLS reject (IPv6): egw's RST reached the server too" \
    server_reset "$EGW_WORK/tls-$SRV_V6_OK.log" "$PORT_TLS_REJ_V6"
  check "HTTP reject: egw's RST reached the server too" \
    server_reset "$EGW_WORK/http-$SRV_V4_OK-80.log" "$PORT_HTTP_REJ"
  check "inspect reject (IPv4): egw's RST reached the server too" \
    server_reset "$EGW_WORK/http-$SRV_V4_OK-80.log" "$PORT_KEY_V4"
  check "inspect reject (IPv6): egw's RST reached the server too" \
    server_reset "$EGW_WORK/http-$SRV_V6_OK-80.log" "$PORT_KEY_V6"
  check "inspect: the HTTP servers never received the key" no_key_logged
  check "inspect, keep-alive: the first request was answered, then egw's RST reached the server" \
    server_reset "$EGW_WORK/http11.log" "$(keepalive_port)"

  sleep 0.5  # the last replies reach the capture
  egw_stop_pid "$CAP_PID"
  egw_stop_dataplane
  check "SIGTERM: the dataplane exits 0" test "$EGW_DP_RC" -eq 0

  KEEP_PORT=$(keepalive_port)
  flow_expectations
  local f what fields
  for f in "${FLOWS[@]}"; do
    IFS='|' read -r what fields <<<"$f"
    check "flow record: $what" flow_has "$fields"
  done

  check "capture: the split and the big ClientHello have the intended shape" \
    check_hello_shapes "$CAP_FILE"
  check "capture replayed: egw-replay's names equal tshark's, flow by flow" \
    /usr/bin/python3 "$EGW_ROOT/tests/packet/tshark_names.py" --build "$BUILD" \
    --pcap "$CAP_FILE" --inside 198.18.1.0/24 --inside 2001:2:0:1::/64

  egw_finish
}

main
