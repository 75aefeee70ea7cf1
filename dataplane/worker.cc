// The worker pipeline: parse the burst, hash and prefetch, look up, classify the
// misses, act. Runs on worker lcores and in egw-replay (the same code).
// No locks, no allocation (mbufs for RST/ICMP come from the mempool), no syscalls.
#include "dataplane/worker.h"

#include <algorithm>
#include <cstring>

#include "dataplane/synth.h"
#include <rte_malloc.h>

namespace egw {
namespace {

constexpr unsigned kSweepBudget = 64;         // flow entries aged per housekeeping call
constexpr unsigned kEntryPrefetchAhead = 8;   // packets between an entry's prefetch and use
constexpr uint32_t kDgramOwner = 0xfffffffe;  // StreamPool owner of WorkerCtx::dgram

bool is_icmp(uint8_t proto) { return proto == kProtoIcmp || proto == kProtoIcmpv6; }

// Echo replies are the only ICMP informational messages that pass inbound.
bool is_echo_reply(const L34& l, uint8_t type) {
  return (l.family == 4 && type == 0) || (l.family == 6 && type == 129);
}

// The flow key of an IP packet: inside endpoint first, whichever way it travels.
// `outbound` says whether l.src is the inside endpoint.
// Every field is written once, without a memset first: this runs for every packet.
inline void make_key(const L34& l, uint32_t vlan, bool outbound, FlowKey* k) {
  std::memcpy(k->inside_ip, outbound ? l.src : l.dst, 16);
  std::memcpy(k->remote_ip, outbound ? l.dst : l.src, 16);
  const bool icmp = is_icmp(l.proto);
  // ICMP: the echo identifier, the same both ways, and 0.
  k->inside_port = icmp || outbound ? l.sport : l.dport;
  k->remote_port = icmp ? 0 : outbound ? l.dport : l.sport;
  k->vlan = vlan;
  k->proto = l.proto;
  k->family = l.family;
  std::memset(k->pad, 0, sizeof k->pad);
}

// Returns a flow's L7 context (and the segment it holds) to the worker's pool.
void l7_close(WorkerCtx& w, FlowEntry& e) {
  if (e.l7_slot == kNil) return;
  L7Ctx& c = w.l7[e.l7_slot];
  if (c.tmpl != nullptr) rte_pktmbuf_free(c.tmpl);
  c.tmpl = nullptr;
  w.reasm.close(&c.stream);
  w.l7_free[w.l7_free_top++] = e.l7_slot;
  e.l7_slot = kNil;
}

// Ends a flow's payload inspection (its byte limit reached, or a failed scan): the
// stream's block goes back to the pool.
void inspect_stop(FlowEntry& e, FlowAux& a) {
  inspect_close(a.tcp.inspect_stream);
  a.tcp.inspect_stream = nullptr;
  e.inspect = kInspectOff;
  e.inspect_seq = 0;
}

// ---- A flow's name in its FlowAux (worker.h) -------------------------------------------

NameHead& head_of(FlowAux& a, AuxKind k) {
  return k == AuxKind::tcp ? a.tcp.head : k == AuxKind::dns ? a.dns.head : a.other.head;
}
const NameHead& head_of(const FlowAux& a, AuxKind k) {
  return k == AuxKind::tcp ? a.tcp.head : k == AuxKind::dns ? a.dns.head : a.other.head;
}
// The bytes a name may use in a FlowAux of kind k, and how many.
char* text_of(FlowAux& a, AuxKind k, uint32_t* room) {
  *room = k == AuxKind::tcp   ? sizeof a.tcp.text
          : k == AuxKind::dns ? sizeof a.dns.text
                              : sizeof a.other.text;
  return k == AuxKind::tcp ? a.tcp.text : k == AuxKind::dns ? a.dns.text : a.other.text;
}
const char* text_of(const FlowAux& a, AuxKind k, uint32_t* room) {
  return text_of(const_cast<FlowAux&>(a), k, room);
}

constexpr uint32_t kAlpnMax = sizeof(l7::FlowName::alpn) - 1;
constexpr uint32_t kTextMax = kAlpnMax + l7::kMaxName;  // ALPN and name, back to back
// A long name's first 4 bytes in its FlowAux hold its slot; the smallest room leaves the
// most for the slot.
static_assert(kTextMax - (sizeof(FlowAux::Dns::text) - 4) <= LongNamePool::kSlotBytes &&
              kTextMax - (sizeof(FlowAux::Tcp::text) - 4) <= LongNamePool::kSlotBytes);

// Drops the name a flow of kind k keeps (its slot back to the pool).
void name_forget(WorkerCtx& w, AuxKind k, FlowAux& a) {
  NameHead& h = head_of(a, k);
  if (h.flags & kNameLong) {
    uint32_t room, slot;
    std::memcpy(&slot, text_of(a, k, &room), sizeof slot);
    w.long_names.put(slot);
  }
  h = NameHead{};
}

// The stats slot of a rule index under policy p, within the worker's slots.
uint16_t slot_of(const WorkerCtx& w, const RuntimePolicy& p, uint16_t rule_index) {
  const uint16_t slot = p.rule_slot(rule_index);
  return slot < w.rule_slots ? slot : stats::kSlotOther;
}

stats::RuleCounters& rule_counters(WorkerCtx& w, const FlowEntry& e) {
  return w.rules[e.rule_slot < w.rule_slots ? e.rule_slot : stats::kSlotOther];
}

// Whether an allowed flow's record is kept under --flow-log-sample (1 in N by flow id).
bool sampled_out(const WorkerCtx& w, const FlowEntry& e) {
  return w.record_sample > 1 && (e.flow_id & 0xffffffffffffull) % w.record_sample != 0;
}

// Gives back the unit of its rule's quota flow e holds (it ends, or another rule now
// decides it). Keyed by its rule's slot and, per service, by its service in the policy in
// force (docs/policy.md: a swap that renumbers services restarts those counts).
void release_quota(WorkerCtx& w, FlowEntry& e) {
  const uint8_t per = static_cast<uint8_t>(e.quota - 1);
  const int svc = w.policy != nullptr && per == abi::kPerService ? w.policy->service_of(e.key) : -1;
  if (LimitEntry* x = w.limits.find(limit_key(e.rule_slot, per, e.key, svc)); x && x->active)
    --x->active;
  e.quota = 0;
}

void on_flow_end(void* ctx, FlowEntry& e, EndReason why) {
  auto& w = *static_cast<WorkerCtx*>(ctx);
  if (why == EndReason::timeout) ++w.counters->flows_expired;
  if (why == EndReason::evicted) ++w.counters->flows_evicted;
  const bool waiting = e.l7 == kL7Wait;
  const bool allowed = e.verdict == Verdict::allow && !waiting;
  if (allowed && why == EndReason::timeout && e.tcp_state == TcpState::syn_sent)
    ++rule_counters(w, e).syn_timeouts;  // the destination never answered
  if (e.quota != 0) [[unlikely]]
    release_quota(w, e);
  l7_close(w, e);
  FlowAux& a = w.aux[w.flows.index_of(&e)];
  const AuxKind kind = aux_kind(e.key);
  if (kind == AuxKind::tcp) {
    inspect_close(a.tcp.inspect_stream);
    a.tcp.inspect_stream = nullptr;
  }
  if (w.records != nullptr && allowed && sampled_out(w, e)) {
    ++w.counters->flow_records_sampled_out;
  } else if (w.records != nullptr) {
    // Built in the ring's slot. The worker names the rule when the policy in force
    // decided the flow; else the reader does, from the rule's stats slot (egw-mgmt) or
    // the version's rule ids (PolicySwap::fill_rule_id).
    FlowRecord* r = w.records->reserve();
    if (r == nullptr) {
      ++w.counters->flow_records_lost;
    } else {
      const bool current = w.policy != nullptr && e.policy_version == w.policy_version;
      // A refused flow ended because of the policy, whatever ended its entry; a TCP
      // flow the ends closed or reset ended so (its entry only waited out the
      // closing timeout).
      if (!allowed && why != EndReason::evicted && why != EndReason::shutdown &&
          why != EndReason::active) {
        why = EndReason::policy;
      } else if (why == EndReason::timeout && e.tcp_state == TcpState::closed) {
        why = e.resets != 0 ? EndReason::reset : EndReason::closed;
      } else if (why == EndReason::timeout && e.tcp_state == TcpState::closing) {
        why = EndReason::closed;
      }
      make_flow_record(e, why, current ? w.policy->rule_id(e.rule_index) : nullptr, nullptr, r);
      flow_name_load(w, e.key, a, &r->app);
      r->limited = e.limited;
      if (e.report != 0) {
        const uint16_t slot = e.report & 0x3fff;
        r->report_verdict = static_cast<uint8_t>((e.report >> 14) - 1);
        r->report_slot = slot;
        r->has_report = 1;
        const char* id = w.slot_names != nullptr && slot < w.rule_slots ? w.slot_names[slot].id
                         : w.policy != nullptr && slot >= stats::kFirstRuleSlot
                             ? w.policy->rule_id(static_cast<uint16_t>(slot - stats::kFirstRuleSlot))
                             : "";
        snprintf(r->report_rule_id, sizeof r->report_rule_id, "%s", id);
      }
      if (waiting) {  // a flow still waiting for its name when it ends is denied
        r->verdict = Verdict::deny;
        r->rule_index = kNoRule;
        r->rule_slot = stats::kSlotDefault;
        r->rule_id[0] = '\0';
      }
      w.records->commit();
    }
  }
  name_forget(w, kind, a);
}

class Burst {
 public:
  Burst(WorkerCtx& w, Side from, TxBatch* out)
      : w_(w), from_(from), out_(out),
        inspecting_(w.policy != nullptr && w.policy->has_inspect()) {}

