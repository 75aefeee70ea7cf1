# Servers for the name rules of rules/examples/demo.json, sourced after lib.sh by
# tests/e2e/names.sh and topology.sh: a resolver (dnsmasq) on its own addresses, a TLS
# server answering any SNI on the allowed server's addresses, and dnsq, a dig wrapper
# whose exit status says what the answer was. Stopped by PID through egw_cleanup.
# shellcheck shell=bash disable=SC2034  # variables here are read by the sourcing scripts

# The resolver of the demo policy's dns-* rules, on the server side.
RESOLVER_V4=198.19.0.53
RESOLVER_V6=2001:2:0:53::53

EGW_DNS_LOG=""  # dnsmasq's query log (--log-queries)
EGW_DNSQ=""     # the dig wrapper

# TLS server: /usr/bin/python3 -c "$EGW_TLS_SERVER" ADDR PORT CERT KEY WWW_DIR. A thread
# per connection with a 10 s timeout: openssl s_server serves one connection at a time
# with no timeout, so one denied flow (its hello held, the server never reset) would
# stall every later case. Logs one line per handshake or error, by the peer's port.
EGW_TLS_SERVER='
import functools, http.server, socket, ssl, sys
addr, port, cert, key, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
def sni(sock, name, c):
    sock.egw_sni = name
ctx.sni_callback = sni
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    request_queue_size = 64
    def get_request(self):
        sock, peer = self.socket.accept()
        return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), peer
    def handle_error(self, request, peer):
        print(f"{peer[1]} {sys.exc_info()[0].__name__}", flush=True)
class Handler(http.server.SimpleHTTPRequestHandler):
    timeout = 10
    def setup(self):
        super().setup()
        self.connection.do_handshake()
        name = getattr(self.connection, "egw_sni", None)
        print(f"{self.client_address[1]} handshake sni={name}", flush=True)
    def log_message(self, fmt, *args):
        print(f"{self.client_address[1]} " + fmt % args, flush=True)
Server((addr, port), functools.partial(Handler, directory=root)).serve_forever()
'

# dnsq DIG-ARGS...: one query (one try, 2 s), dig's output on stdout; exit 0 = NOERROR
# with an answer, 7 = REFUSED (as curl's "refused"), 56 = the TCP connection was reset
# (as curl's), 3 = another status, else dig's own non-zero status (9: no reply).
EGW_DNSQ_SCRIPT='#!/bin/bash
out=$(dig +tries=1 +time=2 "$@" 2>&1)
rc=$?
echo "$out"
case "$out" in *"connection reset"*) exit 56 ;; esac
[ "$rc" -eq 0 ] || exit "$rc"
case "$out" in
  *"status: REFUSED"*) exit 7 ;;
  *"status: NOERROR"*) grep -q "^;; ANSWER SECTION:" <<<"$out" && exit 0 ;;
esac
exit 3
'

# Adds the resolver addresses, a self-signed certificate (any *.egw.test name), starts
# the TLS servers on $SRV_V4_OK/$SRV_V6_OK port 443 and dnsmasq on the resolver (UDP and
# TCP, both families: *.egw.test -> the allowed server, nothing upstream); waits until
# they listen. Needs egw_init, egw_topology_up and egw_start_servers (its www dir).
egw_start_name_servers() {
  ip -n "$NS_SRV" addr add "$RESOLVER_V4/15" dev eth0 || egw_die "cannot add $RESOLVER_V4"
  ip -n "$NS_SRV" addr add "$RESOLVER_V6/48" dev eth0 nodad || egw_die "cannot add $RESOLVER_V6"
  local cert="$EGW_WORK/tls-cert.pem" key="$EGW_WORK/tls-key.pem"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=egw.test -addext "subjectAltName=DNS:egw.test,DNS:*.egw.test" \
    -keyout "$key" -out "$cert" >"$EGW_WORK/openssl-req.log" 2>&1 ||
    egw_die "openssl req failed: $(tail -n 1 "$EGW_WORK/openssl-req.log")"
  local addr
  for addr in "$SRV_V4_OK" "$SRV_V6_OK"; do
    egw_spawn "$NS_SRV" "$EGW_WORK/tls-$addr.log" \
      /usr/bin/python3 -u -c "$EGW_TLS_SERVER" "$addr" 443 "$cert" "$key" "$EGW_WORK/www"
  done
  EGW_DNS_LOG="$EGW_WORK/dnsmasq.log"
  egw_spawn "$NS_SRV" "$EGW_WORK/dnsmasq.out" \
    dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$RESOLVER_V4" --listen-address="$RESOLVER_V6" --port=53 \
    --address=/egw.test/"$SRV_V4_OK" --address=/egw.test/"$SRV_V6_OK" \
    --log-queries --log-facility="$EGW_DNS_LOG"
  EGW_DNSQ="$EGW_WORK/dnsq"
  printf '%s' "$EGW_DNSQ_SCRIPT" >"$EGW_DNSQ"
  chmod +x "$EGW_DNSQ"
  local i n_tls n_dns
  for ((i = 0; i < 100; i++)); do
    n_tls=$(ip netns exec "$NS_SRV" ss -Hltn 'sport = :443' 2>/dev/null | wc -l)
    n_dns=$(ip netns exec "$NS_SRV" ss -Hltun 'sport = :53' 2>/dev/null | wc -l)
    [ "$n_tls" -ge 2 ] && [ "$n_dns" -ge 4 ] && return 0  # 2 TLS; UDP+TCP on 2 addresses
    sleep 0.1
  done
  egw_die "TLS servers or dnsmasq did not start: see $EGW_WORK/tls-*.log, dnsmasq.out"
}

# The TLS servers' logs, both families: "PEER_PORT handshake sni=NAME", "PEER_PORT
# EXCEPTION" (ConnectionResetError when egw's RST reached the server) or a request line.
egw_tls_log() {
  cat "$EGW_WORK"/tls-*.log 2>/dev/null
}
