// Payload inspection: the stream block pools, Hyperscan's stream allocator over them,
// and the scans. Pools are made on the control thread; everything else runs on worker
// lcores (no allocation, no locks, no syscalls).
#include "dataplane/inspect.h"

#include <hs.h>
#include <rte_debug.h>
#include <rte_malloc.h>

#include <cstdlib>
#include <mutex>

#include "dataplane/policy.h"
#include "dataplane/policy_abi.h"

namespace egw {

namespace {

constexpr uint32_t kMagic = 0x45475753;      // "EGWS": a block of a StreamPool
constexpr uint32_t kHeapMagic = 0x45475748;  // "EGWH": from the heap, on a thread with no pool
constexpr uint32_t kFree = 0xffffffff;       // owner of a free block
thread_local StreamPool* t_pool = nullptr;

}  // namespace

// In front of each block: where it belongs, so a block is freed on any thread (a flow
// flushed at shutdown) into its own pool. One cache line keeps the block aligned.
struct alignas(64) StreamPool::Header {
  StreamPool* pool;
  uint32_t magic;
  uint32_t index;  // block number in the pool
  uint32_t pos;    // position in used_list_ while in use
  uint32_t owner;  // kFree when free
};
static_assert(sizeof(StreamPool::Header) == 64);

namespace {

constexpr size_t kStride = sizeof(StreamPool::Header) + abi::kInspectStreamBlock;
static_assert(kStride % 64 == 0);

// Worker threads always have a pool bound (inspect_open() checks it). A thread without
// one (tests, tools linking Hyperscan) gets the heap, as without this allocator.
void* stream_alloc(size_t bytes) {
  if (t_pool != nullptr) return t_pool->get(bytes);
  const size_t total = sizeof(StreamPool::Header) + (bytes + 63) / 64 * 64;
  auto* h = static_cast<StreamPool::Header*>(aligned_alloc(64, total));
  if (h == nullptr) return nullptr;
  h->pool = nullptr;
  h->magic = kHeapMagic;
  return reinterpret_cast<uint8_t*>(h) + sizeof(StreamPool::Header);
}

void stream_free(void* p) {
  if (p == nullptr) return;
  auto* h =
      reinterpret_cast<StreamPool::Header*>(static_cast<uint8_t*>(p) - sizeof(StreamPool::Header));
  if (h->magic == kHeapMagic) {
    h->magic = 0;
    free(h);
  } else {
    StreamPool::put(p);
  }
}

}  // namespace

StreamPool::Header* StreamPool::header(uint32_t block) const {
  return reinterpret_cast<Header*>(mem_ + size_t{block} * kStride);
}

bool StreamPool::init(uint32_t blocks) {
  destroy();
  if (blocks == 0) return true;
  mem_ = static_cast<uint8_t*>(rte_malloc("egw_streams", size_t{blocks} * kStride, 64));
  used_list_ = static_cast<uint32_t*>(rte_malloc("egw_streams_used", sizeof(uint32_t) * blocks, 0));
  free_ = static_cast<uint32_t*>(rte_malloc("egw_streams_free", sizeof(uint32_t) * blocks, 0));
  if (mem_ == nullptr || used_list_ == nullptr || free_ == nullptr) {
    destroy();
    return false;
  }
  count_ = blocks;
  for (uint32_t i = 0; i < blocks; ++i) {
    Header* h = header(i);
    h->pool = this;
    h->magic = kMagic;
    h->index = i;
    h->pos = 0;
    h->owner = kFree;
    free_[i] = blocks - 1 - i;
  }
  free_top_ = blocks;
  used_ = 0;
  return true;
}

void StreamPool::destroy() {
  RTE_VERIFY(used_ == 0);  // a stream still open would point into freed memory
  rte_free(mem_);
  rte_free(used_list_);
  rte_free(free_);
  mem_ = nullptr;
  used_list_ = free_ = nullptr;
  free_top_ = count_ = 0;
}

void* StreamPool::get(size_t bytes) {
  if (bytes > abi::kInspectStreamBlock || free_top_ == 0) return nullptr;
  const uint32_t block = free_[--free_top_];
  Header* h = header(block);
  h->pos = used_;
  h->owner = 0;
  used_list_[used_++] = block;
  return reinterpret_cast<uint8_t*>(h) + sizeof(Header);
}

void StreamPool::put(void* p) {
  Header* h = reinterpret_cast<Header*>(static_cast<uint8_t*>(p) - sizeof(Header));
  RTE_VERIFY(h->magic == kMagic && h->owner != kFree);
  h->pool->release(h->index);
}

void StreamPool::release(uint32_t block) {
  Header* h = header(block);
  const uint32_t last = used_list_[--used_];
  used_list_[h->pos] = last;
  header(last)->pos = h->pos;
  h->owner = kFree;
  free_[free_top_++] = block;
}

void StreamPool::set_owner(const void* p, uint32_t owner) {
  auto* h = reinterpret_cast<Header*>(const_cast<uint8_t*>(static_cast<const uint8_t*>(p)) -
                                      sizeof(Header));
  h->owner = owner;
}

void* StreamPool::last_in_use(uint32_t* owner) const {
  if (used_ == 0) return nullptr;
  Header* h = header(used_list_[used_ - 1]);
  *owner = h->owner;
  return reinterpret_cast<uint8_t*>(h) + sizeof(Header);
}

void inspect_install_allocator() {
  static std::once_flag once;
  std::call_once(
      once, [] { RTE_VERIFY(hs_set_stream_allocator(stream_alloc, stream_free) == HS_SUCCESS); });
}

void inspect_bind(StreamPool* pool) {
  t_pool = pool;
}

StreamPool* inspect_bound() {
  return t_pool;
}

hs_stream* inspect_open(const RuntimePolicy& p, StreamPool& pool, uint32_t owner) {
  hs_stream_t* s = nullptr;
  if (p.inspect_db() == nullptr || t_pool != &pool ||
      hs_open_stream(p.inspect_db(), 0, &s) != HS_SUCCESS || s == nullptr)
    return nullptr;
  pool.set_owner(s, owner);
  return s;
}

void inspect_close(hs_stream* s) {
  if (s != nullptr) hs_close_stream(s, nullptr, nullptr, nullptr);
}

namespace {

// A match callback's context: the first match of an inspect rule covering the flow.
struct Search {
  const RuntimePolicy* p;
  const FlowKey* key;
  int32_t hit;
};

int on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  auto* s = static_cast<Search*>(ctx);
  if (!s->p->inspect_applies(id, *s->key)) return 0;  // another service's rule
  s->hit = static_cast<int32_t>(id);
  return 1;  // stop: the flow ends here
}

}  // namespace

