#!/usr/bin/python3
"""Checks for tests/e2e/observe.sh, against the client's capture.

  observe_check.py metrics WORK      /metrics before and after the traffic
  observe_check.py flows WORK LOG    the flow log egw-mgmt wrote

WORK holds client.pcap, metrics-0.txt, metrics-1.txt, t0 and t1 (the traffic's
window, epoch seconds). Prints what differs and exits 1, or prints a summary and
exits 0.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import prom_text  # noqa: E402

from scapy.all import IP, IPv6, TCP, UDP, rdpcap  # noqa: E402

CLI_MAC_IPS = {"198.18.1.2", "198.18.1.3", "2001:2:0:1::2"}

# Client port -> what its flow's record says (None: absent from the record).
FLOWS = {
    41201: dict(proto="TCP", verdict="allow", rule_id="http-www", app_proto="http",
                name=("http", "hostname", "www.egw.test"), rtt=True, ttfb=True, exact=True,
                reason="closed"),
    41202: dict(proto="TCP", verdict="allow", rule_id="tls-allowed", app_proto="tls",
                name=("tls", "sni", "allowed.egw.test"), rtt=True, ttfb=True, exact=True),
    41203: dict(proto="UDP", verdict="allow", rule_id="dns-egw-test", app_proto="dns",
                name=("dns", "rrname", "allowed.egw.test"), ttfb=True, exact=True,
                reason="timeout"),
    41204: dict(proto="UDP", verdict="reject", rule_id="dns-refused", app_proto="dns",
                name=("dns", "rrname", "evil.example"), reason="policy", pkts=(1, 0)),
    41205: dict(proto="TCP", verdict="reject", rule_id="tls-blocked", app_proto="tls",
                name=("tls", "sni", "blocked.egw.test"), reason="policy", rst_by={"egw"},
                rtt=True),
    41206: dict(proto="TCP", verdict="allow", rule_id="http-allowed", reason="reset",
                rst_by={"server"}, exact=True, pkts=(1, 1)),
    41207: dict(proto="UDP", verdict="allow", rule_id="udp-echo", ttfb=True, exact=True,
                pkts=(1, 1), reason="timeout"),
    41208: dict(proto="TCP", verdict="allow", rule_id="http-allowed", reason="timeout",
                state="syn_sent", exact=True, rtt=False),
    41209: dict(proto="TCP", verdict="deny", rule_id=None, reason="policy", exact=True),
    # After the capture: egw-mgmt was stopped while it ran.
    41210: dict(proto="TCP", verdict="allow", rule_id="http-allowed", app_proto="http",
                rtt=True, ttfb=True),
}
# The flow egw itself reset: the RSTs the client got are egw's, not the server's.
EGW_RESET = 41205

# Per rule, how much each series must have moved (every other rule: 0).
HITS = {"http-www": 1, "tls-allowed": 1, "dns-egw-test": 1, "dns-refused": 1,
        "tls-blocked": 1, "http-allowed": 2, "udp-echo": 1, "(default)": 1}
SYN_TIMEOUTS = {"http-allowed": 1}
RTTS = {"http-www": 1, "tls-allowed": 1, "tls-blocked": 1}
TTFBS = {"http-www": 1, "tls-allowed": 1, "dns-egw-test": 1, "udp-echo": 1}


def frames(work, window=False):
    """The client's frames: (time, sent_by_client, length, (proto, client_port) or None,
    is_rst)."""
    t0 = float(open(os.path.join(work, "t0")).read())
    t1 = float(open(os.path.join(work, "t1")).read())
    out = []
    for p in rdpcap(os.path.join(work, "client.pcap")):
        t = float(p.time)
        if window and not t0 <= t <= t1:
            continue
        ip = p[IP] if IP in p else p[IPv6] if IPv6 in p else None
        sent = p.src == client_mac(work)  # by MAC: link-local and ARP frames too
        key = None
        if ip is not None:
            for proto, layer in (("TCP", TCP), ("UDP", UDP)):
                if layer in p:
                    key = (proto, p[layer].sport if sent else p[layer].dport)
        rst = TCP in p and bool(p[TCP].flags & 0x04)
        out.append((t, sent, len(p), key, rst))
    return out


def frames_between(work, lo, hi):
    """The client's frames captured from time lo to hi (epoch seconds)."""
    return [f for f in frames(work) if lo <= f[0] <= hi]


_mac = {}


def client_mac(work):
    """The client's MAC: the source of the frames its addresses sent."""
    if "mac" not in _mac:
        for p in rdpcap(os.path.join(work, "client.pcap")):
            if IP in p and p[IP].src in CLI_MAC_IPS:
                _mac["mac"] = p.src
                break
    return _mac.get("mac")


def series(fams, name, **labels):
    try:
        return prom_text.value(fams, name, **labels)
    except LookupError:
        return 0.0


