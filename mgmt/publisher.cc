// Publisher: egw-mgmt's side of the shared-memory channel (dataplane/shm_abi.h).
// A background thread attaches to the dataplane's control segment, beats and notices
// restarts; publish() (request threads, serialized) hands blobs over and waits.
#include "mgmt/publisher.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

// One mapping of the control segment; unmapped when the last user lets go, so a
// detach never pulls the segment from under a publish() in progress.
struct Mapping {
  shm::CtlSegment* seg;
  ino_t ino;  // of the object mapped: a restarted dataplane creates a new one
  Mapping(shm::CtlSegment* s, ino_t i) : seg(s), ino(i) {}
  ~Mapping() { munmap(seg, sizeof(shm::CtlSegment)); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};

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
  uint32_t seq = static_cast<uint32_t>(random64());
  uint64_t nonce = random64() >> 16;

  std::mutex wake_mu;
  std::condition_variable wake;

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
      shm::CtlSegment* s = m ? m->seg : nullptr;
      if (s == nullptr) {
        ino_t ino = 0;
        s = try_attach(&ino);
        if (s != nullptr) {
          {
            std::lock_guard<std::mutex> g(mu);
            map = std::make_shared<Mapping>(s, ino);
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
  return m ? m->seg->state.active_version.load() : 0;
}

Publisher::Result Publisher::publish(uint64_t version, const std::string& blob,
                                     std::chrono::milliseconds timeout) {
  Result res;
  std::lock_guard<std::mutex> pg(impl_->publish_mu);
  const std::shared_ptr<Mapping> mapping = impl_->current();  // kept mapped until we return
  shm::CtlSegment* s = mapping ? mapping->seg : nullptr;
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
  const std::string name = shm::blob_name(impl_->instance, version, ++impl_->nonce);
  if (name.size() >= shm::kMaxNameLen) {
    res.error = "instance name too long for a blob object name";
    return res;
  }
  const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    res.error = "cannot create " + name + ": " + strerror(errno);
    return res;
  }
  bool ok = ftruncate(fd, static_cast<off_t>(blob.size())) == 0;
  void* p = ok ? mmap(nullptr, blob.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (p == MAP_FAILED) {
    res.error = "cannot write " + name + ": " + strerror(errno);
    shm_unlink(name.c_str());
    return res;
  }
  std::memcpy(p, blob.data(), blob.size());
  munmap(p, blob.size());

  shm::Msg m{};
  m.type = shm::MsgType::activate;
  m.seq = ++impl_->seq;
  m.version = version;
  m.blob_size = blob.size();
  m.blob_checksum = hdr.checksum;
  std::memcpy(m.blob, name.c_str(), name.size() + 1);
  if (!s->requests.push(m)) {
    shm_unlink(name.c_str());
    res.busy = true;
    res.error = "the dataplane's request ring is full: it is not taking requests";
    return res;
  }
  const uint64_t deadline = mono_ns() + static_cast<uint64_t>(timeout.count()) * 1000000ull;
  shm::Msg answer;
  bool answered = false;
  while (!answered && mono_ns() < deadline) {
    while (s->responses.pop(&answer)) {
      if (answer.type == shm::MsgType::activated && answer.seq == m.seq) {
        answered = true;
        break;
      }  // else: an answer to a request of an earlier egw-mgmt run: dropped
    }
    if (!answered) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  shm_unlink(name.c_str());
  if (!answered) {
    res.error = "the dataplane did not answer within " + std::to_string(timeout.count()) + " ms";
    return res;
  }
  if (answer.status != 0) {
    answer.error[sizeof answer.error - 1] = '\0';
    res.error = answer.error;
    return res;
  }
  res.active = true;
  res.activation_ms = static_cast<double>(answer.activation_ns) / 1e6;
  return res;
}

bool Publisher::counters(shm::CounterSnapshot* out) const {
  const std::shared_ptr<Mapping> mapping = impl_->current();
  if (!mapping) return false;
  const shm::CtlSegment* s = mapping->seg;
  const auto& st = s->state;
  for (int tries = 0; tries < 1000; ++tries) {
    const uint64_t a = st.seq.load(std::memory_order_acquire);
    if (a & 1) continue;
    std::memcpy(static_cast<void*>(out), &st.counters, sizeof(*out));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (st.seq.load(std::memory_order_relaxed) == a) return true;
  }
  return false;
}

}  // namespace egw::mgmt
