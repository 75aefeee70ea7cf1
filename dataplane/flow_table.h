// Per-worker flow table: keyed hash (per-boot seed), two-choice buckets of 8 slots,
// bounded look-up cost, O(1) aging, embryonic-first eviction when full.
// Worker lcores only: one table per worker, no locks, no allocation after init.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace egw {

// A flow as seen from inside: the inside (initiating) endpoint and the remote one.
// Outbound packets give (src, dst); inbound ones give (dst, src): one entry per flow.
struct FlowKey {
  uint8_t inside_ip[16];
  uint8_t remote_ip[16];
  uint16_t inside_port;  // ICMP echo: the identifier
  uint16_t remote_port;  // ICMP echo: 0
  uint32_t vlan;         // (outer VID << 12) | inner VID
  uint8_t proto;
  uint8_t family;  // 4 or 6
  uint8_t pad[6];  // zero
  bool operator==(const FlowKey& o) const {
#if defined(__SSE2__)
    // Every look-up compares a key: three 16-byte compares, no call.
    const auto* a = reinterpret_cast<const __m128i*>(this);
    const auto* b = reinterpret_cast<const __m128i*>(&o);
    const __m128i d = _mm_or_si128(
        _mm_or_si128(_mm_xor_si128(_mm_loadu_si128(a), _mm_loadu_si128(b)),
                     _mm_xor_si128(_mm_loadu_si128(a + 1), _mm_loadu_si128(b + 1))),
        _mm_xor_si128(_mm_loadu_si128(a + 2), _mm_loadu_si128(b + 2)));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) == 0xffff;
#else
    return std::memcmp(this, &o, sizeof(*this)) == 0;
#endif
  }
};
static_assert(sizeof(FlowKey) == 48, "FlowKey is compared with memcmp: no implicit padding");

enum class TcpState : uint8_t {
  none,         // not TCP
  syn_sent,     // outbound SYN seen
  syn_recv,     // SYN-ACK seen
  established,  // handshake completed
  fin_wait,     // one side sent FIN
  closing,      // both sides sent FIN (TIME_WAIT-like: waits tcp_closing_s)
  closed,       // RST seen, or both FINs acknowledged
};
const char* tcp_state_name(TcpState s);

enum class Verdict : uint8_t { allow = 0, deny = 1, reject = 2 };

// Why a flow ended, as written in its flow record (`active`: a snapshot of a live flow).
// `policy`: the flow was refused (deny, reject) or an inspect rule ended it.
enum class EndReason : uint8_t { timeout, closed, reset, evicted, shutdown, active, policy };
const char* end_reason_name(EndReason r);

// Per-direction TCP sequence tracking (after Rooij, "Real Stateful TCP Packet Filtering").
struct TcpDir {
  uint32_t end = 0;     // highest seq + len sent
  uint32_t maxend = 0;  // highest ack + window seen from the peer
  uint32_t maxwin = 1;  // largest window advertised (scaled)
  uint8_t wscale = 0;
  bool seen = false;    // this direction has sent a segment
  bool fin = false;     // this direction has sent FIN
};

// One flow. Hot fields first (the ones every packet reads).
struct alignas(64) FlowEntry {
  FlowKey key;
  uint64_t last_seen_ns;
  uint32_t policy_version;  // version that decided this flow
  uint16_t rule_index;      // compiled rule that decided; kNoRule for the default action
  Verdict verdict;
  TcpState tcp_state;
  // --- second cache line: stats and tracking
  uint64_t start_ns;
  uint64_t flow_id;
  uint64_t pkts[2];   // [0] outbound (toserver), [1] inbound (toclient)
  uint64_t bytes[2];
  // Response times (docs/observability.md). mark_us is µs after start_ns: the last
  // outbound SYN until the SYN-ACK, then the first request byte until the first
  // response byte.
  uint32_t mark_us;
  uint32_t rtt_us;     // TCP: SYN -> SYN-ACK as seen here; 0 when unknown
  uint32_t ttfb_us;    // first request byte -> first response byte; 0 when none
  uint8_t resets;      // RST segments, egw's own included (saturates at 255)
  uint8_t timing;      // FlowTiming bits
  uint16_t rule_slot;  // stats slot of rule_index (stats_abi.h)
  TcpDir tcp[2];      // [0] outbound sender, [1] inbound sender
  uint32_t embryo_prev;  // intrusive FIFO of embryonic flows (kNil when not in it)
  uint32_t embryo_next;
  // --- L7 (names)
  uint32_t isn;          // TCP: the outbound ISN; the first flight starts at isn + 1
  uint32_t l7_slot;      // the worker's L7 context while waiting/watching; kNil: none
  uint16_t name_first;   // waiting: the first candidate rule, which needs a name
  uint8_t l7;                 // L7Phase (worker.h)
  uint8_t name_seen : 1;      // the flow's name was parsed (the worker's FlowAux keeps it)
  uint8_t limit_checked : 1;  // its rule's rate limit and quota were applied (once a flow)
  uint8_t policed : 1;        // its packets take tokens of its rule's byte rate
  uint8_t quota : 2;          // holds a unit of its rule's quota: 1 + abi::kPer*; 0 none
  uint8_t limited : 2;        // refused by its rule's limits: LimitRefusal (worker.h)
  // --- payload inspection (worker.cc): here, so UDP flows need no other line for it
  uint8_t inspect;       // InspectPhase (worker.h)
  uint8_t inspect_seq;   // TCP: the FlowAux's inspect_next is known
  uint16_t report;       // report-only decision: (verdict + 1) << 14 | rule slot; 0: none
  uint32_t inspected;    // outbound payload bytes scanned
  uint32_t inspect_gen;  // WorkerCtx::policy_gen `inspect` was decided under
};
static_assert(sizeof(FlowEntry) <= 192, "keep the flow entry within three cache lines");