def check_metrics(work):
    before = prom_text.parse(open(os.path.join(work, "metrics-0.txt")).read())
    after = prom_text.parse(open(os.path.join(work, "metrics-1.txt")).read())
    problems = []

    def moved(name, want, **labels):
        d = series(after, name, **labels) - series(before, name, **labels)
        if d != want:
            problems.append(f"{name}{labels or ''} moved by {d:g}, expected {want}")

    win = frames(work, window=True)
    # RSTs from either end, by the rule of their flow (egw's own are not counted).
    resets = {}
    for _, _, _, k, rst in win:
        if rst and k and k[1] in FLOWS and k[1] != EGW_RESET:
            rule = FLOWS[k[1]]["rule_id"] or "(default)"
            resets[rule] = resets.get(rule, 0) + 1
    rules = {lbl["rule"] for _, lbl, _ in after["egw_rule_hits_total"]["samples"]}
    for rule in sorted(rules):
        moved("egw_rule_hits_total", HITS.get(rule, 0), rule=rule)
        moved("egw_tcp_resets_total", resets.get(rule, 0), rule=rule)
        moved("egw_tcp_syn_timeouts_total", SYN_TIMEOUTS.get(rule, 0), rule=rule)
        moved("egw_tcp_handshake_rtt_seconds_count", RTTS.get(rule, 0), rule=rule)
        moved("egw_time_to_first_byte_seconds_count", TTFBS.get(rule, 0), rule=rule)
    moved("egw_flows_created_total", len(FLOWS) - 1)  # 41210 runs later
    moved("egw_synth_dns_total", 1)
    denied = sum(1 for _, s, _, k, _ in win if s and k == ("TCP", 41209))
    moved("egw_drops_total", denied, reason="policy_deny")
    # The ports against the client's frames between the two moments the dataplane read
    # its port counters (/v1/stats "updated", ms): a neighbour probe the client's kernel
    # sends near an edge of the traffic window falls on the same side of both.
    s0, s1 = (json.load(open(os.path.join(work, f"metrics-{i}.txt.stats.json"))) for i in (0, 1))
    lo, hi = s0["updated"] / 1e3, s1["updated"] / 1e3
    port = frames_between(work, lo, hi)
    sent = sum(1 for _, s, _, _, _ in port if s)
    got = len(port) - sent
    for what, i, want in (("rx_packets", 0, sent), ("tx_packets", 0, got)):
        d = s1["ports"][i][what] - s0["ports"][i][what]
        if d != want:
            problems.append(f"inside port {what} moved by {d}, the capture counts {want}")
    rtt_sum = series(after, "egw_tcp_handshake_rtt_seconds_sum", rule="tls-allowed") - \
        series(before, "egw_tcp_handshake_rtt_seconds_sum", rule="tls-allowed")
    if not rtt_sum > 0:
        problems.append(f"tls-allowed's handshake RTT sum moved by {rtt_sum}, expected > 0")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"{len(rules)} rules, 5 series each, flows, drops and ports as sent "
          f"({sent} frames out, {got} in, {sum(resets.values())} RSTs from the ends)")
    return 0


def check_flows(work, log):
    recs = [json.loads(line) for line in open(log) if line.strip()]
    by_port = {}
    for r in recs:
        if r.get("proto") in ("TCP", "UDP") and r.get("src_port") in FLOWS:
            by_port.setdefault(r["src_port"], []).append(r)
    counts, rsts = {}, {}
    for _, sent, length, key, rst in frames(work):
        if key is None or key[1] not in FLOWS:
            continue
        c = counts.setdefault(key[1], [0, 0, 0, 0])
        c[0 if sent else 1] += 1
        c[2 if sent else 3] += length
        rsts[key[1]] = rsts.get(key[1], 0) + rst
    problems = []
    for port, want in FLOWS.items():
        got = by_port.get(port, [])
        if len(got) != 1:
            problems.append(f"port {port}: {len(got)} records, expected 1")
            continue
        r = got[0]
        flow, tcp = r.get("flow", {}), r.get("tcp", {})

        def expect(what, value, wanted):
            if value != wanted:
                problems.append(f"port {port}: {what} is {value!r}, expected {wanted!r}")

        expect("proto", r.get("proto"), want["proto"])
        expect("verdict", r.get("verdict"), want["verdict"])
        expect("rule_id", r.get("rule_id"), want["rule_id"])
        if "app_proto" in want:
            expect("app_proto", r.get("app_proto"), want["app_proto"])
        if "name" in want:
            obj, field, name = want["name"]
            expect(f"{obj}.{field}", r.get(obj, {}).get(field), name)
        if "reason" in want:
            expect("flow.reason", flow.get("reason"), want["reason"])
        if "state" in want:
            expect("flow.state", flow.get("state"), want["state"])
        if want.get("rtt") is not None and want["proto"] == "TCP":
            expect("tcp.rtt_us > 0", tcp.get("rtt_us", 0) > 0, want["rtt"])
        expect("flow.ttfb_us > 0", flow.get("ttfb_us", 0) > 0, bool(want.get("ttfb")))
        if want["proto"] == "TCP" and port != EGW_RESET and want.get("exact"):
            # Every RST the capture shows, from either end (the server's to a closed
            # socket, for one), and who sent them.
            n = rsts.get(port, 0)
            expect("tcp.resets (capture)", tcp.get("resets"), n)
            by = {"client" if s else "server" for _, s, _, k, r in frames(work)
                  if r and k and k[1] == port}
            expect("tcp.rst_by (capture)", set(tcp.get("rst_by", [])), by)
        elif want["proto"] == "TCP" and "rst_by" in want:
            expect("tcp.rst_by", set(tcp.get("rst_by", [])), want["rst_by"])
        counted = (flow.get("pkts_toserver"), flow.get("pkts_toclient"))
        if "pkts" in want:
            expect("packets both ways", counted, want["pkts"])
        if want.get("exact"):
            c = counts.get(port, [0, 0, 0, 0])
            expect("packets both ways (capture)", counted, (c[0], c[1]))
            expect("bytes both ways (capture)",
                   (flow.get("bytes_toserver"), flow.get("bytes_toclient")), (c[2], c[3]))
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"{len(FLOWS)} flows, one record each, as the capture counts them; "
          f"{len(recs)} records in all")
    return 0


def main():
    if sys.argv[1] == "metrics":
        return check_metrics(sys.argv[2])
    return check_flows(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