int32_t inspect_scan(const RuntimePolicy& p, unsigned worker, hs_stream* s, const FlowKey& key,
                     const uint8_t* data, uint32_t len) {
  Search search{&p, &key, kNoMatch};
  const hs_error_t rc = hs_scan_stream(s, reinterpret_cast<const char*>(data), len, 0,
                                       p.scratch(worker), on_match, &search);
  if (search.hit >= 0) return search.hit;
  return rc == HS_SUCCESS ? kNoMatch : kScanFailed;
}

int32_t inspect_datagram(const RuntimePolicy& p, unsigned worker, hs_stream* s, const FlowKey& key,
                         const uint8_t* data, uint32_t len, bool whole) {
  Search search{&p, &key, kNoMatch};
  hs_scratch_t* scratch = p.scratch(worker);
  hs_error_t rc =
      hs_scan_stream(s, reinterpret_cast<const char*>(data), len, 0, scratch, on_match, &search);
  const bool scanned = rc == HS_SUCCESS;
  // The reset reports end-of-data matches of a whole datagram, and readies the stream.
  const bool eod = scanned && whole && search.hit < 0;
  rc = hs_reset_stream(s, 0, eod ? scratch : nullptr, eod ? on_match : nullptr, &search);
  if (search.hit >= 0) return search.hit;
  return scanned && rc == HS_SUCCESS ? kNoMatch : kScanFailed;
}

}  // namespace egw
