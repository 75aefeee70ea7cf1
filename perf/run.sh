#!/usr/bin/env bash
# make perf: the scenario table of the performance method (io_ceiling, fast_path_64,
# fast_path_imix, swap here; new_flows_*, flow_memory from perf/worker_bench; rules_scale
# from perf/name_bench; flow_records from perf/flow_log_bench), written to BUILD/perf/results.json and printed as one table.
#
# Ports. egw has two sides, so each side replays its own capture: net_pcap0 (inside,
# port 0) the outbound packets and net_pcap1 (outside, port 1) the inbound ones, both
# with infinite_rx; net_pcap without a tx_pcap/tx_iface counts and drops what is sent
# to it. testpmd's io forwarding runs on exactly these vdevs and captures (port 0 <-> 1,
# one core, two streams): its Mpps is the I/O ceiling, which includes net_pcap's copy
# of every replayed packet out of a 540 k-packet capture that the core's caches do not
# hold (1 k flows instead of 10 k replay about 1.5 times as fast).
# perf/gen_pcaps.py describes the captures: 10 k TCP flows, each with its handshake
# and 25 data segments per direction, in window on every pass of the replay.
#
# Figures. A dataplane run lasts SECS seconds after its ready line; its final counters
# (printed at SIGINT) give rx_packets and the worker loop's TSC cycles, the loop's wall
# time: Mpps = rx_packets / (cycles / tsc_hz) and cycles/pkt = cycles / rx_packets.
# On a shared machine other processes take turns on the worker's core and their time
# counts in those cycles, so the worker thread's CPU share is read from /proc and
# cycles/pkt while on the CPU reported beside. A run includes the first pass of the
# captures, which creates the 10 k flows (a few ms of a SECS-second run, under 1 %).
# Later passes drop each flow's replayed SYN and SYN-ACK (tcp_invalid, 2 of 54 packets);
# their share is reported, and any other drop counts as lost (gen_pcaps.py count). testpmd's
# figure is the mean of its per-second Rx-pps (both ports summed) over SECS seconds,
# the first (partial) second skipped. Every figure is the median of REPS runs; testpmd
# and egw alternate, and a ratio is the median of the ratios of back-to-back runs.
#
# swap: egw-mgmt attached to the dataplane while fast_path_64 traffic runs; SWAPS
# versions are PUT back to back (each adds a different harmless rule, all allow the
# flows); activation_ms comes from each response. Lost = drops beyond the replayed
# handshakes and the first pass, counted exactly from the capture layout and the ports'
# rx counts; the same count on a run of the same length without swaps (lost_without_swaps)
# must be 0, which checks the count itself. egw-mgmt and the REST client run on core 0,
# the control core, which pushes other processes onto the worker's: compare the
# on-CPU cycles/pkt of the two runs, not their Mpps.
#
# perf/l7_flows.py (the held two-segment hello through egw-replay) is run by hand;
# new_flows_sni and rules_scale cover the rest of the L7 figures.
#
# Usage: bash perf/run.sh [BUILD_DIR]   (root; make perf)
#   PERF_QUICK=1     smoke run (make test): 1 rep, 2 s runs, 10 swaps, 1 k flows, and
#                    one run of each of the other benchmarks (about 45 s in all)
#   PERF_REPS=N, PERF_SECONDS=S   override the repetitions and the run length
#   PERF_OUT=DIR     where results.json goes (default BUILD/perf)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
PY=/usr/bin/python3
t_start=$(date +%s)
log() { echo "perf [$(($(date +%s) - t_start))s]: $*"; }
die() {
  log "error: $*" >&2
  exit 1
}
now() { date +%s.%N; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

if [ "${PERF_QUICK:-0}" = 1 ]; then
  REPS=1 SECS=2 SWAPS=10 FLOWS=1000 MEM=1024
else
  REPS=5 SECS=3 SWAPS=100 FLOWS=10000 MEM=3072
fi
REPS=${PERF_REPS:-$REPS}
OUT=${PERF_OUT:-$B/perf}  # results.json and the benchmarks' own JSON
mkdir -p "$OUT"
SECS=${PERF_SECONDS:-$SECS}

for bin in egw-dataplane egw-mgmt egwctl; do
  [ -x "$B/$bin" ] || die "$B/$bin not found: run 'make' first"
done
command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found: run 'make deps'"

work=$(mktemp -d "${TMPDIR:-/tmp}/egw-perf.XXXXXX")
INSTANCE="perf-$$"
TP_PID="" DP_PID="" MGMT_PID=""  # the processes running now (cleared once reaped)
cleanup() {
  local p
  for p in $TP_PID $DP_PID $MGMT_PID; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -f /dev/shm/egw-"$INSTANCE"-*
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ inputs
log "writing the captures ($FLOWS flows, 64 B and IMIX) ..."
$PY perf/gen_pcaps.py write "$work/f64" --flows "$FLOWS"
$PY perf/gen_pcaps.py write "$work/imix" --flows "$FLOWS" --imix
# One mbuf per captured packet (net_pcap keeps the capture in mbufs), plus the queues'.
MBUFS=$(($($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["pass_len"])' "$work/f64.json") * 2 + 16384))

# The benchmark's flows (198.18.0.0/16 -> 198.19.0.0/16 tcp/80) are allowed.
cat >"$work/policy.json" <<'EOF'
{"schema": 1, "default_action": "deny",
 "services": {"bench": {"cidrs": ["198.18.0.0/16"]}},
 "rulesets": [{"name": "perf", "rules": [
   {"id": "bench-http", "from": ["bench"], "proto": "tcp", "ports": [80],
    "to": {"cidrs": ["198.19.0.0/16"]}, "action": "allow"}]}]}
EOF
"$B/egwctl" compile "$work/policy.json" -o "$work/policy.egwp" >/dev/null

# EAL options for the captures PREFIX.{in,out}.pcap.
eal() {
  echo "-l 0,1 --no-huge --no-pci --no-shconf -m $MEM --log-level=lib.*:error" \
       "--vdev=net_pcap0,rx_pcap=$1.in.pcap,infinite_rx=1" \
       "--vdev=net_pcap1,rx_pcap=$1.out.pcap,infinite_rx=1"
}

# wait_line FILE REGEX PID WHAT: waits (up to 60 s) until FILE has a line matching REGEX.
wait_line() {
  local i
  for ((i = 0; i < 1200; i++)); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { tail -n 5 "$1" >&2; die "$4 exited at start"; }
    sleep 0.05
  done
  die "$4 did not start within 60 s"
}

# worker_cpu PID: CPU seconds used so far by the process's worker lcore thread. The
# machine is shared: the share of a run the worker was on its core is reported.
worker_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '$2 == "(rte-worker-1)" { printf "%.2f", ($14 + $15) / hz }' \
    /proc/"$1"/task/*/stat
}

# testpmd_run PREFIX OUT_JSON: testpmd io forwarding on the captures for SECS+1.5 s.
testpmd_run() {
  local log="$work/testpmd.log" mpps t0 cpu0 share
  local -a e
  read -r -a e <<<"$(eal "$1")"
  stdbuf -oL dpdk-testpmd "${e[@]}" --file-prefix "egwperf-tp-$$" -- --forward-mode=io \
    --stats-period=1 --total-num-mbufs="$MBUFS" --auto-start >"$log" 2>&1 </dev/null &
  TP_PID=$!
  wait_line "$log" 'packet forwarding - ports=' "$TP_PID" testpmd
  t0=$(now) cpu0=$(worker_cpu "$TP_PID")
  sleep "$(add "$SECS" 1.5)"
  share=$(awk -v c="$(add "$(worker_cpu "$TP_PID")" "-$cpu0")" -v w="$(add "$(now)" "-$t0")" \
          'BEGIN { printf "%.3f", c / w }')
  kill -INT "$TP_PID"
  wait "$TP_PID" || { tail -n 5 "$log" >&2; die "testpmd failed"; }
  TP_PID=""
  # Rx-pps per second over both ports, the first second (start-up) left out. On a
  # loaded machine (the smoke run beside other suites) a short run may print only one
  # second: that one is used, with a warning.
  mpps=$(awk '/Rx-pps:/ { s += $2; if (++n % 2 == 0) { print s; s = 0 } }' "$log" |
         awk '$1 > 0 { if (seen++) { t += $1; n++ } else first = $1 }
              END { if (n) printf "%.4f", t / n / 1e6; else if (first) printf "%.4f!", first / 1e6 }')
  if [[ $mpps == *! ]]; then
    mpps=${mpps%!}
    log "warning: testpmd printed one second of statistics only: its start-up second is used"
  fi
  [ -n "$mpps" ] || die "testpmd printed no statistics (see $log)"
  echo "{\"mpps\": $mpps, \"cpu_share\": $share}" >"$2"
}

# egw_start PREFIX: starts egw-dataplane on the captures; returns once it forwards.
DP_OUT="$work/dataplane.out" T_READY="" CPU_READY=""
egw_start() {
  local -a e
  read -r -a e <<<"$(eal "$1")"
  "$B/egw-dataplane" "${e[@]}" --file-prefix "egwperf-dp-$$" -- --policy "$work/policy.egwp" \
    --instance "$INSTANCE" --mbufs "$MBUFS" >"$DP_OUT" 2>"$work/dataplane.err" </dev/null &
  DP_PID=$!
  wait_line "$DP_OUT" '^egw-dataplane: forwarding' "$DP_PID" egw-dataplane
  T_READY=$(now) CPU_READY=$(worker_cpu "$DP_PID")
}

# egw_stop PREFIX OUT_JSON: SIGINT, then the run's figures (gen_pcaps.py count).
egw_stop() {
  local t_stop cpu
  t_stop=$(now) cpu=$(worker_cpu "$DP_PID")
  kill -INT "$DP_PID"
  wait "$DP_PID" || { tail -n 5 "$work/dataplane.err" >&2; die "egw-dataplane failed"; }
  DP_PID=""
  $PY perf/gen_pcaps.py count "$1" "$DP_OUT" "$(add "$t_stop" "-$T_READY")" \
    "$(add "$cpu" "-$CPU_READY")" >"$2"
}

mkdir -p "$work/r"
log "io_ceiling, fast_path_64, fast_path_imix: $REPS reps of ${SECS}s runs ..."
for ((i = 1; i <= REPS; i++)); do
  testpmd_run "$work/f64" "$work/r/io_ceiling.$i.json"
  egw_start "$work/f64"; sleep "$SECS"; egw_stop "$work/f64" "$work/r/fast_path_64.$i.json"
  testpmd_run "$work/imix" "$work/r/io_ceiling_imix.$i.json"
  egw_start "$work/imix"; sleep "$SECS"; egw_stop "$work/imix" "$work/r/fast_path_imix.$i.json"
done

# ------------------------------------------------------------------ swap
mgmt_start() {
  local port state="$work/state"
  port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  MGMT_URL="http://127.0.0.1:$port"
  rm -rf "$state"
  mkdir -p "$state"
  taskset -c 0 "$B/egw-mgmt" --instance "$INSTANCE" --listen "127.0.0.1:$port" \
    --state-dir "$state" >"$work/mgmt.log" 2>&1 </dev/null &
  MGMT_PID=$!
  wait_line "$work/mgmt.log" 'egw-mgmt: listening on' "$MGMT_PID" egw-mgmt
  local i
  for ((i = 0; i < 100; i++)); do
    $PY tests/e2e/egw_traffic.py rest --url "$MGMT_URL" GET /v1/health 2>/dev/null |
      grep -q '"dataplane" *: *"connected"' && return 0
    sleep 0.1
  done
  die "egw-mgmt did not see the dataplane within 10 s"
}
mgmt_stop() {
  kill -TERM "$MGMT_PID"
  wait "$MGMT_PID" || true
  MGMT_PID=""
}

log "swap: $SWAPS policy versions under fast_path_64 traffic, then as long without ..."
egw_start "$work/f64"
mgmt_start
sleep 1  # the first pass: flows created
t0=$(now)
taskset -c 0 $PY tests/e2e/egw_traffic.py apply-loop --url "$MGMT_URL" \
  --token-file "$work/state/admin.token" --base "$work/policy.json" --count "$SWAPS" \
  --interval 0.01 --out "$work/r/swaps.json" >"$work/apply.log" 2>&1 ||
  { cat "$work/apply.log" >&2; die "a policy version did not activate"; }
swap_secs=$(add "$(now)" "-$t0")
echo "{\"seconds\": $swap_secs}" >"$work/r/swap_time.json"
sleep 0.5
egw_stop "$work/f64" "$work/r/swap_run.json"
mgmt_stop
egw_start "$work/f64"
mgmt_start
sleep "$(add "$swap_secs" 1.5)"
egw_stop "$work/f64" "$work/r/swap_idle.json"
mgmt_stop

# ------------------------------------------------------------------ the other benchmarks
other_json=()
for bench in worker_bench:worker.json name_bench:rules.json flow_log_bench:records.json; do
  prog="$B/perf/${bench%%:*}" out="$OUT/${bench#*:}"
  args=(--json "$out")
  if [ "${PERF_QUICK:-0}" = 1 ]; then
    case ${bench%%:*} in
      worker_bench) args+=(--reps 1) ;;
      name_bench) args+=(--quick) ;;
      flow_log_bench) args+=(--reps 1 --flows 65536) ;;
    esac
  fi
  [ "${bench%%:*}" = flow_log_bench ] && args+=(--dir "$work")
  rm -f "$out"
  if [ ! -x "$prog" ]; then
    log "$prog not found (make perf builds it): its scenarios are missing" >&2
    continue
  fi
  log "${bench%%:*} ..."
  if "$prog" "${args[@]}" >"$work/${bench%%:*}.log" 2>&1; then
    other_json+=("$out")
  else
    tail -n 5 "$work/${bench%%:*}.log" >&2
    log "$prog failed: its scenarios are missing" >&2
  fi
done

# ------------------------------------------------------------------ results
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
$PY - "$work/r" "$REPS" "$OUT/results.json" "$commit" "$(($(date +%s) - t_start))" \
  "${other_json[@]}" <<'EOF'
import json, os, statistics, sys

rdir, reps, out, commit, wall = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
load = lambda p: json.load(open(p))


def runs(name):
    return [load(os.path.join(rdir, '%s.%d.json' % (name, i + 1))) for i in range(reps)]


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def ratios(egw, base):
    """egw / baseline per rep: the two ran back to back, so the machine's load, which
    drifts over a run, weighs on both alike."""
    return [round(e['mpps'] / b['mpps'], 3) for e, b in zip(egw, base)]


tp64, tpimix = runs('io_ceiling'), runs('io_ceiling_imix')
fp64, fpimix = runs('fast_path_64'), runs('fast_path_imix')
tsc_hz = fp64[0]['tsc_hz']
flows = fp64[0]['flows_created']
ghz = tsc_hz / 1e9
cyc = lambda mpps: round(ghz * 1e3 / mpps, 1) if mpps else 0
io, io_imix = med(tp64, 'mpps'), med(tpimix, 'mpps')
sw_run, sw_idle = load(os.path.join(rdir, 'swap_run.json')), load(os.path.join(rdir, 'swap_idle.json'))
swaps = load(os.path.join(rdir, 'swaps.json'))
ms = sorted(s['activation_ms'] for s in swaps)
pct = lambda q: ms[max(0, -(-len(ms) * q // 100) - 1)]  # nearest rank

sc = {
    'io_ceiling': {'mpps': io, 'cycles_per_pkt': cyc(io), 'cpu_share': med(tp64, 'cpu_share'),
                   'cycles_per_pkt_on_cpu': round(statistics.median(cyc(r['mpps']) * r['cpu_share'] for r in tp64), 1),
                   'reps_mpps': [r['mpps'] for r in tp64]},
    'fast_path_64': {
        'mpps': med(fp64, 'mpps'), 'cycles_per_pkt': med(fp64, 'cycles_per_pkt'),
        'ratio': statistics.median(ratios(fp64, tp64)), 'reps_ratio': ratios(fp64, tp64),
        'wall_mpps': med(fp64, 'wall_mpps'), 'cpu_share': med(fp64, 'cpu_share'),
        'cycles_per_pkt_on_cpu': med(fp64, 'cycles_per_pkt_on_cpu'),
        'drop_share': med(fp64, 'drop_share'),
        'lost': max(r['lost'] for r in fp64), 'reps_mpps': [r['mpps'] for r in fp64],
        'reps_cycles_per_pkt': [r['cycles_per_pkt'] for r in fp64]},
    'fast_path_imix': {
        'mpps': med(fpimix, 'mpps'), 'gbps': med(fpimix, 'gbps'),
        'ratio': statistics.median(ratios(fpimix, tpimix)), 'reps_ratio': ratios(fpimix, tpimix),
        'cycles_per_pkt': med(fpimix, 'cycles_per_pkt'), 'wall_mpps': med(fpimix, 'wall_mpps'),
        'cpu_share': med(fpimix, 'cpu_share'), 'baseline_cpu_share': med(tpimix, 'cpu_share'),
        'cycles_per_pkt_on_cpu': med(fpimix, 'cycles_per_pkt_on_cpu'),
        'baseline_mpps': io_imix, 'baseline_gbps': round(io_imix * fpimix[0]['frame_bytes'] * 8 / 1e3, 3),
        'drop_share': med(fpimix, 'drop_share'), 'lost': max(r['lost'] for r in fpimix),
        'reps_mpps': [r['mpps'] for r in fpimix], 'baseline_reps_mpps': [r['mpps'] for r in tpimix]},
    'swap': {
        'activation_ms_p50': pct(50), 'activation_ms_p99': pct(99), 'activation_ms_max': ms[-1],
        'lost': sw_run['lost'], 'lost_without_swaps': sw_idle['lost'], 'swaps': len(ms),
        'mpps_during_swaps': sw_run['mpps'], 'mpps_without_swaps': sw_idle['mpps'],
        'cpu_share_during_swaps': sw_run['cpu_share'], 'cpu_share_without_swaps': sw_idle['cpu_share'],
        'cycles_per_pkt_on_cpu_during_swaps': sw_run['cycles_per_pkt_on_cpu'],
        'cycles_per_pkt_on_cpu_without_swaps': sw_idle['cycles_per_pkt_on_cpu'],
        'flows_reclassified': sw_run['flows_reclassified'],
        'seconds': load(os.path.join(rdir, 'swap_time.json'))['seconds'],
        'put_ms_p50': round(statistics.median(s['rest_ms'] for s in swaps), 3)},
}
meta = {}
for path in sys.argv[6:]:
    d = load(path)
    d = d.get('scenarios', d)
    name = os.path.basename(path)
    for k, v in d.items():
        (sc if isinstance(v, dict) else meta.setdefault(name, {}))[k] = v
res = {'cpu_ghz': round(ghz, 3), 'tsc_hz': tsc_hz, 'commit': commit, 'reps': reps,
       'wall_s': int(wall), 'scenarios': sc, 'meta': meta}
json.dump(res, open(out, 'w'), indent=1)

f = lambda x, n=2: ('%.*f' % (n, x)) if isinstance(x, (int, float)) else '-'
get = lambda s, k: sc.get(s, {}).get(k)
rows = [
    ('io_ceiling', 'testpmd io, 2x net_pcap (64 B captures)', '%s Mpps, %s cyc/pkt' % (f(io), f(cyc(io), 0)), '-', '1'),
    ('fast_path_64', 'egw, 1 worker, %d TCP flows, 64 B' % flows,
     '%s Mpps, %s cyc/pkt (%s%% replayed-handshake drops)' % (
         f(sc['fast_path_64']['mpps']), f(sc['fast_path_64']['cycles_per_pkt'], 0),
         f(100 * sc['fast_path_64']['drop_share'], 1)),
     'io_ceiling %s Mpps' % f(io), f(sc['fast_path_64']['ratio'], 3)),
    ('fast_path_imix', 'as above, data 7:4:1 of 64/570/1518 B',
     '%s Mpps, %s Gbit/s, %s cyc/pkt' % (f(sc['fast_path_imix']['mpps']), f(sc['fast_path_imix']['gbps']),
                                         f(sc['fast_path_imix']['cycles_per_pkt'], 0)),
     'testpmd %s Mpps, %s Gbit/s' % (f(io_imix), f(sc['fast_path_imix']['baseline_gbps'])),
     f(sc['fast_path_imix']['ratio'], 3)),
    ('new_flows_l34', 'every flow new, CIDR/port rules (worker_bench)',
     '%s flows/s, %s cyc/flow' % (f(get('new_flows_l34', 'flows_per_s'), 0), f(get('new_flows_l34', 'cycles_per_flow'), 0)), '-', '-'),
    ('new_flows_sni', 'SYN, SYN-ACK, ACK, ClientHello; 10 k domain rules',
     '%s flows/s, %s cyc/flow' % (f(get('new_flows_sni', 'flows_per_s'), 0), f(get('new_flows_sni', 'cycles_per_flow'), 0)), '-', '-'),
    ('established', 'worker pipeline alone, established flows (worker_bench)',
     '%s Mpps, %s cyc/pkt' % (f(get('established', 'mpps')), f(get('established', 'cycles_per_pkt'), 0)), '-', '-'),
    ('established_limited', 'the same, every packet against its rule\'s byte rate',
     '%s Mpps, %s cyc/pkt' % (f(get('established_limited', 'mpps')), f(get('established_limited', 'cycles_per_pkt'), 0)),
     'established', f(get('established_limited', 'cycles_per_pkt') / get('established', 'cycles_per_pkt')
                      if get('established_limited', 'cycles_per_pkt') and get('established', 'cycles_per_pkt') else None, 3)),
    ('new_flows_limited', 'new_flows_l34, every flow against a rate limit and a quota',
     '%s flows/s, %s cyc/flow' % (f(get('new_flows_limited', 'flows_per_s'), 0), f(get('new_flows_limited', 'cycles_per_flow'), 0)),
     'new_flows_l34', f(get('new_flows_limited', 'cycles_per_flow') / get('new_flows_l34', 'cycles_per_flow')
                        if get('new_flows_limited', 'cycles_per_flow') and get('new_flows_l34', 'cycles_per_flow') else None, 3)),
    ('rules_scale', '100 k domain rules; match 10 vs 100 k; 10 k regexes',
     'compile %s s, %s MiB; %s / %s ns per name; regex compile %s s' % (
         f(get('rules_scale', 'domains_100k_compile_s')), f(get('rules_scale', 'domains_100k_blob_mib'), 1),
         f(get('rules_scale', 'match_ns_10'), 0), f(get('rules_scale', 'match_ns_100k'), 0),
         f(get('rules_scale', 'regex_10k_compile_s'))), '-', '-'),
    ('swap', '%d activations under fast_path_64' % len(ms),
     'activation p50 %s ms, p99 %s ms; %d lost; %s Mpps meanwhile' % (
         f(pct(50), 3), f(pct(99), 3), sw_run['lost'], f(sw_run['mpps'])),
     '%d lost, %s Mpps without swaps' % (sw_idle['lost'], f(sw_idle['mpps'])),
     f(sw_run['mpps'] / sw_idle['mpps'], 3)),
    ('flow_memory', '1 M concurrent flows (worker_bench)',
     '%s bytes/flow' % f(get('flow_memory', 'bytes_per_flow'), 0), '-', '-'),
    ('flow_records', 'records: worker -> shm ring -> egw-mgmt -> file (flow_log_bench)',
     'emit %s M/s (%s cyc); drain %s M/s; egw-mgmt stopped: %s cyc, %s kept' % (
         f(get('flow_records', 'emit_per_s') and get('flow_records', 'emit_per_s') / 1e6),
         f(get('flow_records', 'emit_cycles'), 0),
         f(get('flow_records', 'drain_per_s') and get('flow_records', 'drain_per_s') / 1e6),
         f(get('flow_records', 'no_reader_cycles'), 0), get('flow_records', 'no_reader_kept')),
     '-', '-'),
]
print()
print('| scenario | what | figure | baseline | ratio |')
print('|---|---|---|---|---|')
for r in rows:
    print('| ' + ' | '.join(r) + ' |')
print()
print('TSC %.2f GHz (cycles are TSC cycles), commit %s, median of %d reps, %s s in all; %s'
      % (ghz, commit, reps, wall, out))
print('The worker lcore was on its core %.0f%% of the time in the egw runs, %.0f%% in testpmd\'s '
      '(medians; the rest went to other processes and counts in the cycles). Cycles/pkt while '
      'on its core: io_ceiling %s, fast_path_64 %s, fast_path_imix %s; swap %s during, %s without.'
      % (100 * statistics.median(r['cpu_share'] for r in fp64 + fpimix),
         100 * statistics.median(r['cpu_share'] for r in tp64 + tpimix),
         f(sc['io_ceiling']['cycles_per_pkt_on_cpu'], 0), f(sc['fast_path_64']['cycles_per_pkt_on_cpu'], 0),
         f(sc['fast_path_imix']['cycles_per_pkt_on_cpu'], 0), f(sw_run['cycles_per_pkt_on_cpu'], 0),
         f(sw_idle['cycles_per_pkt_on_cpu'], 0)))

# The keys of the performance method: a missing one means a benchmark did not run.
required = {'io_ceiling': ['mpps'], 'fast_path_64': ['mpps', 'cycles_per_pkt', 'ratio'],
            'fast_path_imix': ['mpps', 'gbps', 'ratio'],
            'new_flows_l34': ['flows_per_s', 'cycles_per_flow'],
            'new_flows_sni': ['flows_per_s', 'cycles_per_flow'],
            'rules_scale': ['domains_100k_compile_s', 'domains_100k_blob_mib', 'match_ns_10',
                            'match_ns_100k', 'regex_10k_compile_s'],
            'swap': ['activation_ms_p50', 'activation_ms_p99', 'lost'],
            'flow_memory': ['bytes_per_flow'],
            'flow_records': ['emit_per_s', 'drain_per_s', 'no_reader_cycles'],
            'established_limited': ['cycles_per_pkt'],
            'new_flows_limited': ['flows_per_s', 'cycles_per_flow']}
missing = ['%s.%s' % (s, k) for s, ks in required.items() for k in ks
           if not isinstance(sc.get(s, {}).get(k), (int, float))]
if missing:
    print('perf: missing from the results: ' + ', '.join(missing), file=sys.stderr)
    sys.exit(1)
EOF
