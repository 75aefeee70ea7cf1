// First-flight reassembly: the client's first bytes of a TCP flow, in order, from
// segments that may arrive split to single bytes, out of order, or retransmitted.
// Bounded: a stream covers at most kReasmMaxBytes (and the policy's l7_max_bytes);
// bytes beyond it are refused, never buffered. Overlapping bytes must be equal: a
// retransmission that differs inside what was already seen is an evasion (the flow is
// denied, never decided on a later copy).
// Worker lcores: no allocation (buffers come from a per-worker ReasmPool made at start).
#pragma once

#include <cstddef>
#include <cstdint>

namespace egw::l7 {

constexpr uint32_t kReasmMaxBytes = 65536;  // the largest limits.l7_max_bytes

// One flow's stream: bytes [0, limit) relative to the flow's first payload byte
// (sequence number base = ISN + 1). `buf`/`filled` come from the pool.
struct ReasmStream {
  uint32_t base_seq = 0;    // sequence number of byte 0
  uint32_t limit = 0;       // bytes this stream may hold (<= kReasmMaxBytes)
  uint32_t contiguous = 0;  // bytes [0, contiguous) are all present
  uint32_t highest = 0;     // one past the highest byte present
  uint32_t slot = UINT32_MAX;  // pool slot; UINT32_MAX when none
  uint8_t* buf = nullptr;      // limit bytes
  uint8_t* filled = nullptr;   // bitmap: bit i set when byte i is present
};

enum class ReasmResult : uint8_t {
  ok,          // stored (possibly nothing new: a duplicate); contiguous may have grown
  old,         // entirely before byte 0 (a retransmitted SYN's data etc.): ignored
  conflict,    // overlaps present bytes with different content: deny the flow
  over_limit,  // a byte at or beyond `limit`: the stream can never complete; deny
};

// A fixed pool of stream buffers for one worker (kReasmMaxBytes + bitmap each).
class ReasmPool {
 public:
  // Allocates `streams` buffers of `bytes_each` (<= kReasmMaxBytes) bytes, on the
  // control thread (rte_malloc when the EAL is up, else the C++ heap).
  bool init(uint32_t streams, uint32_t bytes_each);
  void destroy();
  ~ReasmPool() { destroy(); }

  // Takes a buffer for a stream starting at base_seq, holding at most `limit` bytes
  // (clamped to bytes_each). False when the pool is exhausted (fail closed).
  bool open(ReasmStream* s, uint32_t base_seq, uint32_t limit);
  // Returns the stream's buffer to the pool; *s becomes empty. Idempotent.
  void close(ReasmStream* s);

  uint32_t in_use() const { return used_; }
  uint32_t capacity() const { return count_; }

 private:
  uint8_t* mem_ = nullptr;
  uint32_t* free_ = nullptr;
  uint32_t free_top_ = 0;
  uint32_t count_ = 0;
  uint32_t bytes_each_ = 0;
  uint32_t used_ = 0;
  bool rte_ = false;
};

// Adds a segment's payload (sequence number seq, len bytes). Bytes before byte 0 are
// trimmed (their overlap with the stream start is not compared), bytes already present
// are compared. Work is O(len).
ReasmResult reasm_insert(ReasmStream* s, uint32_t seq, const uint8_t* data, uint32_t len);

}  // namespace egw::l7
