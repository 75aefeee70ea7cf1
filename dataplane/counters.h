// Drop reasons and worker counters, from one X-macro list each.
// Written by the owning worker lcore only (plain increments), summed by readers.
#pragma once

#include <cstdint>

namespace egw {

// Every dropped packet is counted under exactly one reason.
#define EGW_DROP_REASONS(X)                                                          \
  X(truncated)          /* frame shorter than a header it claims */                  \
  X(non_ip)             /* not IPv4, IPv6, ARP: dropped by design */                 \
  X(vlan_too_deep)      /* more than two VLAN tags */                                \
  X(bad_ipv4_header)    /* version, IHL or total length wrong */                     \
  X(bad_ipv4_checksum)  /* IPv4 header checksum mismatch */                          \
  X(bad_ipv4_options)   /* malformed IPv4 options */                                 \
  X(bad_ipv6_header)    /* version or payload length wrong */                        \
  X(ipv6_ext_headers)   /* extension header chain too long, malformed or unknown */  \
  X(ipv6_routing_type0) /* deprecated routing header type 0 (RFC 5095) */            \
  X(source_route)       /* IPv4 LSRR/SSRR or IPv6 routing header still routing */    \
  X(bad_l4_header)      /* TCP/UDP/ICMP header truncated or inconsistent */          \
  X(frag_no_l4)         /* first fragment too short for the L4 header */             \
  X(frag_overlap)       /* fragment overlaps an earlier one of its datagram */       \
  X(frag_orphan)        /* non-first fragment with no decided datagram */            \
  X(frag_table_full)    /* no room to track another fragmented datagram */           \
  X(frag_denied)        /* fragment of a datagram refused after an overlap */        \
  X(frag_tcp)           /* fragmented TCP segment: its length is unknown, refused */ \
  X(no_policy)          /* no policy loaded: fail closed */                          \
  X(policy_deny)        /* a rule or the default said deny */                        \
  X(policy_reject)      /* a rule said reject (a RST/ICMP error was sent) */         \
  X(inbound_no_flow)    /* inbound packet that belongs to no allowed flow */         \
  X(midstream_no_flow)  /* outbound TCP without SYN and no flow (e.g. restart) */    \
  X(icmp_error_no_flow) /* ICMP error whose inner header matches no flow */          \
  X(tcp_invalid)        /* TCP flags or state transition not allowed */              \
  X(tcp_out_of_window)  /* TCP segment outside the tracked window */                 \
  X(flow_table_full)    /* no room for a new flow, none evictable */                 \
  X(l7_bad)             /* malformed or evasive first flight / DNS message */        \
  X(l7_conflict)        /* retransmitted bytes differ from the first copy */         \
  X(l7_no_context)      /* no L7 context left for a flow waiting for its name */     \
  X(l7_inbound_wait)    /* inbound payload while the flow waits for its name */      \
  X(dns_unsolicited)    /* DNS response matching no query of the flow */             \
  X(inspect_match)      /* payload matched an inspect rule: the flow ended */        \
  X(inspect_gap)        /* TCP segment past a gap in the scanned bytes (resent) */   \
  X(inspect_no_stream)  /* no inspection stream left (pool empty): fail closed */    \
  X(inspect_fragment)   /* fragmented UDP datagram of an inspected flow */           \
  X(policed)            /* over its rule's bytes_per_s (rate_limit) */                \
  X(tx_full)            /* TX ring full: packet dropped, never queued forever */

enum class DropReason : uint8_t {
#define EGW_X(name) name,
  EGW_DROP_REASONS(EGW_X)
#undef EGW_X
      count
};
constexpr unsigned kDropReasonCount = static_cast<unsigned>(DropReason::count);

// Name of a drop reason as used in JSON and metrics labels.
const char* drop_reason_name(DropReason r);

// Per-worker event counters besides drops.
#define EGW_WORKER_COUNTERS(X)                                  \
  X(rx_packets)                                                 \
  X(tx_packets)                                                 \
  X(flows_created)                                              \
  X(flows_expired)                                              \
  X(flows_evicted)                                              \
  X(flows_reclassified)                                         \
  X(synth_rst)                                                  \
  X(synth_icmp)                                                 \
  X(synth_failed)                                               \
  X(synth_limited)                                              \
  X(passed_arp_nd)                                              \
  X(frag_tracked)                                               \
  X(flow_records_lost)                                          \
  X(flow_records_sampled_out) /* allowed flows --flow-log-sample skipped */ \
  X(l7_waits)                                                   \
  X(l7_held)                                                    \
  X(l7_released)                                                \
  X(l7_decided_no_name)                                         \
  X(l7_names_long) /* names kept partly in a long-name slot */  \
  X(l7_names_lost) /* names not kept: no long-name slot free */ \
  X(synth_dns)                                                  \
  X(inspect_streams)                                            \
  X(inspect_bytes)                                              \
  X(inspect_matches)                                            \
  X(inspect_limit_reached)                                      \
  X(inspect_swap_closed)                                        \
  X(flows_rate_limited) /* new flows refused over a rule's new_flows_per_s */ \
  X(flows_over_quota)   /* new flows refused over a rule's max_flows */      \
  X(flows_limit_table_full) /* refused: no room for their rate-limit key */  \
  X(policed_toserver)   /* packets dropped over a rule's bytes_per_s, out */ \
  X(policed_toclient)   /* ... in */                                         \
  X(report_decisions)   /* flows a report-only rule would have decided */    \
  X(cycles)      /* TSC cycles the worker loop ran */           \
  X(busy_cycles) /* ... of them in iterations that received packets */

struct WorkerCounters {
#define EGW_X(name) uint64_t name = 0;
  EGW_WORKER_COUNTERS(EGW_X)
#undef EGW_X
  uint64_t drops[kDropReasonCount] = {};

  void drop(DropReason r) {
    ++drops[static_cast<unsigned>(r)];
  }
  uint64_t drop_count(DropReason r) const {
    return drops[static_cast<unsigned>(r)];
  }
  uint64_t total_drops() const;
  void add(const WorkerCounters& o);  // readers sum per-worker copies
};

}  // namespace egw
