// Publisher: egw-mgmt's side of the shared-memory channel (dataplane/shm_abi.h).
// A background thread attaches to the dataplane's control segment, beats and notices
// restarts; publish() (request threads, serialized) hands blobs over and waits.
#include "mgmt/publisher.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "dataplane/policy_abi.h"

namespace egw::mgmt {
namespace {

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t random64() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) | rd();
}

// The mappings of one dataplane's objects; unmapped when the last user lets go, so a
// detach never pulls a segment from under a publish() or a drain in progress.
struct Mapping : Publisher::Segments {
  ino_t ino;  // of the control object mapped: a restarted dataplane creates a new one
  Mapping(shm::CtlSegment* s, ino_t i) : ino(i) { ctl = s; }
  ~Mapping() override {
    munmap(ctl, sizeof(shm::CtlSegment));
    if (stats != nullptr) munmap(const_cast<void*>(stats), stats_size);
    if (flows != nullptr) munmap(flows, flows_size);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};

// Maps a whole object; nullptr when it is missing or cannot be mapped.
void* map_object(const std::string& name, bool writable, size_t* size) {
  const int fd = shm_open(name.c_str(), writable ? O_RDWR : O_RDONLY, 0);
  if (fd < 0) return nullptr;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    close(fd);
    return nullptr;
  }
  *size = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, *size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  return p == MAP_FAILED ? nullptr : p;
}

// Maps the stats (read-only) and flow-record objects of the dataplane with boot id
// `boot`; false (nothing mapped) unless both are there, complete and of that boot.
bool map_segments(const std::string& instance, uint64_t boot, Mapping* m) {
  size_t ssize = 0, fsize = 0;
  void* st = map_object(stats::stats_name(instance), false, &ssize);
  void* fl = map_object(stats::flows_name(instance), true, &fsize);
  std::string err;
  bool ok = st != nullptr && fl != nullptr && stats_header_ok(st, ssize, &err) &&
            static_cast<const stats::StatsHeader*>(st)->boot_id == boot;
  if (ok) {
    stats::FlowsHeader h;
    std::memcpy(&h, fl, std::min(sizeof h, fsize));
    std::atomic_thread_fence(std::memory_order_acquire);
    ok = fsize >= sizeof h && h.magic == stats::kFlowsMagic &&
         h.abi_version == stats::kFlowsAbiVersion && h.boot_id == boot && h.size == fsize &&
         h.record_size == sizeof(FlowRecord) && h.ring_slots == kFlowRecordRingSize &&
         h.ring_stride == stats::round64(sizeof(FlowRecordRing)) &&
         h.rings_offset == stats::round64(sizeof(stats::FlowsHeader)) &&
         fsize == stats::flows_size(h.workers);
  }
  if (!ok) {
    if (st != nullptr) munmap(st, ssize);
    if (fl != nullptr) munmap(fl, fsize);
    return false;
  }
  m->stats = st;
  m->stats_size = ssize;
  m->flows = fl;
  m->flows_size = fsize;
  m->boot_id = boot;
  return true;
}

}  // namespace

struct Publisher::Impl {
  std::string instance;
  std::thread thread;
  std::atomic<bool> stop{false};
  std::function<void()> on_connect;
  const uint64_t boot_id = random64() | 1;

  // Attachment, guarded by mu (the thread swaps it; publish() and counters() read it).
  mutable std::mutex mu;
  std::shared_ptr<Mapping> map;
  uint64_t dp_boot = 0;
  std::atomic<bool> connected{false};

  std::mutex publish_mu;  // one publish at a time: single producer of the request ring
  uint32_t seq = static_cast<uint32_t>(random64());  // under publish_mu
  uint64_t nonce = random64() >> 16;

  std::mutex wake_mu;
  std::condition_variable wake;

