// Payload inspection: Hyperscan stream state in fixed per-worker blocks, and the scans
// of the worker pipeline (docs/l7.md, "Payload inspection").
// hs_open_stream allocates through the process's stream allocator: installed once
// (inspect_install_allocator), it serves the pool bound to the calling thread
// (inspect_bind), so worker lcores never reach malloc. A request larger than a block,
// or an empty pool, fails the open: the caller fails closed. Threads with no pool bound
// (tests, tools) get the heap.
#pragma once

#include <cstddef>
#include <cstdint>

struct hs_stream;

namespace egw {

class RuntimePolicy;
struct FlowKey;

// Fixed blocks of abi::kInspectStreamBlock bytes, allocated once on the control thread.
// get()/put() run on the owning worker lcore only (put() also after it stopped):
// O(1), no allocation, no locks.
class StreamPool {
 public:
  bool init(uint32_t blocks);
  void destroy();  // every block must be back
  ~StreamPool() { destroy(); }

  // A block for `bytes` bytes, or nullptr (too large, or none free).
  void* get(size_t bytes);
  // Returns the block p (from any pool's get()) to the pool it came from.
  static void put(void* p);

  // Who holds an in-use block (a flow index, or any value the caller chooses).
  void set_owner(const void* p, uint32_t owner);
  // The most recently taken block still in use and its owner; nullptr when none.
  void* last_in_use(uint32_t* owner) const;

  uint32_t in_use() const { return used_; }
  uint32_t capacity() const { return count_; }

  struct Header;  // in front of each block

 private:
  Header* header(uint32_t block) const;
  void release(uint32_t block);

  uint8_t* mem_ = nullptr;
  uint32_t* used_list_ = nullptr;  // blocks in use, in the order taken (a dense array)
  uint32_t* free_ = nullptr;       // stack of free blocks
  uint32_t free_top_ = 0;
  uint32_t used_ = 0;
  uint32_t count_ = 0;
};

// Installs the pool allocator as Hyperscan's stream allocator; idempotent, thread safe.
// Call before any stream is opened (worker_init does).
void inspect_install_allocator();
// Makes `pool` the one hs_open_stream draws from on this thread (nullptr: none).
void inspect_bind(StreamPool* pool);
// The pool bound to this thread (tests).
StreamPool* inspect_bound();

// Opens a stream of p's inspect database from the bound pool, owned by `owner`;
// nullptr when that fails (no block: fail closed).
hs_stream* inspect_open(const RuntimePolicy& p, StreamPool& pool, uint32_t owner);
// Closes a stream without reporting end-of-data matches (its database may be gone);
// its block returns to its pool.
void inspect_close(hs_stream* s);

// Outcome of a scan: the inspect index that matched (applying to the flow), kNoMatch,
// or kScanFailed (Hyperscan refused the scan: fail closed).
constexpr int32_t kNoMatch = -1, kScanFailed = -2;

// Scans the next len bytes of a flow's stream. Matches of inspect rules whose from does
// not cover the flow are ignored; the first that applies stops the scan.
int32_t inspect_scan(const RuntimePolicy& p, unsigned worker, hs_stream* s, const FlowKey& key,
                     const uint8_t* data, uint32_t len);
// Scans one datagram on a stream kept for datagrams, then resets it for the next one.
// whole: data is the whole datagram, so patterns anchored at its end ($) may match too.
int32_t inspect_datagram(const RuntimePolicy& p, unsigned worker, hs_stream* s, const FlowKey& key,
                         const uint8_t* data, uint32_t len, bool whole);

}  // namespace egw
