#!/usr/bin/env bash
# First throughput measurement (make perf): dpdk-testpmd io forwarding (the I/O
# baseline) and egw-dataplane on the same vdevs, input and cores, in the same run.
# net_pcap replays a generated capture forever into the inside port; net_null drops.
# The full scenario table of perf-method.md is the performance issue's work.
set -euo pipefail
B=${1:-build}
cd "$(dirname "$0")/.."
SECS=${PERF_SECONDS:-6}
REPS=${PERF_REPS:-5}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Established UDP flows, 64-byte frames, allowed by the policy below.
/usr/bin/python3 - "$work/udp64.pcap" <<'EOF'
import sys
from scapy.all import Ether, IP, UDP, Raw, wrpcap
pkts = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
        IP(src="198.18.1.%d" % (2 + i % 200), dst="198.19.1.10") /
        UDP(sport=10000 + i // 200, dport=7) / Raw(b"x" * 18) for i in range(8192)]
wrpcap(sys.argv[1], pkts)
EOF
"$B/egwctl" compile rules/examples/demo.json -o "$work/demo.egwp" >/dev/null

EAL=(-l 0,1 --no-huge --no-pci --no-shconf -m 1024 --log-level='lib.*:error'
     --vdev="net_pcap0,rx_pcap=$work/udp64.pcap,infinite_rx=1" --vdev=net_null0,no-rx=1)

# Median of the steady-state Rx-pps samples of testpmd's port 0.
testpmd_mpps() {
  timeout -s INT $((SECS + 3)) dpdk-testpmd "${EAL[@]}" --file-prefix "egwperf-tp-$$" -- \
    --forward-mode=io --stats-period=1 --total-num-mbufs=32768 --auto-start >"$work/tp.out" 2>&1 || true
  grep -E 'Rx-pps' "$work/tp.out" | awk 'NR % 2 == 1 && $2 > 0 {print $2}' | sort -n |
    awk '{a[NR]=$1} END {if (NR == 0) print 0; else printf "%.2f\n", a[int((NR+1)/2)]/1e6}'
}

# Packets received by egw-dataplane while running SECS seconds after it is ready.
egw_mpps() {
  "$B/egw-dataplane" "${EAL[@]}" --file-prefix "egwperf-dp-$$" -- --policy "$work/demo.egwp" \
    --mbufs 32768 >"$work/dp.out" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do grep -q '^egw-dataplane: forwarding' "$work/dp.out" && break; sleep 0.1; done
  local t0; t0=$(date +%s.%N)
  sleep "$SECS"
  kill -INT "$pid"
  wait "$pid" || true
  local t1; t1=$(date +%s.%N)
  tail -1 "$work/dp.out" | /usr/bin/python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
print('%.2f' % (d['ports'][0]['rx_packets'] / ($t1 - $t0) / 1e6))"
}

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f\n", a[int((NR+1)/2)]}'; }

ghz=$(awk -F: '/cpu MHz/ {printf "%.2f\n", $2/1000; exit}' /proc/cpuinfo)
tp=() egw=()
for _ in $(seq "$REPS"); do
  tp+=("$(testpmd_mpps)")
  egw+=("$(egw_mpps)")
done
tpm=$(printf '%s\n' "${tp[@]}" | median)
egm=$(printf '%s\n' "${egw[@]}" | median)
mkdir -p "$B/perf"
/usr/bin/python3 - "$tpm" "$egm" "$ghz" "$B/perf/results.json" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'EOF'
import json, sys
tp, egw, ghz, out, commit = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
cyc = lambda mpps: ghz * 1e3 / mpps if mpps else 0
res = {"cpu_ghz": ghz, "commit": commit, "scenarios": {
    "io_ceiling": {"mpps": tp, "cycles_per_pkt": round(cyc(tp), 1)},
    "fast_path_64": {"mpps": egw, "cycles_per_pkt": round(cyc(egw), 1),
                     "ratio": round(egw / tp, 3) if tp else 0}}}
json.dump(res, open(out, "w"), indent=1)
print("| scenario | Mpps | cycles/pkt | ratio to io_ceiling |")
print("|---|---|---|---|")
print("| io_ceiling (testpmd io) | %.2f | %.1f | 1 |" % (tp, cyc(tp)))
print("| fast_path_64 (egw, UDP, 8192 flows) | %.2f | %.1f | %.3f |" % (egw, cyc(egw), egw / tp if tp else 0))
print("cpu %.2f GHz (cycles/pkt = GHz*1000/Mpps, the whole wall time of one worker core); results in %s" % (ghz, out))
EOF

echo
echo "domain table (literal to.domains matcher, dataplane/l7/domain_table.h):"
"$B/perf/domain_table_bench"

echo
echo "name conditions (to.domains / to.domain_regex: validate, compile, load, decide_name),"
echo "then name extraction (parse_tcp_flight, parse_dns_query):"
"$B/perf/name_bench"

echo
echo "L7 cost per flow through the worker (egw-replay: a rule that needs the name vs an L3/L4 rule):"
/usr/bin/python3 perf/l7_flows.py "$B"