  // Sends m (seq assigned here) and waits for the answer of type `want` with the same
  // seq. Caller holds publish_mu (single producer, single consumer). Answers to
  // requests of an earlier egw-mgmt run are dropped.
  bool roundtrip(shm::CtlSegment* s, shm::Msg& m, shm::MsgType want, shm::Msg* answer,
                 std::chrono::milliseconds timeout, std::string* err, bool* busy) {
    m.seq = ++seq;
    if (!s->requests.push(m)) {
      *busy = true;
      *err = "the dataplane's request ring is full: it is not taking requests";
      return false;
    }
    const uint64_t deadline = mono_ns() + static_cast<uint64_t>(timeout.count()) * 1000000ull;
    while (mono_ns() < deadline) {
      while (s->responses.pop(answer)) {
        if (answer->type == want && answer->seq == m.seq) return true;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    *err = "the dataplane did not answer within " + std::to_string(timeout.count()) + " ms";
    return false;
  }

  // Creates a shared-memory object of `size` bytes for one request; empty on error.
  std::string make_object(uint64_t version, size_t size, std::string* err) {
    const std::string name = shm::blob_name(instance, version, ++nonce);
    if (name.size() >= shm::kMaxNameLen) {
      *err = "instance name too long for a shared-memory object name";
      return "";
    }
    const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
      *err = "cannot create " + name + ": " + strerror(errno);
      return "";
    }
    const bool ok = ftruncate(fd, static_cast<off_t>(size)) == 0;
    close(fd);
    if (!ok) {
      *err = "cannot size " + name + ": " + strerror(errno);
      shm_unlink(name.c_str());
      return "";
    }
    return name;
  }

  // The inode now behind the segment's name, 0 when there is none.
  ino_t named_inode() const {
    const int fd = shm_open(shm::ctl_name(instance).c_str(), O_RDONLY, 0);
    if (fd < 0) return 0;
    struct stat st;
    const ino_t ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
    close(fd);
    return ino;
  }

  shm::CtlSegment* try_attach(ino_t* ino) {
    const std::string name = shm::ctl_name(instance);
    const int fd = shm_open(name.c_str(), O_RDWR, 0);
    if (fd < 0) return nullptr;
    struct stat st;
    if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != sizeof(shm::CtlSegment)) {
      close(fd);
      return nullptr;
    }
    *ino = st.st_ino;
    void* p = mmap(nullptr, sizeof(shm::CtlSegment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return nullptr;
    auto* s = static_cast<shm::CtlSegment*>(p);
    std::atomic_thread_fence(std::memory_order_acquire);
    const bool fresh = mono_ns() - s->dataplane.beat_ns.load() < shm::kHeartbeatTimeoutNs;
    if (s->magic != shm::kCtlMagic || s->abi_version != shm::kCtlAbiVersion ||
        s->size != sizeof(shm::CtlSegment) || !fresh) {
      munmap(p, sizeof(shm::CtlSegment));
      return nullptr;
    }
    return s;
  }

  std::shared_ptr<Mapping> current() const {
    std::lock_guard<std::mutex> g(mu);
    return map;
  }

  void detach() {
    std::lock_guard<std::mutex> g(mu);
    map.reset();
    dp_boot = 0;
    connected.store(false);
  }

  void run() {
    while (!stop.load()) {
      std::shared_ptr<Mapping> m = current();
      shm::CtlSegment* s = m ? m->ctl : nullptr;
      if (s == nullptr) {
        ino_t ino = 0;
        s = try_attach(&ino);
        std::shared_ptr<Mapping> fresh;
        if (s != nullptr) {
          fresh = std::make_shared<Mapping>(s, ino);  // unmaps s if the rest is missing
          if (!map_segments(instance, s->dataplane.boot_id.load(), fresh.get())) s = nullptr;
        }
        if (s != nullptr) {
          {
            std::lock_guard<std::mutex> g(mu);
            map = std::move(fresh);
            dp_boot = s->dataplane.boot_id.load();
          }
          s->mgmt.pid.store(static_cast<uint64_t>(getpid()));
          s->mgmt.boot_id.store(boot_id);
          s->mgmt.beat_ns.store(mono_ns());
          connected.store(true);
          if (on_connect) on_connect();  // republish the current policy
        }
      } else {
        s->mgmt.beat_ns.store(mono_ns(), std::memory_order_release);
        const bool restarted =
            s->dataplane.boot_id.load() != dp_boot || named_inode() != m->ino;
        const bool silent = mono_ns() - s->dataplane.beat_ns.load() > shm::kHeartbeatTimeoutNs;
        if (restarted || silent) detach();  // re-attaches to the new one, if any
      }
      std::unique_lock<std::mutex> lk(wake_mu);
      wake.wait_for(lk, std::chrono::milliseconds(50), [this] { return stop.load(); });
    }
    detach();
  }
};

Publisher::Publisher(std::string instance) : impl_(std::make_unique<Impl>()) {
  impl_->instance = std::move(instance);
}

Publisher::~Publisher() { stop(); }

void Publisher::start(std::function<void()> on_connect) {
  impl_->on_connect = std::move(on_connect);
  impl_->thread = std::thread([this] { impl_->run(); });
}

void Publisher::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stop.store(true);
  impl_->wake.notify_all();
  impl_->thread.join();
}

bool Publisher::connected() const { return impl_->connected.load(); }

uint64_t Publisher::dataplane_version() const {
  auto m = impl_->current();
  return m ? m->ctl->state.active_version.load() : 0;
}

Publisher::Result Publisher::publish(uint64_t version, const std::string& blob,
                                     std::chrono::milliseconds timeout) {
  Result res;
  std::lock_guard<std::mutex> pg(impl_->publish_mu);
  const std::shared_ptr<Mapping> mapping = impl_->current();  // kept mapped until we return
  shm::CtlSegment* s = mapping ? mapping->ctl : nullptr;
  if (s == nullptr) {
    res.error = "no dataplane connected";
    return res;
  }
  if (blob.size() < sizeof(abi::PolicyHeader)) {
    res.error = "blob too small";
    return res;
  }
  abi::PolicyHeader hdr;
  std::memcpy(&hdr, blob.data(), sizeof hdr);

  // The blob travels in its own object, named in the message.
  const std::string name = impl_->make_object(version, blob.size(), &res.error);
  if (name.empty()) return res;
  const int fd = shm_open(name.c_str(), O_RDWR, 0);
  void* p = fd >= 0 ? mmap(nullptr, blob.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                    : MAP_FAILED;
  if (fd >= 0) close(fd);
  if (p == MAP_FAILED) {
    res.error = "cannot write " + name + ": " + strerror(errno);
    shm_unlink(name.c_str());
    return res;
  }
  std::memcpy(p, blob.data(), blob.size());
  munmap(p, blob.size());

  shm::Msg m{};
  m.type = shm::MsgType::activate;
  m.version = version;
  m.blob_size = blob.size();
  m.blob_checksum = hdr.checksum;
  std::memcpy(m.blob, name.c_str(), name.size() + 1);
  shm::Msg answer;
  const bool answered =
      impl_->roundtrip(s, m, shm::MsgType::activated, &answer, timeout, &res.error, &res.busy);
  shm_unlink(name.c_str());
  if (!answered) return res;
  if (answer.status != 0) {
    answer.error[sizeof answer.error - 1] = '\0';
    res.error = answer.error;
    return res;
  }
  res.active = true;
  res.activation_ms = static_cast<double>(answer.activation_ns) / 1e6;
  return res;
}

bool Publisher::flows(uint32_t limit, std::vector<FlowRecord>* out, std::string* err,
                      std::chrono::milliseconds timeout) {
  out->clear();
  std::lock_guard<std::mutex> pg(impl_->publish_mu);
  const std::shared_ptr<Mapping> mapping = impl_->current();
  if (!mapping) {
    *err = "no dataplane connected";
    return false;
  }
  if (limit == 0) return true;
  const size_t bytes = static_cast<size_t>(limit) * sizeof(FlowRecord);
  const std::string name = impl_->make_object(0, bytes, err);
  if (name.empty()) return false;
  shm::Msg m{};
  m.type = shm::MsgType::flows;
  m.blob_size = limit;
  std::memcpy(m.blob, name.c_str(), name.size() + 1);
  shm::Msg answer;
  bool busy = false;
  bool ok = impl_->roundtrip(mapping->ctl, m, shm::MsgType::flows_done, &answer, timeout, err, &busy);
  if (ok && answer.status != 0) {
    answer.error[sizeof answer.error - 1] = '\0';
    *err = answer.error;
    ok = false;
  }
  if (ok) {
    const int fd = shm_open(name.c_str(), O_RDONLY, 0);
    void* p = fd >= 0 ? mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (fd >= 0) close(fd);
    if (p == MAP_FAILED) {
      *err = "cannot read " + name + ": " + strerror(errno);
      ok = false;
    } else {
      const uint64_t n = std::min<uint64_t>(answer.blob_size, limit);
      const auto* recs = static_cast<const FlowRecord*>(p);
      out->assign(recs, recs + n);
      munmap(p, bytes);
    }
  }
  shm_unlink(name.c_str());
  return ok;
}

bool Publisher::stats(StatsView* out) const {
  const std::shared_ptr<Mapping> mapping = impl_->current();
  if (!mapping || mapping->stats == nullptr) return false;
  read_stats(mapping->stats, out);
  return true;
}

std::shared_ptr<const Publisher::Segments> Publisher::segments() const {
  return impl_->current();
}

}  // namespace egw::mgmt
