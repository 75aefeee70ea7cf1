// Fragment tracking without reassembly: the first fragment (which carries the L4
// header) is classified like any packet; later fragments follow that decision.
// Overlaps are detected here (DPDK 22.11's ip_frag does not reject them).
// Worker lcores only: fixed-size table per worker, no allocation after init.
#pragma once

#include <cstdint>

#include "dataplane/counters.h"
#include "dataplane/parse.h"

namespace egw {

class FragTable {
 public:
  static constexpr unsigned kMaxPieces = 8;   // disjoint ranges tracked per datagram
  static constexpr uint64_t kTimeoutNs = 5ull * 1000000000;  // datagram lifetime

  bool init(uint32_t capacity, uint64_t seed);
  void destroy();
  ~FragTable() { destroy(); }

  enum class Outcome : uint8_t {
    first,    // first fragment, offset 0: classify it, then call decide()
    allowed,  // later fragment of an allowed datagram: forward
    drop,     // reason set: overlap, orphan, denied, table full
  };

  // Records fragment p (p.is_fragment) that arrived on `side` (0 inside, 1 outside).
  // A first fragment (offset 0) returns `first` (the caller classifies it, then calls
  // decide()), or drop with frag_overlap when its datagram is already recorded (a
  // duplicate first fragment: the datagram is then denied). A later fragment returns
  // allowed, or drop: frag_orphan (no allowed datagram), frag_denied, frag_overlap
  // (and the datagram is denied from then on), frag_table_full (too many pieces).
  Outcome track(const ParsedPacket& p, uint8_t side, uint64_t now_ns, DropReason* reason);
  // After the first fragment was classified: records an allowed datagram (its first
  // piece's range). Returns false when it cannot be recorded (table full: the caller
  // drops the first fragment as frag_table_full, fail closed). A denied datagram is
  // not recorded; returns true.
  bool decide(const ParsedPacket& p, uint8_t side, bool allowed, uint64_t now_ns);

  uint32_t in_use() const { return used_; }

 private:
  struct Entry;
  Entry* find(const ParsedPacket& p, uint8_t side, uint64_t now_ns, Entry** room);
  Entry* entries_ = nullptr;
  uint32_t mask_ = 0;
  uint32_t used_ = 0;
  uint64_t seed_ = 0;
};

}  // namespace egw