  void drop(rte_mbuf* m, DropReason r) {
    w_.counters->drop(r);
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
  // A final decision was recorded in e: its rule's stats slot, and a hit.
  void ruled(FlowEntry& e) {
    const uint16_t slot = slot_of(w_, *w_.policy, e.rule_index);
    if (e.quota != 0 && slot != e.rule_slot) release_quota(w_, e);  // another rule now
    e.rule_slot = slot;
    stats::RuleCounters& rc = w_.rules[e.rule_slot];
    ++rc.hits;
    if (e.limited != kLimitNone && e.verdict == Verdict::allow) [[unlikely]] {
      // Refused by its rule's limits once: refused still (a DNS flow's next query).
      const abi::LimitRec* lim = w_.policy->limit(e.rule_index);
      e.verdict = lim && lim->over_action == abi::kActionReject ? Verdict::reject : Verdict::deny;
    } else if (!e.limit_checked && e.verdict == Verdict::allow && w_.policy->has_limits()) [[unlikely]] {
      apply_limits(e, rc);
    }
    if (w_.policy->has_report()) [[unlikely]]
      report(e);
    if (e.timing & kTimingRtt) [[unlikely]] {
      // A flow that waited for its name: its handshake counts for the rule that decided
      // it, and the request egw held is released now, which starts the response clock.
      rc.rtt.add(e.rtt_us);
      const uint64_t us = (w_.now_ns - e.start_ns) / 1000;
      e.mark_us = us > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(us);
      e.timing = static_cast<uint8_t>((e.timing & ~(kTimingRtt | kTimingAwaitRequest)) |
                                      kTimingAwaitResponse);
    }
  }
  // e was refused by egw itself, not by a rule (no hit: see docs/observability.md).
  void unruled(FlowEntry& e) {
    if (e.quota != 0) release_quota(w_, e);
    e.rule_slot = stats::kSlotDefault;
  }
  void timing(FlowEntry& e, int dir, uint32_t payload);
  void apply_limits(FlowEntry& e, stats::RuleCounters& rc);
  void refuse_limited(FlowEntry& e, const abi::LimitRec& lim, LimitRefusal why);
  void report(FlowEntry& e);
  bool police(BurstState& s, FlowEntry& e, int dir);
  bool may_answer(const ParsedPacket& p);

  // L7 (names): see docs/l7.md.
  FlowAux& aux(const FlowEntry& e) const { return w_.aux[w_.flows.index_of(&e)]; }
  L7Ctx* l7_open(FlowEntry& e);
  void handle_wait(BurstState& s, FlowEntry& e);
  void finish_wait(BurstState& s, FlowEntry& e, L7Ctx* c, const Decision& d);
  void release(BurstState& s, FlowEntry& e, L7Ctx& c);
  bool l7_timed_out(const FlowEntry& e) const {
    return w_.now_ns - e.start_ns >= w_.policy->settings().l7_timeout_ms * 1000000ull;
  }
  bool watch(BurstState& s, FlowEntry& e);
  void reset_flow(BurstState& s, FlowEntry& e, DropReason why);
  void reset_flow_at(BurstState& s, FlowEntry& e, DropReason why, uint32_t server_next);
  void rst_both(BurstState& s, FlowEntry& e, uint32_t server_next);
  void handle_dns(BurstState& s, FlowEntry& e);
  void note_name(BurstState& s, FlowEntry& e);
  void note_more(BurstState& s, FlowEntry& e);
  Decision name_decision(const FlowEntry& e, const Decision& d) const;
  Decision decide_by(const FlowEntry& e, const Decision& d, const l7::FlowName& n) const {
    return w_.policy->decide_name(e.key, d, n.has_name ? &n.name : nullptr, w_.id);
  }

  // Payload inspection: see docs/l7.md. The inspect_* that take a packet return false
  // when they consumed it.
  bool inspecting() const { return inspecting_; }  // the policy is fixed for the burst
  bool inspect_on(FlowEntry& e);
  int32_t scan_stream(FlowEntry& e, FlowAux& a, const uint8_t* data, uint32_t len);
  bool inspect_tcp(BurstState& s, FlowEntry& e);
  void inspect_fin(const BurstState& s, FlowEntry& e);
  bool inspect_flight(BurstState& s, FlowEntry& e, const L7Ctx& c);
  bool inspect_udp(BurstState& s, FlowEntry& e);
  void inspect_matched(BurstState& s, FlowEntry& e, uint32_t index, uint32_t server_next);
  void refuse_dns(BurstState& s);
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
  bool inspecting_;
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
    ++w_.counters->synth_limited;
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
    if (r != nullptr) ++w_.counters->synth_rst;
    if (e != nullptr && e->tcp_state >= TcpState::established) {
      const int dir = from_ == kInside ? 0 : 1;
      rte_mbuf* fwd = synth_rst_forward(w_.pool, frame_of(s.m), p, e->tcp[dir].end);
      if (fwd == nullptr) {
        ++w_.counters->synth_failed;
      } else {
        ++w_.counters->synth_rst;
        forward(fwd);
      }
    }
  } else {
    r = synth_icmp_unreachable(w_.pool, frame_of(s.m), p);
    if (r != nullptr) ++w_.counters->synth_icmp;
  }
  if (r == nullptr) {
    ++w_.counters->synth_failed;
    return;
  }
  send(r, from_);
}

// The final decision for a flow whose first candidate needs a name: with the name the
// flow offered (none, a malformed one and an IP literal match no name condition). A
// name that was seen but could not be kept is not guessed at: the flow is denied.
Decision Burst::name_decision(const FlowEntry& e, const Decision& d) const {
  if (!e.name_seen) return w_.policy->decide_name(e.key, d, nullptr, w_.id);
  const FlowAux& a = aux(e);
  if (head_of(a, aux_kind(e.key)).flags & kNameLost) return {Verdict::deny, kNoRule};
  l7::FlowName n;
  flow_name_load(w_, e.key, a, &n);
  return decide_by(e, d, n);
}

// Records a decision of the active policy in the flow entry. When the first candidate
// rule needs a name the flow does not know yet, a TCP flow that has sent no payload
// waits for it (kL7Wait: verdict/rule_index hold the decision without a name until
// then); any other flow is decided on what it has.
void Burst::decide(FlowEntry& e) {
  Decision d = w_.policy->classify(e.key);
  e.name_first = kNoRule;
  if (d.needs_name) {
    // Only before the client sent payload (TCP Fast Open data on the SYN is held).
    const bool can_wait =
        e.key.proto == kProtoTcp && !e.name_seen &&
        (e.l7 == kL7Wait || (e.l7 == kL7None && e.tcp_state == TcpState::syn_sent));
    if (can_wait) {
      e.name_first = d.first_index;
    } else {
      d = name_decision(e, d);
    }
  }
  e.verdict = d.verdict;
  e.rule_index = d.rule_index;
  e.policy_version = static_cast<uint32_t>(w_.policy_version);
  // A flow to port 53 is decided again by each query's name (handle_dns): counted there.
  if (e.name_first == kNoRule && aux_kind(e.key) != AuxKind::dns) ruled(e);
}

// An ICMP error passes only when the packet it quotes belongs to an allowed flow and
// its own addresses are those of that flow: inbound, it must be addressed to the
// inside host that sent the quoted packet; outbound, it must come from the inside
// host that received the quoted packet and go to that packet's sender. It may not
// be fragmented or longer than an error ever needs (RFC 1812 4.3.2.3, RFC 4443
// 2.4 (c)), and redirects never pass. Otherwise it would be a channel through egw.
// A new flow an allow rule with a rate limit or quota decided (once a flow): its key's
// new-flow bucket and quota, this worker's share of each. Over either, or with no room
// for its key, the flow is refused with the limit's action (the rule stays in its
// record, `limited` says why); else it holds a unit of the quota until it ends, and its
// packets take byte tokens when the rule limits bytes.
void Burst::apply_limits(FlowEntry& e, stats::RuleCounters& rc) {
  e.limit_checked = 1;
  const abi::LimitRec* lim = w_.policy->limit(e.rule_index);
  if (lim == nullptr) return;
  // The source service only when a key needs it (an LPM look-up).
  const bool by_service =
      ((lim->flags & abi::kLimitMaxFlows) && lim->max_flows_per == abi::kPerService) ||
      ((lim->flags & (abi::kLimitNewFlows | abi::kLimitBytes)) && lim->per == abi::kPerService);
  const int svc = by_service ? w_.policy->service_of(e.key) : -1;
  const uint32_t n = w_.workers;
  LimitEntry* quota = nullptr;
  if (lim->flags & abi::kLimitMaxFlows) {
    quota = w_.limits.get(limit_key(e.rule_slot, lim->max_flows_per, e.key, svc), w_.now_ns);
    if (quota != nullptr && quota->active >= worker_share(lim->max_flows, n)) {
      ++rc.over_quota;
      ++w_.counters->flows_over_quota;
      return refuse_limited(e, *lim, kLimitQuota);
    }
  }
  LimitEntry* rate = nullptr;
  if (lim->flags & (abi::kLimitNewFlows | abi::kLimitBytes))
    rate = w_.limits.get(limit_key(e.rule_slot, lim->per, e.key, svc), w_.now_ns);
  if ((quota == nullptr && (lim->flags & abi::kLimitMaxFlows)) ||
      (rate == nullptr && (lim->flags & (abi::kLimitNewFlows | abi::kLimitBytes)))) {
    ++w_.counters->flows_limit_table_full;
    return refuse_limited(e, *lim, kLimitFull);
  }
  if ((lim->flags & abi::kLimitNewFlows) &&
      !rate->flows.take(w_.now_ns, worker_share(lim->new_flows_per_s, n),
                        worker_share(lim->burst, n), 1)) {
    ++rc.rate_limited;
    ++w_.counters->flows_rate_limited;
    return refuse_limited(e, *lim, kLimitRate);
  }
  if (quota != nullptr) {
    ++quota->active;
    e.quota = static_cast<uint8_t>(1 + lim->max_flows_per);
  }
  if (lim->flags & abi::kLimitBytes) e.policed = 1;
}

void Burst::refuse_limited(FlowEntry& e, const abi::LimitRec& lim, LimitRefusal why) {
  e.verdict = lim.over_action == abi::kActionReject ? Verdict::reject : Verdict::deny;
  e.limited = why;
}

// A packet of a flow whose rule limits bytes: it takes tokens of its key's bucket for
// its direction, or is dropped (counted by direction).
bool Burst::police(BurstState& s, FlowEntry& e, int dir) {
  const abi::LimitRec* lim =
      e.policy_version == w_.policy_version ? w_.policy->limit(e.rule_index) : nullptr;
  if (lim == nullptr || !(lim->flags & abi::kLimitBytes)) return true;  // a new policy lifted it
  const int svc = lim->per == abi::kPerService ? w_.policy->service_of(e.key) : -1;
  LimitEntry* x = w_.limits.get(limit_key(e.rule_slot, lim->per, e.key, svc), w_.now_ns);
  const uint32_t len = rte_pktmbuf_pkt_len(s.m);
  if (x != nullptr && x->bytes[dir].take(w_.now_ns, worker_share(lim->bytes_per_s, w_.workers),
                                         worker_share(lim->bytes_burst, w_.workers), len))
    return true;
  ++rule_counters(w_, e).policed[dir];
  ++(dir == 0 ? w_.counters->policed_toserver : w_.counters->policed_toclient);
  drop(s.m, DropReason::policed);
  return false;
}

// The report-only rulesets' decision for e, beside the enforcing one: by its name when
// it has one. Kept as (verdict + 1) << 14 | the report rule's slot.
void Burst::report(FlowEntry& e) {
  Decision d = w_.policy->classify_report(e.key);
  if (d.needs_name) {
    l7::FlowName n;
    const bool named = e.name_seen && !(head_of(aux(e), aux_kind(e.key)).flags & kNameLost);
    if (named) flow_name_load(w_, e.key, aux(e), &n);
    d = w_.policy->decide_name(e.key, d, named && n.has_name ? &n.name : nullptr, w_.id, true);
  }
  if (d.rule_index == kNoRule) {
    e.report = 0;
    return;
  }
  const uint16_t slot = slot_of(w_, *w_.policy, d.rule_index);
  const auto report = static_cast<uint16_t>((static_cast<unsigned>(d.verdict) + 1) << 14 | slot);
  if (report == e.report) return;  // the same decision again (its name changed nothing)
  e.report = report;
  ++w_.rules[slot].report_hits;
  ++w_.counters->report_decisions;
}

// Accounts what tcp_track (or the first packets) noted in e.timing: the handshake RTT,
// a RST, the request's first byte and the response's first byte, in the flow's rule.
void Burst::timing(FlowEntry& e, int dir, uint32_t payload) {
  stats::RuleCounters& rc = rule_counters(w_, e);
  uint8_t t = e.timing;
  if (t & kTimingRst) {
    ++rc.resets;
    t &= static_cast<uint8_t>(~(kTimingRst | kTimingAwaitRequest | kTimingAwaitResponse));
  }
  if ((t & kTimingRtt) && e.l7 != kL7Wait) {  // a waiting flow's rule is not known yet
    rc.rtt.add(e.rtt_us);
    t = static_cast<uint8_t>((t & ~kTimingRtt) | kTimingAwaitRequest);
  }
  if (payload != 0) {
    const uint64_t since_ns = w_.now_ns - e.start_ns;
    const uint32_t since = since_ns / 1000 > 0xffffffffu ? 0xffffffffu
                                                         : static_cast<uint32_t>(since_ns / 1000);
    if (dir == 0 && (t & kTimingAwaitRequest)) {
      e.mark_us = since;
      t = static_cast<uint8_t>((t & ~kTimingAwaitRequest) | kTimingAwaitResponse);
    } else if (dir == 1 && (t & kTimingAwaitResponse)) {
      e.ttfb_us = since > e.mark_us ? since - e.mark_us : 1;
      rc.ttfb.add(e.ttfb_us);
      t &= static_cast<uint8_t>(~kTimingAwaitResponse);
    } else if (dir == 1) {
      t &= static_cast<uint8_t>(~kTimingAwaitRequest);  // the server spoke first: no request
    }
  }
  e.timing = t;
}

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
  ++w_.counters->flows_created;
  e->start_ns = w_.now_ns;
  e->flow_id = (static_cast<uint64_t>(w_.id) << 48) | ++w_.next_flow_id;
  FlowAux& a = aux(*e);  // its name was forgotten when its slot's last flow ended
  e->inspect = kInspectUnknown;
  e->inspect_gen = w_.policy_gen;
  switch (aux_kind(e->key)) {
    case AuxKind::tcp:
      tcp_track_init(*e, p, w_.now_ns);
      a.tcp.inspect_stream = nullptr;
      e->inspect_seq = 1;  // the payload starts after the SYN
      a.tcp.inspect_next = e->isn + 1;
      break;
    case AuxKind::dns:
      std::memset(a.dns.key, 0, sizeof a.dns.key);
      a.dns.next = 0;
      break;
    case AuxKind::other:
      break;
  }
  if (e->key.proto != kProtoTcp) {  // this packet is the request: its answer is awaited
    e->mark_us = 0;
    e->timing = kTimingAwaitResponse;
  }
  decide(*e);
  if (e->name_first != kNoRule) {
    e->l7 = kL7Wait;
    ++w_.counters->l7_waits;
  }
  // Embryonic: TCP until established, and every flow that does not pass.
  w_.flows.set_embryonic(e, true);
  handle_flow(s, *e);
}

// A packet of a known flow.
void Burst::handle_flow(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  const int dir = from_ == kInside ? 0 : 1;
  // A flow an inspect rule ended stays ended (and keeps that rule in its record).
  if (w_.policy != nullptr && e.policy_version != w_.policy_version &&
      e.inspect != kInspectMatched &&
      (e.verdict != Verdict::allow || e.l7 == kL7Wait ||
       w_.policy->settings().established_mode == abi::kEstablishedReevaluate)) {
    const Verdict before = e.verdict;
    const bool waited = e.l7 == kL7Wait;
    decide(e);
    ++w_.counters->flows_reclassified;
    if (!waited && before != Verdict::allow && e.verdict == Verdict::allow &&
        e.tcp_state != TcpState::syn_sent && e.key.proto == kProtoTcp) {
      e.verdict = Verdict::deny;  // a refused TCP flow has no handshake to resume
    }
  }
  ++e.pkts[dir];
  e.bytes[dir] += rte_pktmbuf_pkt_len(s.m);
  e.last_seen_ns = w_.now_ns;
  const bool dns = e.key.proto == kProtoUdp && e.key.remote_port == 53 && !p.is_fragment;
  if ((e.l7 == kL7Wait || dns) && w_.policy == nullptr) {
    return drop(s.m, DropReason::no_policy);  // both ask the policy again: fail closed
  }
  if (e.l7 == kL7Wait || dns) EGW_STAGE(w_, l7);
  if (e.l7 == kL7Wait) return handle_wait(s, e);
  if (dns) return handle_dns(s, e);
  if (e.verdict != Verdict::allow) {
    if (e.verdict == Verdict::reject && dir == 0) {
      reject(s, &e);
      return drop(s.m, DropReason::policy_reject);
    }
    return drop(s.m, DropReason::policy_deny);
  }
  if (e.policed && !police(s, e, dir)) [[unlikely]]
    return;
  if (is_icmp(p.l34.proto) && dir == 1 && !is_echo_reply(p.l34, p.icmp_type)) {
    return drop(s.m, DropReason::inbound_no_flow);
  }
  if (p.l34.proto == kProtoTcp) {
    // A fragmented segment's length is unknown until its last fragment: tracking it
    // would corrupt the window; stacks with path-MTU discovery never send one.
    if (p.is_fragment) return drop(s.m, DropReason::frag_tcp);
    DropReason why;
    if (!tcp_track(e, dir, p, w_.now_ns, &why)) return drop(s.m, why);
    if (e.timing & kTimingEvents) [[unlikely]] timing(e, dir, p.payload_len);
    if (e.tcp_state >= TcpState::established) w_.flows.settle(&e);
    if (dir == 0 && p.payload_len != 0) {
      EGW_STAGE(w_, l7);
      if (e.l7 == kL7Watch && !watch(s, e)) return;
      if (e.l7 == kL7None) {
        note_name(s, e);
      } else if (e.l7 == kL7Note) {
        note_more(s, e);
      }
      // A RST's payload reaches no application: it passes unscanned, never held back.
      if (!(p.tcp_flags & kTcpRst) && inspecting() && !inspect_tcp(s, e)) return;
    }
    if (dir == 0 && (p.tcp_flags & kTcpFin)) inspect_fin(s, e);
  } else if (dir == 1) {
    w_.flows.settle(&e);  // a reply: no longer embryonic
    if (e.timing & kTimingEvents) timing(e, dir, 1);
  } else if (p.l34.proto == kProtoUdp && inspecting()) {
    EGW_STAGE(w_, l7);
    if (!inspect_udp(s, e)) return;
  }
  pass(s);
}

// ---- L7: flows that wait for their name --------------------------------------------

L7Ctx* Burst::l7_open(FlowEntry& e) {
  if (w_.l7_free_top == 0) return nullptr;
  const uint32_t slot = w_.l7_free[w_.l7_free_top - 1];
  L7Ctx& c = w_.l7[slot];
  if (!w_.reasm.open(&c.stream, e.isn + 1, w_.policy->settings().l7_max_bytes)) return nullptr;
  --w_.l7_free_top;
  c.flight = l7::FlightState{};
  c.name = l7::FlowName{};
  c.start_ns = w_.now_ns;
  c.tmpl = nullptr;
  c.max_seg = 0;
  c.held = false;
  e.l7_slot = slot;
  return &c;
}

// A TCP flow waiting for its name. The handshake passes; the client's payload is
// copied into the flow's stream and held (its segments are not forwarded) until the
// first flight names the flow, or cannot (limit, timeout, FIN), or is malformed.
void Burst::handle_wait(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  const int dir = from_ == kInside ? 0 : 1;
  if (p.is_fragment) return drop(s.m, DropReason::frag_tcp);
  DropReason why;
  if (!tcp_track(e, dir, p, w_.now_ns, &why)) return drop(s.m, why);
  if (e.tcp_state >= TcpState::established) w_.flows.settle(&e);
  L7Ctx* c = e.l7_slot != kNil ? &w_.l7[e.l7_slot] : nullptr;
  if (c != nullptr && c->stream.base_seq != e.isn + 1) {
    l7_close(w_, e);  // a new SYN restarted the connection: its stream starts anew
    c = nullptr;
  }
  if (dir == 1) {
    // The server may not speak before the client named it: only empty segments pass,
    // until the wait times out with nothing held (a server that speaks first).
    if (p.payload_len == 0) return forward(s.m);
    if (c != nullptr || !l7_timed_out(e)) return drop(s.m, DropReason::l7_inbound_wait);
    ++w_.counters->l7_decided_no_name;
    const Decision d =
        w_.policy->decide_name(e.key, {e.verdict, e.rule_index, true, e.name_first}, nullptr, w_.id);
    e.verdict = d.verdict;
    e.rule_index = d.rule_index;
    e.name_first = kNoRule;
    e.l7 = kL7Done;
    ruled(e);  // its rule's limits may refuse it: e.verdict from here
    if (e.verdict == Verdict::allow) return forward(s.m);
    return drop(s.m, DropReason::policy_deny);
  }
  const bool syn = p.tcp_flags & kTcpSyn;
  const bool ends = p.tcp_flags & (kTcpFin | kTcpRst);
  if (p.payload_len == 0 && !ends && (c == nullptr || !l7_timed_out(e))) {
    return forward(s.m);  // the handshake, bare ACKs
  }
  if (p.tcp_flags & kTcpRst) {  // the client gave up: nothing was released
    l7_close(w_, e);
    return forward(s.m);
  }
  if (c == nullptr && p.payload_len != 0) {
    c = l7_open(e);
    if (c == nullptr) {  // fail closed
      e.verdict = Verdict::deny;
      e.rule_index = kNoRule;
      unruled(e);
      e.l7 = kL7Done;
      return drop(s.m, DropReason::l7_no_context);
    }
  }
  // A FIN ends the first flight: decide on what it holds; so does a policy swap that
  // made the flow's first candidate one without a name condition.
  bool force = ends || e.name_first == kNoRule;
  if (c != nullptr && p.payload_len != 0) {
    const uint32_t seq = p.tcp_seq + (syn ? 1 : 0);
    const l7::ReasmResult r =
        l7::reasm_insert(&c->stream, seq, frame_of(s.m) + p.payload_offset, p.payload_len);
    if (r == l7::ReasmResult::conflict) return reset_flow(s, e, DropReason::l7_conflict);
    if (r == l7::ReasmResult::over_limit) force = true;
    if (p.payload_len > c->max_seg) c->max_seg = p.payload_len;
  }
  if (l7_timed_out(e) || (c != nullptr && c->stream.contiguous == c->stream.limit)) force = true;
  l7::Status st = l7::Status::need_more;
  if (c != nullptr && c->stream.contiguous != 0 && c->stream.contiguous >= c->flight.want) {
    l7::Error err;
    st = l7::parse_tcp_flight(c->stream.buf, c->stream.contiguous, e.key.remote_port, &c->flight,
                              &c->name, &err);
    if (st == l7::Status::bad) {
      if (c->flight.decided) flow_name_keep(w_, e, c->name);  // the record names the first
      return reset_flow(s, e, DropReason::l7_bad);
    }
    if (st == l7::Status::ok) {
      flow_name_keep(w_, e, c->name);
      e.name_seen = 1;
    }
  }
  const Decision d{e.verdict, e.rule_index, true, e.name_first};
  // Decided on the name in hand, kept or not (a lost one denies only later decisions).
  if (st == l7::Status::ok) return finish_wait(s, e, c, decide_by(e, d, c->name));
  if (force) {
    ++w_.counters->l7_decided_no_name;
    return finish_wait(s, e, c, w_.policy->decide_name(e.key, d, nullptr, w_.id));
  }
  // Held: the bytes are in the stream; this segment becomes the template of the ones
  // released later (a SYN carrying data, TCP Fast Open, passes without its data).
  ++w_.counters->l7_held;
  c->held = true;
  if (syn) {
    if (!strip_tcp_payload(s.m, p)) return drop(s.m, DropReason::l7_bad);
    return forward(s.m);
  }
  if (c->tmpl != nullptr) rte_pktmbuf_free(c->tmpl);
  c->tmpl = s.m;
}

// The wait is over with decision d (c may be null: the flow sent no payload).
void Burst::finish_wait(BurstState& s, FlowEntry& e, L7Ctx* c, const Decision& d) {
  const ParsedPacket& p = s.p;
  e.verdict = d.verdict;
  e.rule_index = d.rule_index;
  e.name_first = kNoRule;
  ruled(e);  // its rule's limits may refuse it: e.verdict from here
  if (e.verdict == Verdict::allow) {
    if (c != nullptr && !inspect_flight(s, e, *c)) return;
    // Watching keeps the context after the decision; deciding new flows comes first, so
    // a flow is not watched when fewer than a quarter of the contexts are free.
    const bool watching = c != nullptr && e.name_seen && !c->flight.done &&
                          c->stream.contiguous < c->stream.limit &&
                          w_.l7_free_top * 4 >= w_.l7_cap;
    e.l7 = watching ? kL7Watch : kL7Done;
    if (c == nullptr) return forward(s.m);
    release(s, e, *c);
    if (e.l7 != kL7Watch) l7_close(w_, e);
    return;
  }
  e.l7 = kL7Done;
  const uint32_t base = e.isn + 1;
  l7_close(w_, e);
  if (e.verdict == Verdict::reject && may_answer(p)) {
    // RST to both ends: the client, and the server, which has seen nothing past the
    // handshake (its next expected sequence number is isn + 1).
    rst_both(s, e, base);
    return drop(s.m, DropReason::policy_reject);
  }
  drop(s.m, e.verdict == Verdict::reject ? DropReason::policy_reject : DropReason::policy_deny);
}

// Releases the held first flight in order. When nothing was held before, the current
// segment carries all of it and goes as it is; otherwise the bytes [0, contiguous)
// leave as new segments built on the headers of the latest non-SYN segment (at most the
// largest segment the client sent, never below the minimum every path carries). The
// current segment's own bytes are among them; without payload (a FIN) it follows them.
void Burst::release(BurstState& s, FlowEntry& e, L7Ctx& c) {
  const ParsedPacket& p = s.p;
  const bool syn = p.tcp_flags & kTcpSyn;
  if (!c.held && p.payload_len != 0 && p.tcp_seq + (syn ? 1 : 0) == c.stream.base_seq &&
      p.payload_len == c.stream.contiguous) {
    return forward(s.m);  // the whole flight in this segment (a SYN too: TCP Fast Open)
  }
  rte_mbuf* tmpl = !syn ? s.m : c.tmpl;
  ParsedPacket tp;
  if (tmpl == nullptr || parse_frame(frame_of(tmpl), rte_pktmbuf_data_len(tmpl), &tp).status !=
                             ParseStatus::ok) {
    return reset_flow(s, e, DropReason::l7_bad);
  }
  const uint32_t min_seg = e.key.family == 4 ? 536 : 1220;  // RFC 9293 3.7.1, RFC 8200 5
  const uint32_t seg = c.max_seg > min_seg ? c.max_seg : min_seg;
  for (uint32_t off = 0; off < c.stream.contiguous; off += seg) {
    const uint32_t n = std::min(seg, c.stream.contiguous - off);
    rte_mbuf* m = synth_tcp_data(w_.pool, frame_of(tmpl), tp, c.stream.base_seq + off,
                                 c.stream.buf + off, static_cast<uint16_t>(n));
    if (m == nullptr) {  // no mbuf: the flow cannot continue intact
      ++w_.counters->synth_failed;
      return reset_flow(s, e, DropReason::l7_no_context);
    }
    ++w_.counters->l7_released;
    forward(m);
  }
  c.held = false;
  if (c.tmpl != nullptr) {
    rte_pktmbuf_free(c.tmpl);
    c.tmpl = nullptr;
  }
  if (p.payload_len != 0 || syn) {
    rte_pktmbuf_free(s.m);  // its bytes left in the segments above
  } else {
    forward(s.m);  // a FIN after the data
  }
}

// An allowed flow still watched: later requests/hellos must name the same name.
// Returns false when the packet was consumed (the flow was reset).
bool Burst::watch(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  L7Ctx& c = w_.l7[e.l7_slot];
  const l7::ReasmResult r = l7::reasm_insert(&c.stream, p.tcp_seq + ((p.tcp_flags & kTcpSyn) ? 1 : 0),
                                             frame_of(s.m) + p.payload_offset, p.payload_len);
  if (r == l7::ReasmResult::conflict) {
    reset_flow(s, e, DropReason::l7_conflict);
    return false;
  }
  bool stop = r == l7::ReasmResult::over_limit ||
              w_.now_ns - c.start_ns >= w_.policy->settings().l7_timeout_ms * 1000000ull;
  if (c.stream.contiguous >= c.flight.want) {
    l7::Error err;  // the parser compares later units with the first one's name, c.name
    const l7::Status st = l7::parse_tcp_flight(c.stream.buf, c.stream.contiguous,
                                               e.key.remote_port, &c.flight, &c.name, &err);
    if (st == l7::Status::bad) {
      reset_flow(s, e, DropReason::l7_bad);
      return false;
    }
    stop = stop || c.flight.done;
  }
  if (stop) {
    e.l7 = kL7Done;
    l7_close(w_, e);
  }
  return true;
}

// Ends a flow found evasive (malformed first flight, bytes that changed, a second
// name): denied from now on, RST to both ends so neither waits, the packet dropped.
void Burst::reset_flow(BurstState& s, FlowEntry& e, DropReason why) {
  const bool released = e.l7 != kL7Wait;
  reset_flow_at(s, e, why, released ? s.p.tcp_seq : e.isn + 1);
}

// reset_flow() with the server's RST at server_next, the next sequence number the
// server expects from the client.
void Burst::reset_flow_at(BurstState& s, FlowEntry& e, DropReason why, uint32_t server_next) {
  const ParsedPacket& p = s.p;
  e.verdict = Verdict::deny;
  e.rule_index = kNoRule;
  unruled(e);
  e.l7 = kL7Done;
  l7_close(w_, e);
  if (from_ == kInside && !(p.tcp_flags & kTcpRst) && may_answer(p)) rst_both(s, e, server_next);
  drop(s.m, why);
}

// RST to both ends of a TCP flow: back to the client, answering this segment, and on to
// the server at server_next.
void Burst::rst_both(BurstState& s, FlowEntry& e, uint32_t server_next) {
  rte_mbuf* back = synth_rst_reply(w_.pool, frame_of(s.m), s.p);
  rte_mbuf* fwd = synth_rst_forward(w_.pool, frame_of(s.m), s.p, server_next);
  w_.counters->synth_rst += (back != nullptr) + (fwd != nullptr);
  w_.counters->synth_failed += (back == nullptr) + (fwd == nullptr);
  if (back != nullptr) send(back, from_);
  if (fwd != nullptr) forward(fwd);
  if (e.resets != 0xff) ++e.resets;
  e.timing |= kRstFromEgw;
  e.tcp_state = TcpState::closed;  // both ends were told: the entry waits out tcp_closing_s
}

// The name of a flow decided without one (for its record): its first payload segment,
// when it starts the stream, is parsed once; nothing is held or reassembled for it.
void Burst::note_name(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  e.l7 = kL7Done;
  if (p.tcp_seq != e.isn + 1 || (p.tcp_flags & kTcpSyn)) return;
  l7::FlightState st;
  l7::Error err;
  l7::FlowName n;
  const uint8_t* payload = frame_of(s.m) + p.payload_offset;
  const l7::Status r =
      l7::parse_tcp_flight(payload, p.payload_len, e.key.remote_port, &st, &n, &err);
  if (r == l7::Status::ok) {
    flow_name_keep(w_, e, n);
    e.name_seen = 1;
    if (w_.policy->has_report()) [[unlikely]]
      report(e);  // report rules with names see it now
    return;
  }
  aux(e).tcp.head.app = static_cast<uint8_t>(st.app);
  // A first unit longer than its segment (a post-quantum-sized ClientHello): follow the
  // stream, without holding anything, until it is complete, when contexts are plentiful
  // (at least half free: flows that must wait for their name come first).
  if (r != l7::Status::need_more || w_.l7_free_top * 2 < w_.l7_cap) return;
  L7Ctx* c = l7_open(e);
  if (c == nullptr) return;
  if (l7::reasm_insert(&c->stream, p.tcp_seq, payload, p.payload_len) != l7::ReasmResult::ok) {
    l7_close(w_, e);
    return;
  }
  c->flight = st;
  e.l7 = kL7Note;
}

// Follows a flow allowed without a name until its first unit names it, for the record
// only: it never drops or holds anything; a malformed or overlong unit just ends it.
void Burst::note_more(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  L7Ctx& c = w_.l7[e.l7_slot];
  const l7::ReasmResult r = l7::reasm_insert(&c.stream, p.tcp_seq,
                                             frame_of(s.m) + p.payload_offset, p.payload_len);
  l7::Status st = l7::Status::need_more;
  if (r == l7::ReasmResult::ok && c.stream.contiguous >= c.flight.want) {
    l7::Error err;
    st = l7::parse_tcp_flight(c.stream.buf, c.stream.contiguous, e.key.remote_port, &c.flight,
                              &c.name, &err);
    if (st == l7::Status::ok) {
      flow_name_keep(w_, e, c.name);
      e.name_seen = 1;
      if (w_.policy->has_report()) [[unlikely]]
        report(e);  // report rules with names see it now
    }
  }
  if (st != l7::Status::need_more || r != l7::ReasmResult::ok || l7_timed_out(e)) {
    e.l7 = kL7Done;
    l7_close(w_, e);
  }
}

// A 32-bit key of a DNS message's id and question, to match a response with its query
// (never 0: an empty pending slot).
uint32_t dns_key(const l7::DnsQuery& q) {
  uint32_t h = 2166136261u;
  auto mix = [&h](uint8_t b) { h = (h ^ b) * 16777619u; };
  mix(static_cast<uint8_t>(q.id >> 8));
  mix(static_cast<uint8_t>(q.id));
  for (uint8_t i = 0; i < q.name.len; ++i) mix(static_cast<uint8_t>(q.name.buf[i]));
  mix(static_cast<uint8_t>(q.qtype >> 8));
  mix(static_cast<uint8_t>(q.qtype));
  mix(static_cast<uint8_t>(q.qclass >> 8));
  mix(static_cast<uint8_t>(q.qclass));
  return h != 0 ? h : 1;
}

// DNS over UDP: every query is judged on its own name (REFUSED back for reject: the
// query never leaves); a response passes only when it answers a query that passed
// (same id and question), once.
void Burst::handle_dns(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  const uint8_t* msg = frame_of(s.m) + p.payload_offset;
  l7::DnsQuery q;
  l7::Error err;
  FlowAux::Dns& a = aux(e).dns;
  if (from_ == kOutside) {
    if (e.inspect == kInspectMatched) return drop(s.m, DropReason::policy_deny);
    if (l7::parse_dns_response(msg, p.payload_len, &q, &err) != l7::Status::ok)
      return drop(s.m, DropReason::dns_unsolicited);
    const uint32_t key = dns_key(q);
    for (unsigned i = 0; i < FlowAux::kDnsPending; ++i) {
      if (a.key[i] == key) {
        a.key[i] = 0;
        w_.flows.settle(&e);
        if (e.timing & kTimingEvents) timing(e, 1, 1);
        return forward(s.m);
      }
    }
    return drop(s.m, DropReason::dns_unsolicited);
  }
  if (l7::parse_dns_query(msg, p.payload_len, &q, &err) != l7::Status::ok)
    return drop(s.m, DropReason::l7_bad);
  if (!e.name_seen) {  // the record names the first query
    l7::FlowName n;
    n.app = l7::AppProto::dns;
    n.has_name = true;
    n.name = q.name;
    flow_name_keep(w_, e, n);
    e.name_seen = 1;
  }
  Decision d{e.verdict, e.rule_index};  // a flow an inspect rule ended stays ended
  if (e.inspect != kInspectMatched) {
    d = w_.policy->classify(e.key);
    if (d.needs_name) d = w_.policy->decide_name(e.key, d, &q.name, w_.id);
    e.verdict = d.verdict;
    e.rule_index = d.rule_index;
    e.policy_version = static_cast<uint32_t>(w_.policy_version);
    ruled(e);
    d.verdict = e.verdict;  // its rule's limits may have refused it
  }
  if (d.verdict == Verdict::allow) {
    if (inspecting() && !inspect_udp(s, e)) return;
    a.key[a.next] = dns_key(q);
    a.next = static_cast<uint8_t>((a.next + 1) % FlowAux::kDnsPending);
    return pass(s);
  }
  if (d.verdict == Verdict::reject) refuse_dns(s);
  drop(s.m, d.verdict == Verdict::reject ? DropReason::policy_reject : DropReason::policy_deny);
}

// A DNS REFUSED answer to the query in s, when one may be sent.
void Burst::refuse_dns(BurstState& s) {
  if (!may_answer(s.p)) return;
  rte_mbuf* r = synth_dns_refused(w_.pool, frame_of(s.m), s.p);
  if (r == nullptr) {
    ++w_.counters->synth_failed;
  } else {
    ++w_.counters->synth_dns;
    send(r, from_);
  }
}

// ---- Payload inspection (docs/l7.md) -------------------------------------------------

// Whether the flow's outbound payload is scanned, decided at its first payload and again
// after every policy change: some inspect rule covers its source service, and not all
// of inspect_max_bytes has been scanned.
bool Burst::inspect_on(FlowEntry& e) {
  if (e.inspect == kInspectMatched) return false;
  if (e.inspect == kInspectUnknown || e.inspect_gen != w_.policy_gen) {
    // The sequence number survives a policy change only for a flow that was scanned:
    // any other may have sent payload meanwhile (inspect_tcp then starts mid-flow).
    if (e.inspect_gen != w_.policy_gen && e.inspect != kInspectOn) e.inspect_seq = 0;
    const bool on =
        w_.policy->inspects(e.key) && e.inspected < w_.policy->settings().inspect_max_bytes;
    if (!on) e.inspect_seq = 0;
    e.inspect = on ? kInspectOn : kInspectOff;
    e.inspect_gen = w_.policy_gen;
  }
  return e.inspect == kInspectOn;
}

// Scans the next len bytes of a TCP flow's outbound stream (opened at its first bytes),
// within inspect_max_bytes: past it the stream closes and the flow is no longer
// inspected. Returns the inspect index that matched, kNoMatch, or kScanFailed (no stream
// block, or Hyperscan refused the scan: the caller fails closed).
int32_t Burst::scan_stream(FlowEntry& e, FlowAux& a, const uint8_t* data, uint32_t len) {
  const uint32_t limit = w_.policy->settings().inspect_max_bytes;
  const uint32_t n = std::min(len, limit - e.inspected);  // inspect_on(): inspected < limit
  if (a.tcp.inspect_stream == nullptr) {
    a.tcp.inspect_stream = inspect_open(*w_.policy, w_.streams, w_.flows.index_of(&e));
    if (a.tcp.inspect_stream == nullptr) return kScanFailed;
    ++w_.counters->inspect_streams;
  }
  const int32_t hit = inspect_scan(*w_.policy, w_.id, a.tcp.inspect_stream, e.key, data, n);
  e.inspected += n;
  w_.counters->inspect_bytes += n;
  if (hit == kScanFailed) {
    inspect_stop(e, a);
  } else if (hit == kNoMatch && e.inspected >= limit) {
    inspect_stop(e, a);
    ++w_.counters->inspect_limit_reached;
  }
  return hit;
}

// An outbound TCP segment of an allowed flow: its bytes past those already scanned are
// scanned, in sequence order. A segment starting beyond them (a gap) is dropped, so the
// client resends in order and the server gets exactly the bytes that were scanned. The
// part of a retransmission already scanned is not compared (see docs/l7.md).
bool Burst::inspect_tcp(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  if (!inspect_on(e)) return true;
  FlowAux& a = aux(e);
  uint32_t& next = a.tcp.inspect_next;
  const uint32_t seq = p.tcp_seq + ((p.tcp_flags & kTcpSyn) ? 1 : 0);
  if (!e.inspect_seq) {
    // Covered from mid-flow on (a policy change): scanned from the highest byte the
    // client has sent, this segment included when it is the one that sent it. Earlier
    // bytes passed unscanned; a later copy of them passes as a retransmission.
    const uint32_t sent = e.tcp[0].end - (e.tcp[0].fin ? 1 : 0);
    next = seq + p.payload_len == sent ? seq : sent;
    e.inspect_seq = 1;
  }
  const int64_t ahead = static_cast<int32_t>(seq - next);
  if (ahead > 0) {
    drop(s.m, DropReason::inspect_gap);
    return false;
  }
  const uint64_t seen = static_cast<uint64_t>(-ahead);
  if (seen >= p.payload_len) return true;  // every byte scanned before: a retransmission
  const uint32_t server_next = next;
  next = seq + p.payload_len;
  const int32_t hit = scan_stream(e, a, frame_of(s.m) + p.payload_offset + seen,
                                  p.payload_len - static_cast<uint32_t>(seen));
  if (hit == kNoMatch) return true;
  if (hit == kScanFailed) {
    reset_flow_at(s, e, DropReason::inspect_no_stream, server_next);
  } else {
    inspect_matched(s, e, static_cast<uint32_t>(hit), server_next);
  }
  return false;
}

// The client's FIN: once every byte before it has been scanned, none can follow, and the
// stream's block goes back to the pool (a byte after a FIN would get a new stream).
void Burst::inspect_fin(const BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  FlowAux& a = aux(e);
  if (a.tcp.inspect_stream == nullptr || !e.inspect_seq) return;
  if (p.tcp_seq + ((p.tcp_flags & kTcpSyn) ? 1 : 0) + p.payload_len != a.tcp.inspect_next) return;
  inspect_close(a.tcp.inspect_stream);
  a.tcp.inspect_stream = nullptr;
}

// The first flight of a flow that waited for its name, allowed: scanned whole before
// release() sends it ([0, contiguous), the bytes it forwards). The server has been sent
// nothing past the handshake yet.
bool Burst::inspect_flight(BurstState& s, FlowEntry& e, const L7Ctx& c) {
  if (!inspecting() || c.stream.contiguous == 0 || !inspect_on(e)) return true;
  FlowAux& a = aux(e);
  e.inspect_seq = 1;
  a.tcp.inspect_next = c.stream.base_seq + c.stream.contiguous;
  const int32_t hit = scan_stream(e, a, c.stream.buf, c.stream.contiguous);
  if (hit == kNoMatch) return true;
  if (hit == kScanFailed) {
    reset_flow_at(s, e, DropReason::inspect_no_stream, c.stream.base_seq);
  } else {
    inspect_matched(s, e, static_cast<uint32_t>(hit), c.stream.base_seq);
  }
  return false;
}

// An outbound UDP datagram of an allowed flow, scanned on its own (on the worker's
// datagram stream, reset after each). A fragmented datagram of an inspected flow is
// dropped (its first fragment: the others then find no datagram to follow): they would
// pass unscanned. An atomic fragment is a whole datagram.
bool Burst::inspect_udp(BurstState& s, FlowEntry& e) {
  const ParsedPacket& p = s.p;
  if (!inspect_on(e)) return true;
  if (p.is_fragment && p.more_fragments) {
    drop(s.m, DropReason::inspect_fragment);
    return false;
  }
  if (p.payload_len == 0) return true;
  if (w_.dgram == nullptr) {
    w_.dgram = inspect_open(*w_.policy, w_.streams, kDgramOwner);
    if (w_.dgram != nullptr) ++w_.counters->inspect_streams;
  }
  const uint32_t limit = w_.policy->settings().inspect_max_bytes;
  const uint32_t n = std::min<uint32_t>(p.payload_len, limit - e.inspected);
  const int32_t hit = w_.dgram == nullptr ? kScanFailed
                                          : inspect_datagram(*w_.policy, w_.id, w_.dgram, e.key,
                                                             frame_of(s.m) + p.payload_offset, n,
                                                             n == p.payload_len);
  e.inspected += n;
  w_.counters->inspect_bytes += n;
  if (hit == kScanFailed) {  // fail closed; the next datagram gets a fresh stream
    inspect_close(w_.dgram);
    w_.dgram = nullptr;
    e.verdict = Verdict::deny;
    e.rule_index = kNoRule;
    unruled(e);
    drop(s.m, DropReason::inspect_no_stream);
    return false;
  }
  if (hit >= 0) {
    inspect_matched(s, e, static_cast<uint32_t>(hit), 0);
    return false;
  }
  if (e.inspected >= limit) {
    e.inspect = kInspectOff;
    ++w_.counters->inspect_limit_reached;
  }
  return true;
}

// A pattern of inspect rule `index` matched: the flow ends with the rule's action (deny:
// dropped silently from now on; reject: RST to both ends, the server's at server_next,
// or for UDP an ICMP port unreachable, a REFUSED answer for DNS), and its record names
// the rule.
void Burst::inspect_matched(BurstState& s, FlowEntry& e, uint32_t index, uint32_t server_next) {
  e.inspect = kInspectMatched;
  if (e.key.proto == kProtoTcp) {
    FlowAux& a = aux(e);
    inspect_close(a.tcp.inspect_stream);
    a.tcp.inspect_stream = nullptr;
  }
  e.verdict = w_.policy->inspect_verdict(index);
  e.rule_index = w_.policy->inspect_rule_index(index);
  e.policy_version = static_cast<uint32_t>(w_.policy_version);
  ruled(e);
  e.l7 = kL7Done;
  l7_close(w_, e);
  ++w_.counters->inspect_matches;
  if (index < abi::kMaxInspectRules) ++w_.inspect_hits[index];
  if (e.verdict == Verdict::reject) {
    if (e.key.proto == kProtoTcp) {
      if (may_answer(s.p)) rst_both(s, e, server_next);
    } else if (e.key.remote_port == 53) {
      refuse_dns(s);
    } else {
      reject(s, &e);
    }
  }
  drop(s.m, DropReason::inspect_match);
}

void Burst::handle(BurstState& s) {
  EGW_STAGE(w_, lookup);
  const ParsedPacket& p = s.p;
  if (p.icmp_is_error) return handle_icmp_error(s);
  FlowEntry* e = w_.flows.lookup(s.key, s.hash, w_.now_ns);
  if (e != nullptr && p.l34.proto == kProtoTcp && from_ == kInside &&
      (p.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn &&
      e->tcp_state >= TcpState::closing) {
    w_.flows.remove(e, EndReason::closed);  // the port is reused by a new connection
    e = nullptr;
  }
  if (e == nullptr) {
    EGW_STAGE(w_, classify);
    return handle_new(s);
  }
  EGW_STAGE(w_, track);
  handle_flow(s, *e);
}

}  // namespace

bool LongNamePool::init(uint32_t slots) {
  destroy();
  if (slots == 0) return true;
  mem_ = static_cast<char*>(rte_zmalloc("egw_long_names", size_t{slots} * kSlotBytes, 64));
  free_ = static_cast<uint32_t*>(rte_zmalloc("egw_long_names_free", sizeof(uint32_t) * slots, 0));
  if (mem_ == nullptr || free_ == nullptr) {
    destroy();
    return false;
  }
  for (uint32_t i = 0; i < slots; ++i) free_[i] = slots - 1 - i;
  free_top_ = count_ = slots;
  return true;
}

void LongNamePool::destroy() {
  rte_free(mem_);
  rte_free(free_);
  mem_ = nullptr;
  free_ = nullptr;
  free_top_ = count_ = 0;
}

bool flow_name_keep(WorkerCtx& w, const FlowEntry& e, const l7::FlowName& n) {
  FlowAux& a = w.aux[w.flows.index_of(&e)];
  const AuxKind kind = aux_kind(e.key);
  name_forget(w, kind, a);
  uint32_t room;
  char* text = text_of(a, kind, &room);
  NameHead h;
  h.app = static_cast<uint8_t>(n.app);
  h.flags =
      (n.has_name ? kNameHas : 0) | (n.ip_literal ? kNameIpLiteral : 0) | (n.ech ? kNameEch : 0);
  h.alpn_len = static_cast<uint8_t>(std::min<uint32_t>(n.alpn_len, kAlpnMax));
  h.name_len = static_cast<uint8_t>(std::min<size_t>(n.name.len, l7::kMaxName));
  char all[kTextMax];
  std::memcpy(all, n.alpn, h.alpn_len);
  std::memcpy(all + h.alpn_len, n.name.buf, h.name_len);
  const uint32_t len = h.alpn_len + h.name_len;
  bool kept = true;
  if (len <= room) {
    std::memcpy(text, all, len);
  } else if (const uint32_t slot = w.long_names.take(); slot != kNil) {
    ++w.counters->l7_names_long;
    h.flags |= kNameLong;
    const uint32_t here = room - sizeof slot;
    std::memcpy(text, &slot, sizeof slot);
    std::memcpy(text + sizeof slot, all, here);
    std::memcpy(w.long_names.at(slot), all + here, len - here);
  } else {
    ++w.counters->l7_names_lost;
    h.flags = (h.flags & kNameEch) | kNameLost;  // the ALPN always fits
    h.name_len = 0;
    std::memcpy(text, all, h.alpn_len);
    kept = false;
  }
  head_of(a, kind) = h;
  return kept;
}

void flow_name_load(const WorkerCtx& w, const FlowKey& k, const FlowAux& a, l7::FlowName* out) {
  *out = l7::FlowName{};
  const AuxKind kind = aux_kind(k);
  const NameHead h = head_of(a, kind);
  uint32_t room;
  const char* text = text_of(a, kind, &room);
  uint32_t alpn = std::min<uint32_t>(h.alpn_len, kAlpnMax);
  uint32_t name = std::min<uint32_t>(h.name_len, l7::kMaxName);
  char all[kTextMax];
  const char* rest = nullptr;  // the slot of a long name
  if (h.flags & kNameLong) {
    uint32_t slot;
    std::memcpy(&slot, text, sizeof slot);
    rest = w.long_names.at(slot);
    text += sizeof slot;
    room -= sizeof slot;
  }
  if (rest == nullptr) {  // without a slot, what fits is all there is
    alpn = std::min(alpn, room);
    name = std::min(name, room - alpn);
  }
  const uint32_t len = alpn + name, here = std::min(len, room);
  std::memcpy(all, text, here);
  if (len > here) std::memcpy(all + here, rest, len - here);
  out->app = h.app <= static_cast<uint8_t>(l7::AppProto::quic) ? static_cast<l7::AppProto>(h.app)
                                                               : l7::AppProto::unknown;
  out->has_name = h.flags & kNameHas;
  out->ip_literal = h.flags & kNameIpLiteral;
  out->ech = h.flags & kNameEch;
  out->alpn_len = static_cast<uint8_t>(alpn);
  std::memcpy(out->alpn, all, alpn);
  out->name.len = static_cast<uint8_t>(name);
  std::memcpy(out->name.buf, all + alpn, name);
}

bool worker_init(WorkerCtx& w, const WorkerConfig& cfg, FlowRecordRing* records) {
  w.id = cfg.id;
  w.pool = cfg.pool;
  w.records = records;
  w.record_sample = cfg.record_sample ? cfg.record_sample : 1;
  w.workers = cfg.workers ? cfg.workers : 1;
  w.slot_names = cfg.slot_names;
  if (!w.limits.init(cfg.limit_entries, cfg.hash_seed[1] ^ 0x5bd1e9955bd1e995ull)) return false;
  w.rule_slots = std::max<uint32_t>(cfg.rule_slots, stats::kFirstRuleSlot);
  if (cfg.stats != nullptr) {
    w.counters = &cfg.stats->counters;
    w.rules = reinterpret_cast<stats::RuleCounters*>(reinterpret_cast<char*>(cfg.stats) +
                                                     cfg.rules_offset);
  } else {
    w.rules = static_cast<stats::RuleCounters*>(
        rte_zmalloc("egw_rule_counters", sizeof(stats::RuleCounters) * w.rule_slots, 64));
    if (w.rules == nullptr) return false;
    w.own_rules = true;
  }
  uint64_t seed[2] = {cfg.hash_seed[0], cfg.hash_seed[1]};
  if (!w.flows.init(cfg.flow_capacity, seed)) return false;
  if (!w.frags.init(cfg.frag_capacity, cfg.hash_seed[0] ^ 0x9e3779b97f4a7c15ull)) return false;
  w.flows.set_on_end(on_flow_end, &w);
  const uint32_t n = cfg.l7_contexts;
  const uint32_t streams = cfg.inspect_streams != WorkerConfig::kAutoStreams
                               ? cfg.inspect_streams
                               : std::min(cfg.flow_capacity / 4, WorkerConfig::kMaxAutoStreams);
  const uint32_t long_names = cfg.long_names != WorkerConfig::kAutoLongNames
                                  ? cfg.long_names
                                  : cfg.flow_capacity / WorkerConfig::kLongNameShare;
  inspect_install_allocator();
  w.inspect_hits = static_cast<uint64_t*>(
      rte_zmalloc("egw_inspect_hits", sizeof(uint64_t) * abi::kMaxInspectRules, 64));
  w.aux = static_cast<FlowAux*>(
      rte_zmalloc("egw_flow_aux", sizeof(FlowAux) * size_t{w.flows.capacity()}, 64));
  w.l7 = static_cast<L7Ctx*>(rte_zmalloc("egw_l7", sizeof(L7Ctx) * size_t{n ? n : 1}, 64));
  w.l7_free = static_cast<uint32_t*>(rte_zmalloc("egw_l7_free", sizeof(uint32_t) * (n ? n : 1), 0));
  if (w.aux == nullptr || w.l7 == nullptr || w.l7_free == nullptr || w.inspect_hits == nullptr ||
      !w.long_names.init(long_names) || !w.streams.init(streams) ||
      (n != 0 && !w.reasm.init(n, l7::kReasmMaxBytes))) {
    worker_destroy(w);
    return false;
  }
  for (uint32_t i = 0; i < n; ++i) w.l7_free[i] = n - 1 - i;
  w.l7_free_top = n;
  w.l7_cap = n;
  return true;
}

void worker_destroy(WorkerCtx& w) {
  if (w.aux != nullptr) w.flows.flush(EndReason::shutdown);  // releases segments, streams
  inspect_close(w.dgram);
  w.dgram = nullptr;
  if (inspect_bound() == &w.streams) inspect_bind(nullptr);
  w.streams.destroy();
  rte_free(w.inspect_hits);
  w.inspect_hits = nullptr;
  w.limits.destroy();
  if (w.own_rules) rte_free(w.rules);
  w.rules = nullptr;
  w.own_rules = false;
  rte_free(w.aux);
  w.long_names.destroy();
  rte_free(w.l7);
  rte_free(w.l7_free);
  w.aux = nullptr;
  w.l7 = nullptr;
  w.l7_free = nullptr;
  w.l7_free_top = w.l7_cap = 0;
  w.reasm.destroy();
  w.flows.destroy();
}

WorkerCtx::~WorkerCtx() { worker_destroy(*this); }

void worker_refresh_policy(WorkerCtx& w) {
  const RuntimePolicy* p = w.published.load(std::memory_order_acquire);
  if (p == w.policy) return;
  // Every open stream belongs to the old policy's database: closed now, while it still
  // exists. Their flows reopen one on the new database with their next payload.
  uint32_t owner = 0;
  for (uint32_t left = w.streams.in_use(); left != 0; --left) {
    hs_stream* s = static_cast<hs_stream*>(w.streams.last_in_use(&owner));
    if (owner < w.flows.capacity()) w.aux[owner].tcp.inspect_stream = nullptr;
    if (s == w.dgram) w.dgram = nullptr;
    inspect_close(s);
    ++w.counters->inspect_swap_closed;
  }
  if (w.inspect_hits != nullptr)
    std::memset(w.inspect_hits, 0, sizeof(uint64_t) * abi::kMaxInspectRules);
  ++w.policy_gen;
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
  w.counters->rx_packets += n;
  inspect_bind(&w.streams);  // hs_open_stream draws from this worker's blocks
  EGW_STAGE(w, parse);
  Burst burst(w, from, out);
  BurstState* const st = w.burst;  // reused: constructing 32 ParsedPackets costs more than parsing
  unsigned count = 0;

  // Stage 1: parse every packet, build its flow key and hash; bridge ARP/ND.
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    BurstState& s = st[count];
    s.m = m;
    if (i + 2 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 2], void*));
    // A NIC that checks IPv4 header checksums (RX offload) saves summing them here; one
    // that found a bad one has decided already.
    const uint64_t ip_csum = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    if (ip_csum == RTE_MBUF_F_RX_IP_CKSUM_BAD) {
      burst.drop(m, DropReason::bad_ipv4_checksum);
      continue;
    }
    const ParseResult r = parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m),
                                      &s.p, ip_csum == RTE_MBUF_F_RX_IP_CKSUM_GOOD);
    if (r.status == ParseStatus::drop) {
      burst.drop(m, r.reason);
      continue;
    }
    if (s.p.kind != FrameKind::ip) {
      ++w.counters->passed_arp_nd;
      burst.forward(m);
      continue;
    }
    // Fragments are tracked in stage 2, in arrival order: a later fragment must see
    // the decision its first fragment got earlier in the same burst.
    if (s.p.is_fragment && s.p.frag_offset != 0) {
      s.hash = 0;
      ++count;
      continue;
    }
    if (!s.p.icmp_is_error) {  // ICMP errors are looked up by the packet they quote
      make_key(s.p.l34, s.p.vlan, from == kInside, &s.key);
      s.hash = w.flows.hash(s.key);
      w.flows.prefetch(s.hash);
    } else {
      s.hash = 0;  // looked up by its quoted packet; stage 2 prefetches nothing useful for it
    }
    ++count;
  }

  // Stage 2: in order, track fragments, look up (buckets prefetched above), classify
  // misses, act.
  for (unsigned i = 0; i < count; ++i) {
    BurstState& s = st[i];
    EGW_STAGE(w, lookup);
    // The flow entries a few packets ahead: their buckets were prefetched in stage 1.
    if (i + kEntryPrefetchAhead < count) w.flows.prefetch_entry(st[i + kEntryPrefetchAhead].hash);
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
      ++w.counters->frag_tracked;  // a first fragment: classified like any packet
    }
    burst.handle(s);
  }
  EGW_STAGE_STOP(w);
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
