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

  // Records fragment p (p.is_fragment) of its datagram, checking for overlap.
  Outcome track(const ParsedPacket& p, uint64_t now_ns, DropReason* reason);
  // Stores the verdict for p's datagram after its first fragment was classified.
  void decide(const ParsedPacket& p, bool allowed, uint64_t now_ns);

  uint32_t in_use() const { return used_; }

 private:
  struct Entry;
  Entry* find(const ParsedPacket& p, uint64_t now_ns, bool create);
  Entry* entries_ = nullptr;
  uint32_t mask_ = 0;
  uint32_t used_ = 0;
  uint64_t seed_ = 0;
};

}  // namespace egw
