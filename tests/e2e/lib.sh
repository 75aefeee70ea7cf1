# Demo/e2e helpers, sourced by tests/e2e/{run,topology,swap,faults,restart}.sh: three
# network namespaces bridged by egw-dataplane over net_af_packet, the servers, egw-mgmt
# beside it, and a cleanup that removes only what this run created (namespaces,
# processes by PID, shared memory).
# shellcheck shell=bash disable=SC2034  # variables here are read by the sourcing scripts

EGW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# egw_build_dir DIR: the build directory as an absolute path (relative to the repo).
egw_build_dir() {
  case "$1" in /*) echo "$1" ;; *) echo "$EGW_ROOT/$1" ;; esac
}

# Unique per run: parallel runs never share a namespace, instance or file prefix.
EGW_RUN="egw-$$"
NS_CLI="$EGW_RUN-cli"
NS_GW="$EGW_RUN-gw"
NS_SRV="$EGW_RUN-srv"
EGW_INSTANCE="e2e-$$"
EGW_FILE_PREFIX="egw-e2e-$$"

# Fixed addresses: rules/examples/demo.json relies on them.
CLI_V4=198.18.1.2
CLI_V6=2001:2:0:1::2
SRV_V4_OK=198.19.1.10
SRV_V4_REJ=198.19.2.10
SRV_V6_OK=2001:2:0:100::10
SRV_V6_REJ=2001:2:0:200::10

EGW_PIDS=()       # every process this run started, by PID
EGW_PID_NAMES=()  # what each one is, for messages
EGW_NSES=()       # every namespace this run created
EGW_WORK=""       # scratch dir: logs, compiled policy, web root
EGW_KEEP_WORK=0   # keep the scratch dir (logs) after cleanup, e.g. on failure
EGW_DP_PID=""
EGW_DP_OUT=""     # dataplane stdout (ready line, final counters JSON)
EGW_DP_ERR=""
EGW_DP_FLOWLOG=""
EGW_DP_RC=""      # exit status after egw_stop_dataplane
EGW_CLEANED=0

egw_log() { echo "egw-e2e: $*" >&2; }
# Fatal set-up error: calls the script's egw_on_die hook (if defined), then exits 2.
egw_die() {
  egw_log "error: $*"
  declare -F egw_on_die >/dev/null && egw_on_die "$*"
  exit 2
}

# Root and the tools the topology needs, with a message naming what to install.
egw_require() {
  [ "$(id -u)" -eq 0 ] || egw_die "needs root (network namespaces, veth, af_packet): run with sudo"
  local missing=() t
  for t in ip ss ethtool curl ping timeout /usr/bin/python3 "$@"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] ||
    egw_die "missing tools: ${missing[*]} (run 'make deps': iproute2 ethtool curl iputils-ping python3)"
  ip netns list >/dev/null 2>&1 || egw_die "'ip netns' does not work here (no network namespace support?)"
}

# Makes the scratch dir and installs the EXIT/INT/TERM traps that clean up.
egw_init() {
  EGW_WORK=$(mktemp -d "${TMPDIR:-/tmp}/$EGW_RUN.XXXXXX") || egw_die "cannot create a temp dir"
  trap egw_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Runs "$@" in namespace $1 in the background, output to $2; records its PID.
# `ip netns exec` execs the command, so the PID is the command's own.
egw_spawn() {
  local ns=$1 log=$2
  shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
  EGW_PIDS+=($!)
  EGW_PID_NAMES+=("$1 in $ns")
}

# Disables the offloads that would hand af_packet packets with partial checksums.
egw_no_offload() {
  ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 ||
    egw_die "ethtool -K $2 in $1 failed"
}

# cli(eth0) <-> (in0) gw (out0) <-> (eth0)srv: one L2 segment that egw bridges.
egw_topology_up() {
  local ns
  for ns in "$NS_CLI" "$NS_GW" "$NS_SRV"; do
    ip netns add "$ns" || egw_die "cannot create namespace $ns"
    EGW_NSES+=("$ns")
    ip -n "$ns" link set lo up
  done
  # Created directly inside the namespaces: names never collide with other runs.
  ip -n "$NS_CLI" link add eth0 type veth peer name in0 netns "$NS_GW" || egw_die "veth cli<->gw"
  ip -n "$NS_SRV" link add eth0 type veth peer name out0 netns "$NS_GW" || egw_die "veth srv<->gw"

  # The gateway's kernel stays out of the way: no addresses, no IPv6 chatter.
  ip netns exec "$NS_GW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  local ifc
  for ifc in in0 out0; do
    ip netns exec "$NS_GW" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
    egw_no_offload "$NS_GW" "$ifc"
    ip -n "$NS_GW" link set "$ifc" promisc on up
  done

  egw_no_offload "$NS_CLI" eth0
  ip -n "$NS_CLI" addr add "$CLI_V4/15" dev eth0
  ip -n "$NS_CLI" addr add "$CLI_V6/48" dev eth0 nodad
  ip -n "$NS_CLI" link set eth0 up

  egw_no_offload "$NS_SRV" eth0
  ip -n "$NS_SRV" addr add "$SRV_V4_OK/15" dev eth0
  ip -n "$NS_SRV" addr add "$SRV_V4_REJ/15" dev eth0
  ip -n "$NS_SRV" addr add "$SRV_V6_OK/48" dev eth0 nodad
  ip -n "$NS_SRV" addr add "$SRV_V6_REJ/48" dev eth0 nodad
  ip -n "$NS_SRV" link set eth0 up
}

# UDP echo server: /usr/bin/python3 egw_udp_echo ADDR PORT.
EGW_UDP_ECHO='
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((addr, port))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
'

# HTTP servers on the server side (and one on the client side, for the unsolicited
# inbound case), UDP echo on ports 7 (allowed) and 9 (denied). Waits until they listen.
egw_start_servers() {
  local www="$EGW_WORK/www"
  mkdir -p "$www"
  echo "egw-e2e hello" >"$www/index.html"
  head -c $((2 * 1024 * 1024)) /dev/urandom >"$www/big.bin"
  local spec addr port
  for spec in "$SRV_V4_OK 80" "$SRV_V4_OK 8080" "$SRV_V4_OK 9090" "$SRV_V4_REJ 80" \
              "$SRV_V6_OK 80" "$SRV_V6_REJ 80"; do
    read -r addr port <<<"$spec"
    egw_spawn "$NS_SRV" "$EGW_WORK/http-$addr-$port.log" \
      /usr/bin/python3 -m http.server --bind "$addr" --directory "$www" "$port"
  done
  egw_spawn "$NS_CLI" "$EGW_WORK/http-cli-8000.log" \
    /usr/bin/python3 -m http.server --bind "$CLI_V4" --directory "$www" 8000
  for port in 7 9; do
    egw_spawn "$NS_SRV" "$EGW_WORK/udp-echo-$port.log" \
      /usr/bin/python3 -c "$EGW_UDP_ECHO" "$SRV_V4_OK" "$port"
  done
  # Ready when every listener is bound (checked from inside each namespace).
  local i n_srv n_cli
  for ((i = 0; i < 100; i++)); do
    n_srv=$(ip netns exec "$NS_SRV" ss -Hltun 2>/dev/null | wc -l)
    n_cli=$(ip netns exec "$NS_CLI" ss -Hltn 2>/dev/null | wc -l)
    [ "$n_srv" -ge 8 ] && [ "$n_cli" -ge 1 ] && return 0  # 6 TCP + 2 UDP; 1 TCP
    sleep 0.1
  done
  egw_die "servers did not start: see $EGW_WORK/*.log"
}

# Compiles a policy document with egwctl into the scratch dir; sets EGW_POLICY.
EGW_POLICY=""
egw_compile_policy() {
  local build=$1 doc=$2 out="$EGW_WORK/policy.bin"
  [ "${EGW_STANDIN:-}" = testpmd ] && return 0  # the stand-in bridge takes no policy
  [ -x "$build/egwctl" ] || egw_die "$build/egwctl not found: run 'make' first"
  "$build/egwctl" compile "$doc" -o "$out" >"$EGW_WORK/egwctl.log" 2>&1 ||
    { cat "$EGW_WORK/egwctl.log" >&2; egw_die "egwctl compile $doc failed"; }
  EGW_POLICY=$out
}

# EAL options for two af_packet ports on the gateway's veth ends (port 0 = in0, 1 = out0).
egw_eal_args() {
  echo "-l 0,1 --no-huge --no-pci --no-shconf -m 1024 --file-prefix $EGW_FILE_PREFIX" \
       "--vdev=net_af_packet0,iface=in0 --vdev=net_af_packet1,iface=out0"
}

# Starts egw-dataplane inside the gateway namespace and waits for its ready line.
# EGW_STANDIN=testpmd runs dpdk-testpmd instead (a plain bridge: no policy), to
# debug the topology alone.
egw_start_dataplane() {
  local build=$1 policy=$2
  local tag=${EGW_DP_TAG:-dataplane}  # a restarted dataplane keeps the first one's logs
  EGW_DP_OUT="$EGW_WORK/$tag.out"
  EGW_DP_ERR="$EGW_WORK/$tag.err"
  # The dataplane writes its own flow log, unless EGW_FLOWLOG_BY_MGMT=1: then egw-mgmt
  # drains the records into its state dir (the deployed way).
  if [ "${EGW_FLOWLOG_BY_MGMT:-0}" = 1 ]; then
    EGW_DP_FLOWLOG="${EGW_STATE:-$EGW_WORK/state}/flows.jsonl"
  else
    EGW_DP_FLOWLOG="$EGW_WORK/flows.jsonl"
  fi
  local -a eal cmd
  read -r -a eal <<<"$(egw_eal_args)"
  local ready='^egw-dataplane: forwarding'
  if [ "${EGW_STANDIN:-}" = testpmd ]; then
    cmd=(stdbuf -oL dpdk-testpmd "${eal[@]}" -- --forward-mode=io --auto-start --stats-period=3600)
    ready='packet forwarding - ports='
  else
    [ -x "$build/egw-dataplane" ] || egw_die "$build/egw-dataplane not found: run 'make' first"
    # No policy file: fail-closed until egw-mgmt publishes one.
    cmd=("$build/egw-dataplane" "${eal[@]}" -- --inside 0 --outside 1
         ${policy:+--policy "$policy"} --instance "$EGW_INSTANCE")
    [ "${EGW_FLOWLOG_BY_MGMT:-0}" = 1 ] || cmd+=(--flow-log "$EGW_DP_FLOWLOG")
  fi
  echo "${cmd[*]}" >"$EGW_WORK/$tag.cmd"
  ip netns exec "$NS_GW" "${cmd[@]}" >"$EGW_DP_OUT" 2>"$EGW_DP_ERR" </dev/null &
  EGW_DP_PID=$!
  EGW_PIDS+=("$EGW_DP_PID")
  EGW_PID_NAMES+=("dataplane in $NS_GW")
  local i
  for ((i = 0; i < 300; i++)); do
    grep -Eq "$ready" "$EGW_DP_OUT" 2>/dev/null && return 0
    if ! kill -0 "$EGW_DP_PID" 2>/dev/null; then
      tail -n 20 "$EGW_DP_OUT" "$EGW_DP_ERR" >&2
      egw_die "the dataplane exited before it was ready (command: ${cmd[*]})"
    fi
    sleep 0.1
  done
  tail -n 20 "$EGW_DP_OUT" "$EGW_DP_ERR" >&2
  egw_die "the dataplane did not print its ready line within 30 s"
}

# Waits until the client reaches the server through egw (allowed ICMP), up to $1 s.
egw_wait_path() {
  local limit=${1:-10} i
  for ((i = 0; i < limit * 5; i++)); do
    ip netns exec "$NS_CLI" ping -c 1 -W 0.2 -q "$SRV_V4_OK" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  egw_die "no path from $NS_CLI to $SRV_V4_OK through the dataplane within ${limit}s"
}

# Runs a shell command line in namespace $1 (pipefail on); sets CASE_RC and CASE_SECS
# (elapsed seconds, e.g. 0.05). Output goes to cases.log in the scratch dir.
egw_exec_case() {
  local ns=$1 line=$2 t0 t1
  t0=$(date +%s%N)
  ip netns exec "$ns" bash -o pipefail -c "$line" >>"$EGW_WORK/cases.log" 2>&1 </dev/null
  CASE_RC=$?
  t1=$(date +%s%N)
  local ms=$(((t1 - t0) / 1000000))
  CASE_SECS=$(printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)))
}

# Waits for PID $1 to end within $2 seconds; returns 0 if it ended.
egw_wait_gone() {
  local pid=$1 limit=$2 i
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# SIGTERM to the dataplane; its exit status goes to EGW_DP_RC (KILL after 10 s: 137).
egw_stop_dataplane() {
  [ -n "$EGW_DP_PID" ] || return 0
  kill -TERM "$EGW_DP_PID" 2>/dev/null
  if ! egw_wait_gone "$EGW_DP_PID" 10; then
    egw_log "the dataplane did not exit within 10 s of SIGTERM: killing it"
    kill -KILL "$EGW_DP_PID" 2>/dev/null
  fi
  wait "$EGW_DP_PID" 2>/dev/null
  EGW_DP_RC=$?
}

# The last non-empty line of the dataplane's stdout (its final counters).
egw_dp_last_line() {
  grep -v '^[[:space:]]*$' "$EGW_DP_OUT" 2>/dev/null | tail -n 1
}

# Stops every process this run started (by PID), removes its namespaces and
# shared-memory objects. Idempotent; runs from the EXIT trap, even on failure.
egw_cleanup() {
  [ "$EGW_CLEANED" -eq 1 ] && return 0
  EGW_CLEANED=1
  local pid i
  for pid in "${EGW_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for i in "${!EGW_PIDS[@]}"; do
    pid=${EGW_PIDS[$i]}
    if ! egw_wait_gone "$pid" 5; then
      egw_log "${EGW_PID_NAMES[$i]} (pid $pid) ignored SIGTERM: killing it"
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  local ns
  for ns in "${EGW_NSES[@]}"; do
    ip netns del "$ns" 2>/dev/null || egw_log "could not delete namespace $ns"
  done
  rm -f /dev/shm/egw-"$EGW_INSTANCE"-* 2>/dev/null
  if [ -n "$EGW_WORK" ] && [ -d "$EGW_WORK" ]; then
    if [ "$EGW_KEEP_WORK" -eq 1 ]; then
      egw_log "logs kept in $EGW_WORK"
    else
      rm -rf "$EGW_WORK"
    fi
  fi
  return 0
}

# What cleanup must leave: no namespace of this run, no process it started alive.
# Prints what is left; returns 1 if anything is.
egw_leftovers() {
  local left=0 pid
  if ip netns list | awk '{print $1}' | grep -q "^$EGW_RUN-"; then
    echo "namespaces left: $(ip netns list | awk '{print $1}' | grep "^$EGW_RUN-" | tr '\n' ' ')"
    left=1
  fi
  for pid in "${EGW_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "process left: pid $pid"
      left=1
    fi
  done
  if compgen -G "/dev/shm/egw-$EGW_INSTANCE-*" >/dev/null; then
    echo "shared memory left: /dev/shm/egw-$EGW_INSTANCE-*"
    left=1
  fi
  return $left
}

# ---------------------------------------------------------------- egw-mgmt
# egw-mgmt runs in the host's namespace on 127.0.0.1 (shared memory is host-wide, so it
# reaches the dataplane in the gateway namespace); its state dir is in the scratch dir.
EGW_MGMT_PID=""
EGW_MGMT_PORT=""
EGW_MGMT_URL=""
EGW_STATE=""       # --state-dir
EGW_TOKEN_FILE=""  # the admin token egw-mgmt generated there
EGW_MGMT_LOG=""
EGW_TRAFFIC="$EGW_ROOT/tests/e2e/egw_traffic.py"

# A TCP port on 127.0.0.1 nothing listens on right now.
egw_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts egw-mgmt (build dir $1; env assignments such as EGW_MGMT_FAULT=x may follow)
# and waits for its "listening" line. Keeps the port and state dir of an earlier start,
# so a restart serves the same store at the same URL.
egw_start_mgmt() {
  local build=$1
  shift
  [ -x "$build/egw-mgmt" ] || egw_die "$build/egw-mgmt not found: run 'make' first"
  [ -n "$EGW_STATE" ] || EGW_STATE="$EGW_WORK/state"
  [ -n "$EGW_MGMT_PORT" ] || EGW_MGMT_PORT=$(egw_free_port)
  EGW_MGMT_URL="http://127.0.0.1:$EGW_MGMT_PORT"
  EGW_TOKEN_FILE="$EGW_STATE/admin.token"
  mkdir -p "$EGW_STATE"
  EGW_MGMT_LOG="$EGW_WORK/mgmt.log"
  echo "== start $* $(date +%T.%N)" >>"$EGW_MGMT_LOG"
  local n0 i
  n0=$(grep -c 'egw-mgmt: listening on' "$EGW_MGMT_LOG")
  env -u EGW_MGMT_FAULT "$@" "$build/egw-mgmt" --instance "${EGW_MGMT_INSTANCE:-$EGW_INSTANCE}" \
    --listen "127.0.0.1:$EGW_MGMT_PORT" --state-dir "$EGW_STATE" >>"$EGW_MGMT_LOG" 2>&1 </dev/null &
  EGW_MGMT_PID=$!
  EGW_PIDS+=("$EGW_MGMT_PID")
  EGW_PID_NAMES+=("egw-mgmt")
  for ((i = 0; i < 150; i++)); do
    [ "$(grep -c 'egw-mgmt: listening on' "$EGW_MGMT_LOG")" -gt "$n0" ] && return 0
    kill -0 "$EGW_MGMT_PID" 2>/dev/null ||
      { tail -n 5 "$EGW_MGMT_LOG" >&2; egw_die "egw-mgmt exited at start"; }
    sleep 0.1
  done
  egw_die "egw-mgmt did not print its listening line within 15 s"
}

# Stops egw-mgmt with signal $1 (default TERM) and reaps it; its status in EGW_MGMT_RC.
EGW_MGMT_RC=""
egw_stop_mgmt() {
  local sig=${1:-TERM}
  [ -n "$EGW_MGMT_PID" ] || return 0
  {  # silences bash's "Killed" notice
    kill "-$sig" "$EGW_MGMT_PID"
    egw_wait_gone "$EGW_MGMT_PID" 10 || kill -KILL "$EGW_MGMT_PID"
    wait "$EGW_MGMT_PID"
  } 2>/dev/null
  EGW_MGMT_RC=$?
  EGW_MGMT_PID=""
}

# One REST call as the admin: egw_rest METHOD PATH [BODY_FILE]. Prints the status on
# the first line, the body on the second; returns 0 on 2xx.
egw_rest() {
  /usr/bin/python3 "$EGW_TRAFFIC" rest --url "$EGW_MGMT_URL" --token-file "$EGW_TOKEN_FILE" "$@"
}

# GET /metrics (admin token) into file $1, and GET /v1/stats into $1.stats.json: its
# "updated" (when the dataplane read its ports) bounds the capture window the port
# counters are compared over.
egw_scrape() {
  local out
  out=$(egw_rest GET /metrics) || { echo "GET /metrics failed: $(head -c 200 <<<"$out")"; return 1; }
  sed -n '2,$p' <<<"$out" >"$1"
  out=$(egw_rest GET /v1/stats) || { echo "GET /v1/stats failed: $(head -c 200 <<<"$out")"; return 1; }
  sed -n '2,$p' <<<"$out" >"$1.stats.json"
}

# A field of GET /v1/health ("" when egw-mgmt does not answer).
egw_health() {
  /usr/bin/python3 "$EGW_TRAFFIC" rest --url "$EGW_MGMT_URL" GET /v1/health 2>/dev/null |
    sed -n 2p | /usr/bin/python3 -c 'import json, sys
try: print(json.load(sys.stdin).get(sys.argv[1], ""))
except Exception: print("")' "$1"
}

# Waits up to $3 s until /v1/health says dataplane $1 and (if $2 is set) version $2.
egw_wait_health() {
  local want_dp=$1 want_v=$2 limit=${3:-15} i
  for ((i = 0; i < limit * 5; i++)); do
    if [ "$(egw_health dataplane)" = "$want_dp" ] &&
       { [ -z "$want_v" ] || [ "$(egw_health policy_version)" = "$want_v" ]; }; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# Applies a policy document through egwctl (the operator's way); prints its output.
egw_apply() {
  local build=$1 doc=$2
  "$build/egwctl" --server "$EGW_MGMT_URL" --token-file "$EGW_TOKEN_FILE" apply "$doc"
}

# Starts egw-dataplane on two net_null ports in the host namespace (no network needed):
# egw_null_dataplane BUILD INSTANCE FILE_PREFIX POLICY_OR_EMPTY OUT. Sets EGW_NULL_PID;
# returns 1 (process reaped) if it exits before its ready line.
EGW_NULL_PID=""
egw_null_dataplane() {
  local build=$1 instance=$2 prefix=$3 policy=$4 out=$5 i
  "$build/egw-dataplane" -l 0,1 --no-huge --no-pci --no-shconf -m 512 --file-prefix "$prefix" \
    --vdev=net_null0 --vdev=net_null1 -- --instance "$instance" ${policy:+--policy "$policy"} \
    >"$out" 2>"$out.err" </dev/null &
  EGW_NULL_PID=$!
  EGW_PIDS+=("$EGW_NULL_PID")
  EGW_PID_NAMES+=("dataplane $instance (net_null)")
  for ((i = 0; i < 300; i++)); do
    grep -q '^egw-dataplane: forwarding' "$out" 2>/dev/null && return 0
    if ! kill -0 "$EGW_NULL_PID" 2>/dev/null; then
      wait "$EGW_NULL_PID" 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# SIGTERM to PID $1 and reap it (KILL after 10 s); its exit status is returned.
egw_stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null
  egw_wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
