// The worker pipeline: parse the burst, hash and prefetch, look up, classify the
// misses, act. Runs on worker lcores and in egw-replay (the same code).
// No locks, no allocation (mbufs for RST/ICMP come from the mempool), no syscalls.
#include "dataplane/worker.h"

#include <algorithm>
#include <cstring>

#include "dataplane/synth.h"

namespace egw {
namespace {

constexpr unsigned kSweepBudget = 64;  // flow entries aged per housekeeping call

bool is_icmp(uint8_t proto) { return proto == kProtoIcmp || proto == kProtoIcmpv6; }

// Echo replies are the only ICMP informational messages that pass inbound.
bool is_echo_reply(const L34& l, uint8_t type) {
  return (l.family == 4 && type == 0) || (l.family == 6 && type == 129);
}

// The flow key of an IP packet: inside endpoint first, whichever way it travels.
// `outbound` says whether l.src is the inside endpoint.
void make_key(const L34& l, uint32_t vlan, bool outbound, FlowKey* k) {
  std::memset(k, 0, sizeof(*k));
  std::memcpy(k->inside_ip, outbound ? l.src : l.dst, 16);
  std::memcpy(k->remote_ip, outbound ? l.dst : l.src, 16);
  if (is_icmp(l.proto)) {
    k->inside_port = l.sport;  // the echo identifier, the same both ways
  } else {
    k->inside_port = outbound ? l.sport : l.dport;
    k->remote_port = outbound ? l.dport : l.sport;
  }
  k->vlan = vlan;
  k->proto = l.proto;
  k->family = l.family;
}

void on_flow_end(void* ctx, const FlowEntry& e, EndReason why) {
  auto& w = *static_cast<WorkerCtx*>(ctx);
  if (why == EndReason::timeout) ++w.counters.flows_expired;
  if (why == EndReason::evicted) ++w.counters.flows_evicted;
  if (w.records == nullptr) return;
  // The record carries the rule index and the policy version that decided the flow;
  // the reader names the rule (PolicySwap::fill_rule_id keeps earlier versions' ids).
  FlowRecord r;
  make_flow_record(e, why, nullptr, &r);
  if (!w.records->push(r)) ++w.counters.flow_records_lost;
}

struct BurstState {
  rte_mbuf* m;
  ParsedPacket p;
  FlowKey key;
  uint64_t hash;
};

class Burst {
 public:
  Burst(WorkerCtx& w, Side from, TxBatch* out) : w_(w), from_(from), out_(out) {}

  void drop(rte_mbuf* m, DropReason r) {
    w_.counters.drop(r);
    rte_pktmbuf_free(m);
  }
  void send(rte_mbuf* m, Side port) {
    TxBatch& b = out_[port];
    if (b.n == TxBatch::kCap) return drop(m, DropReason::tx_full);
    b.pkts[b.n++] = m;
  }
  void forward(rte_mbuf* m) { send(m, from_ == kInside ? kOutside : kInside); }

  void reject(BurstState& s, FlowEntry* e);
  void handle(BurstState& s);

 private:
  void handle_icmp_error(BurstState& s);
  void handle_new(BurstState& s);
  void handle_flow(BurstState& s, FlowEntry& e);
  void decide(FlowEntry& e);
  bool may_answer(const ParsedPacket& p);
  // Forwards a packet of an allowed flow; a first fragment records its datagram so
  // the later fragments follow (fail closed when that is impossible).
  void pass(BurstState& s) {
    if (s.p.is_fragment && !w_.frags.decide(s.p, from_, true, w_.now_ns))
      return drop(s.m, DropReason::frag_table_full);
    forward(s.m);
  }