constexpr uint16_t kNoRule = 0xffff;

// FlowEntry::timing. The low bits are events for the worker to account (one test of
// the byte on a line every packet reads); the high ones are kept for the record.
enum FlowTiming : uint8_t {
  kTimingRtt = 1,          // tcp_track just measured rtt_us
  kTimingAwaitRequest = 2, // the next outbound payload starts the request
  kTimingAwaitResponse = 4,// the next inbound payload is the first response byte
  kTimingRst = 8,          // tcp_track just accepted a RST from an end
  kTimingEvents = 15,
  kRstFromClient = 16,     // the inside end sent a RST
  kRstFromServer = 32,     // the remote end sent a RST
  kRstFromEgw = 64,        // egw reset the flow (reject, a refused name, inspect)
};
constexpr uint32_t kNil = 0xffffffff;

// Idle timeouts in nanoseconds, by state (from the policy's limits).
struct FlowTimeouts {
  uint64_t tcp_syn_ns = 30ull * 1000000000;
  uint64_t tcp_established_ns = 3600ull * 1000000000;
  uint64_t tcp_closing_ns = 30ull * 1000000000;
  uint64_t udp_ns = 60ull * 1000000000;
  uint64_t icmp_ns = 30ull * 1000000000;
  uint64_t other_ns = 60ull * 1000000000;
};

// Called for every flow that leaves the table (expired, closed, evicted, flushed), just
// before its entry is freed (the callback may release what the entry refers to).
using FlowEndFn = void (*)(void* ctx, FlowEntry& e, EndReason why);

class FlowTable {
 public:
  static constexpr unsigned kBucketSlots = 8;

  // Sizes the table for `capacity` flows (buckets at most 50% full on average).
  // Allocation happens here only. seed: per-boot random key of the hash.
  bool init(uint32_t capacity, uint64_t seed[2]);
  void destroy();
  ~FlowTable() { destroy(); }

  uint64_t hash(const FlowKey& k) const;
  // Returns the live entry for k, or nullptr. An entry past its timeout is expired
  // first (reported through on_end) and counts as absent.
  FlowEntry* lookup(const FlowKey& k, uint64_t hash, uint64_t now_ns);
  // Prefetches the entry a look-up of hash will most likely find (the first slot of
  // either bucket with its signature): all three lines, as forwarding touches them all.
  // Call a few packets ahead of lookup(), once prefetch() brought the buckets in.
  void prefetch_entry(uint64_t hash) const;
  // Prefetches both candidate buckets of hash (a burst hashes every packet first).
  void prefetch(uint64_t hash) const {
    const uint32_t b1 = static_cast<uint32_t>(hash) & bucket_mask_;
    const uint32_t b2 = static_cast<uint32_t>(hash >> 24) & bucket_mask_;
    if (buckets_ == nullptr) return;
    __builtin_prefetch(&buckets_[b1]);
    __builtin_prefetch(&buckets_[b2]);
  }

  // Inserts a new flow (the caller checked lookup() first). When the table or both
  // candidate buckets are full, evicts an expired, then the oldest embryonic flow;
  // returns nullptr (fail closed) when nothing can be evicted.
  FlowEntry* insert(const FlowKey& k, uint64_t hash, uint64_t now_ns);