  WorkerCtx& w_;
  Side from_;
  TxBatch* out_;
};

const uint8_t* frame_of(rte_mbuf* m) { return rte_pktmbuf_mtod(m, const uint8_t*); }

bool is_multicast_or_broadcast(uint8_t family, const uint8_t* a) {
  if (family == 6) return a[0] == 0xff;
  return (a[0] & 0xf0) == 0xe0 || (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
}
bool is_unspecified(uint8_t family, const uint8_t* a) {
  static const uint8_t zero[16] = {};
  return std::memcmp(a, zero, family == 6 ? 16 : 4) == 0;
}

// Whether an error may answer p (RFC 1122 3.2.2, RFC 4443 2.4 (e), (f)): never to or
// from multicast/broadcast/unspecified addresses, and at most kSynthPerSecond per
// worker (a token bucket on the burst clock), so reject cannot be made a flood.
bool Burst::may_answer(const ParsedPacket& p) {
  const L34& l = p.l34;
  if (is_multicast_or_broadcast(l.family, l.dst) || is_multicast_or_broadcast(l.family, l.src) ||
      is_unspecified(l.family, l.src)) {
    return false;
  }
  SynthLimiter& b = w_.synth_limit;
  const uint64_t elapsed = w_.now_ns - b.last_ns;
  if (elapsed >= 1000000000ull / SynthLimiter::kPerSecond) {
    const uint64_t add = elapsed / (1000000000ull / SynthLimiter::kPerSecond);
    b.tokens = static_cast<uint32_t>(std::min<uint64_t>(SynthLimiter::kBurst, b.tokens + add));
    b.last_ns = w_.now_ns;
  }
  if (b.tokens == 0) {
    ++w_.counters.synth_limited;
    return false;
  }
  --b.tokens;
  return true;
}

// Synthesizes the reject answer: RST (TCP) or ICMP unreachable, back to the sender;
// a RST onward too when the flow had already carried traffic. Failures to build an
// answer are counted (synth_failed), not as drops: the packet itself was dropped.
void Burst::reject(BurstState& s, FlowEntry* e) {
  const ParsedPacket& p = s.p;
  if (p.l34.proto == kProtoTcp ? (p.tcp_flags & kTcpRst) != 0 : p.icmp_is_error) {
    return;  // never answer a RST or an ICMP error
  }
  if (!may_answer(p)) return;
  rte_mbuf* r;
  if (p.l34.proto == kProtoTcp) {
    r = synth_rst_reply(w_.pool, frame_of(s.m), p);
    if (r != nullptr) ++w_.counters.synth_rst;
    if (e != nullptr && e->tcp_state >= TcpState::established) {
      const int dir = from_ == kInside ? 0 : 1;
      rte_mbuf* fwd = synth_rst_forward(w_.pool, frame_of(s.m), p, e->tcp[dir].end);
      if (fwd == nullptr) {
        ++w_.counters.synth_failed;
      } else {
        ++w_.counters.synth_rst;
        forward(fwd);
      }
    }
  } else {
    r = synth_icmp_unreachable(w_.pool, frame_of(s.m), p);
    if (r != nullptr) ++w_.counters.synth_icmp;
  }
  if (r == nullptr) {
    ++w_.counters.synth_failed;
    return;
  }
  send(r, from_);
}

// Records a decision of the active policy in the flow entry.
void Burst::decide(FlowEntry& e) {
  const Decision d = w_.policy->classify(e.key);
  e.verdict = d.verdict;
  e.rule_index = d.rule_index;
  e.policy_version = static_cast<uint32_t>(w_.policy_version);
}

// An ICMP error passes only when the packet it quotes belongs to an allowed flow and
// its own addresses are those of that flow: inbound, it must be addressed to the
// inside host that sent the quoted packet; outbound, it must come from the inside
// host that received the quoted packet and go to that packet's sender. It may not
// be fragmented or longer than an error ever needs (RFC 1812 4.3.2.3, RFC 4443
// 2.4 (c)), and redirects never pass. Otherwise it would be a channel through egw.
void Burst::handle_icmp_error(BurstState& s) {
  const ParsedPacket& p = s.p;
  const L34& o = p.l34;
  const L34& q = p.inner;
  const bool inbound = from_ == kOutside;
  const size_t alen = o.family == 6 ? 16 : 4;
  const bool addressed =
      inbound ? std::memcmp(o.dst, q.src, alen) == 0
              : std::memcmp(o.src, q.dst, alen) == 0 && std::memcmp(o.dst, q.src, alen) == 0;
  const bool redirect = o.family == 4 && p.icmp_type == 5;
  const size_t max_len = o.family == 6 ? 1280 : 576;
  if (!addressed || redirect || p.is_fragment || p.l3_len > max_len || q.family != o.family) {
    return drop(s.m, DropReason::icmp_error_no_flow);
  }
  // The quoted packet travelled the other way: inbound errors quote outbound packets.
  FlowKey k;
  make_key(q, p.vlan, inbound, &k);
  FlowEntry* e = w_.flows.lookup(k, w_.flows.hash(k), w_.now_ns);
  if (e == nullptr || e->verdict != Verdict::allow) {
    return drop(s.m, DropReason::icmp_error_no_flow);
  }
  const int dir = inbound ? 1 : 0;
  ++e->pkts[dir];
  e->bytes[dir] += rte_pktmbuf_pkt_len(s.m);
  forward(s.m);
}

// No flow yet: only outbound packets may create one, and only the policy decides.
void Burst::handle_new(BurstState& s) {
  const ParsedPacket& p = s.p;
  if (from_ == kOutside) return drop(s.m, DropReason::inbound_no_flow);
  if (p.l34.proto == kProtoTcp) {
    const uint8_t f = p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin);
    if (f != kTcpSyn) {
      return drop(s.m, (f & kTcpSyn) ? DropReason::tcp_invalid : DropReason::midstream_no_flow);
    }
  }
  if (w_.policy == nullptr) return drop(s.m, DropReason::no_policy);
  if (p.l34.proto == kProtoTcp && p.is_fragment) return drop(s.m, DropReason::frag_tcp);
  FlowEntry* e = w_.flows.insert(s.key, s.hash, w_.now_ns);
  if (e == nullptr) return drop(s.m, DropReason::flow_table_full);  // fail closed
  ++w_.counters.flows_created;
  e->start_ns = w_.now_ns;
  e->flow_id = (static_cast<uint64_t>(w_.id) << 48) | ++w_.next_flow_id;
  decide(*e);
  if (p.l34.proto == kProtoTcp) tcp_track_init(*e, p, w_.now_ns);
  // Embryonic: TCP until established, and every flow that does not pass.
  w_.flows.set_embryonic(e, true);
  handle_flow(s, *e);
}

// A packet of a known flow.
void Burst::handle_flow(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  const int dir = from_ == kInside ? 0 : 1;
  if (w_.policy != nullptr && e.policy_version != w_.policy_version &&
      (e.verdict != Verdict::allow ||
       w_.policy->settings().established_mode == abi::kEstablishedReevaluate)) {
    const Verdict before = e.verdict;
    decide(e);
    ++w_.counters.flows_reclassified;
    if (before != Verdict::allow && e.verdict == Verdict::allow &&
        e.tcp_state != TcpState::syn_sent && e.key.proto == kProtoTcp) {
      e.verdict = Verdict::deny;  // a refused TCP flow has no handshake to resume
    }
  }
  ++e.pkts[dir];
  e.bytes[dir] += rte_pktmbuf_pkt_len(s.m);
  e.last_seen_ns = w_.now_ns;
  if (e.verdict != Verdict::allow) {
    if (e.verdict == Verdict::reject && dir == 0) {
      reject(s, &e);
      return drop(s.m, DropReason::policy_reject);
    }
    return drop(s.m, DropReason::policy_deny);
  }
  if (is_icmp(p.l34.proto) && dir == 1 && !is_echo_reply(p.l34, p.icmp_type)) {
    return drop(s.m, DropReason::inbound_no_flow);
  }
  if (p.l34.proto == kProtoTcp) {
    // A fragmented segment's length is unknown until its last fragment: tracking it
    // would corrupt the window; stacks with path-MTU discovery never send one.
    if (p.is_fragment) return drop(s.m, DropReason::frag_tcp);
    DropReason why;
    if (!tcp_track(e, dir, p, w_.now_ns, &why)) return drop(s.m, why);
    if (e.tcp_state >= TcpState::established) w_.flows.set_embryonic(&e, false);
  } else if (dir == 1) {
    w_.flows.set_embryonic(&e, false);  // a reply: no longer embryonic
  }
  pass(s);
}

void Burst::handle(BurstState& s) {
  const ParsedPacket& p = s.p;
  if (p.icmp_is_error) return handle_icmp_error(s);
  FlowEntry* e = w_.flows.lookup(s.key, s.hash, w_.now_ns);
  if (e != nullptr && p.l34.proto == kProtoTcp && from_ == kInside &&
      (p.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn &&
      e->tcp_state >= TcpState::closing) {
    w_.flows.remove(e, EndReason::closed);  // the port is reused by a new connection
    e = nullptr;
  }
  if (e == nullptr) return handle_new(s);
  handle_flow(s, *e);
}

}  // namespace

bool worker_init(WorkerCtx& w, const WorkerConfig& cfg, FlowRecordRing* records) {
  w.id = cfg.id;
  w.pool = cfg.pool;
  w.records = records;
  uint64_t seed[2] = {cfg.hash_seed[0], cfg.hash_seed[1]};
  if (!w.flows.init(cfg.flow_capacity, seed)) return false;
  if (!w.frags.init(cfg.frag_capacity, cfg.hash_seed[0] ^ 0x9e3779b97f4a7c15ull)) return false;
  w.flows.set_on_end(on_flow_end, &w);
  return true;
}

void worker_refresh_policy(WorkerCtx& w) {
  const RuntimePolicy* p = w.published.load(std::memory_order_acquire);
  if (p == w.policy) return;
  w.policy = p;
  w.policy_version = p != nullptr ? p->version() : 0;
  if (p != nullptr) w.flows.set_timeouts(p->timeouts());
}

void worker_process_burst(WorkerCtx& w, rte_mbuf** pkts, uint16_t n, Side from, uint64_t now_ns,
                          TxBatch out[2]) {
  RTE_VERIFY(n <= kBurst);
  // The clock never goes back (capture timestamps may): ages are differences.
  if (now_ns < w.now_ns) now_ns = w.now_ns;
  w.now_ns = now_ns;
  w.counters.rx_packets += n;
  Burst burst(w, from, out);
  BurstState st[kBurst];
  unsigned count = 0;

  // Stage 1: parse every packet, build its flow key and hash; bridge ARP/ND.
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    BurstState& s = st[count];
    s.m = m;
    if (i + 2 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 2], void*));
    const ParseResult r = parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m),
                                      &s.p);
    if (r.status == ParseStatus::drop) {
      burst.drop(m, r.reason);
      continue;
    }
    if (s.p.kind != FrameKind::ip) {
      ++w.counters.passed_arp_nd;
      burst.forward(m);
      continue;
    }
    // Fragments are tracked in stage 2, in arrival order: a later fragment must see
    // the decision its first fragment got earlier in the same burst.
    if (s.p.is_fragment && s.p.frag_offset != 0) {
      ++count;
      continue;
    }
    if (!s.p.icmp_is_error) {  // ICMP errors are looked up by the packet they quote
      make_key(s.p.l34, s.p.vlan, from == kInside, &s.key);
      s.hash = w.flows.hash(s.key);
      w.flows.prefetch(s.hash);
    }
    ++count;
  }

  // Stage 2: in order, track fragments, look up (buckets prefetched above), classify
  // misses, act.
  for (unsigned i = 0; i < count; ++i) {
    BurstState& s = st[i];
    if (s.p.is_fragment) {
      DropReason why;
      const FragTable::Outcome o = w.frags.track(s.p, from, now_ns, &why);
      if (o == FragTable::Outcome::drop) {
        burst.drop(s.m, why);
        continue;
      }
      if (o == FragTable::Outcome::allowed) {
        burst.forward(s.m);
        continue;
      }
      ++w.counters.frag_tracked;  // a first fragment: classified like any packet
    }
    burst.handle(s);
  }
}

void worker_housekeeping(WorkerCtx& w, uint64_t now_ns) {
  if (now_ns < w.now_ns) now_ns = w.now_ns;
  w.now_ns = now_ns;
  w.flows.sweep(now_ns, kSweepBudget);
}

bool worker_flush(WorkerCtx& w, uint32_t budget) {
  w.flows.flush(EndReason::shutdown, budget);
  return w.flows.size() == 0;
}

}  // namespace egw