  // Removes e (reported through on_end with `why`).
  void remove(FlowEntry* e, EndReason why);

  // Marks e embryonic (SYN_SENT/SYN_RECV) or not; embryonic flows are evicted first.
  void set_embryonic(FlowEntry* e, bool embryonic);
  // set_embryonic(e, false) for every packet of a settled flow: a load and a compare
  // when e is not in the FIFO.
  void settle(FlowEntry* e) {
    if (e->embryo_prev != kNil || embryo_head_ == index_of(e)) set_embryonic(e, false);
  }

  // Ages up to `budget` slots from a clock hand: O(budget) per call.
  void sweep(uint64_t now_ns, unsigned budget);
  // Removes up to `budget` flows (end of replay, shutdown); returns how many.
  uint32_t flush(EndReason why, uint32_t budget = 0xffffffff);

  // The timeout of e's current state.
  uint64_t timeout_of(const FlowEntry& e) const;
  bool expired(const FlowEntry& e, uint64_t now_ns) const {
    // No flow times out sooner than the shortest timeout: one compare per look-up.
    const uint64_t idle = now_ns - e.last_seen_ns;
    return idle >= min_timeout_ns_ && idle >= timeout_of(e);
  }

  void set_timeouts(const FlowTimeouts& t) {
    timeouts_ = t;
    min_timeout_ns_ = std::min({t.tcp_syn_ns, t.tcp_established_ns, t.tcp_closing_ns, t.udp_ns,
                                t.icmp_ns, t.other_ns});
  }
  void set_on_end(FlowEndFn fn, void* ctx) { on_end_ = fn; on_end_ctx_ = ctx; }
  uint32_t size() const { return used_; }
  // Index of a live entry in [0, capacity): for per-flow side tables.
  uint32_t index_of(const FlowEntry* e) const { return static_cast<uint32_t>(e - entries_); }
  uint32_t capacity() const { return capacity_; }
  uint64_t evictions() const { return evictions_; }

  template <typename F>
  void for_each(F&& f) {
    for (uint32_t i = 0; i < capacity_; ++i)
      if (slot_of_[i] != kNil) f(entries_[i]);
  }

 private:
  struct alignas(64) Bucket {
    uint16_t sig[kBucketSlots];  // 0 = empty slot
    uint32_t idx[kBucketSlots];  // entry index
  };
  static_assert(sizeof(Bucket) == 64);

  bool bucket_insert(uint32_t b, uint16_t sig, uint32_t idx);
  void unlink_slot(uint32_t idx);
  void embryo_unlink(uint32_t idx);
  bool make_room(uint32_t b1, uint32_t b2, uint64_t now_ns);

  Bucket* buckets_ = nullptr;
  FlowEntry* entries_ = nullptr;
  uint32_t* slot_of_ = nullptr;  // entry -> (bucket << 3 | slot), kNil when free
  uint32_t* free_ = nullptr;     // stack of free entry indices
  uint32_t free_top_ = 0;
  uint32_t bucket_mask_ = 0;
  uint32_t capacity_ = 0;
  uint32_t used_ = 0;
  uint32_t hand_ = 0;  // sweep clock hand over entries
  uint32_t embryo_head_ = kNil, embryo_tail_ = kNil;
  uint64_t seed_[2] = {};
  // AES rounds where the CPU has AES-NI, else SipHash-1-3: chosen once per table, so
  // no packet branches on it.
  using HashFn = uint64_t (*)(const FlowKey&, const uint64_t seed[2]);
  static HashFn pick_hash();
  HashFn hash_fn_ = pick_hash();
  uint64_t evictions_ = 0;
  FlowTimeouts timeouts_;
  uint64_t min_timeout_ns_ = FlowTimeouts{}.icmp_ns;  // the least of timeouts_
  FlowEndFn on_end_ = nullptr;
  void* on_end_ctx_ = nullptr;
};

// TCP tracking: validates one segment against e's state and updates it.
// dir 0 = outbound (from inside), 1 = inbound. Returns false when the segment
// must be dropped (out of window, invalid flags for the state); *reason says why.
struct ParsedPacket;
enum class DropReason : uint8_t;
bool tcp_track(FlowEntry& e, int dir, const ParsedPacket& p, uint64_t now_ns, DropReason* reason);
// Starts tracking for a new flow from its first (outbound) segment.
void tcp_track_init(FlowEntry& e, const ParsedPacket& p, uint64_t now_ns);

}  // namespace egw
