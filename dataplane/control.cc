// The dataplane's end of the shared-memory channel to egw-mgmt (dataplane/shm_abi.h).
// Control thread (main lcore) only: it may allocate and make syscalls.
#include "dataplane/control.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>

namespace egw {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

bool ControlChannel::open(const std::string& instance, uint64_t boot, std::string* err) {
  name_ = shm::ctl_name(instance);
  // A segment left by an earlier run (or a crash) is replaced: egw-mgmt notices the
  // new boot id and republishes the current policy.
  shm_unlink(name_.c_str());
  const int fd = shm_open(name_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    *err = "cannot create shared memory " + name_ + ": " + strerror(errno) +
           " (is another egw-dataplane running with --instance " + instance + "?)";
    return false;
  }
  if (ftruncate(fd, sizeof(shm::CtlSegment)) != 0) {
    *err = "cannot size shared memory " + name_ + ": " + strerror(errno);
    ::close(fd);
    shm_unlink(name_.c_str());
    return false;
  }
  void* p = mmap(nullptr, sizeof(shm::CtlSegment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    *err = "cannot map shared memory " + name_ + ": " + strerror(errno);
    shm_unlink(name_.c_str());
    return false;
  }
  seg_ = new (p) shm::CtlSegment();
  seg_->dataplane.pid.store(static_cast<uint64_t>(getpid()));
  seg_->dataplane.beat_ns.store(monotonic_ns());
  seg_->dataplane.boot_id.store(boot);
  seg_->size = sizeof(shm::CtlSegment);
  seg_->abi_version = shm::kCtlAbiVersion;
  std::atomic_thread_fence(std::memory_order_release);
  seg_->magic = shm::kCtlMagic;  // last: a reader that sees the magic sees the rest
  return true;
}

void ControlChannel::close() {
  if (seg_ == nullptr) return;
  munmap(seg_, sizeof(shm::CtlSegment));
  seg_ = nullptr;
  shm_unlink(name_.c_str());
}

void ControlChannel::beat(uint64_t now) {
  seg_->dataplane.beat_ns.store(now, std::memory_order_release);
}

bool ControlChannel::read_blob(const shm::Msg& m, std::string* blob, std::string* err) {
  char name[shm::kMaxNameLen + 1];
  std::memcpy(name, m.blob, shm::kMaxNameLen);
  name[shm::kMaxNameLen] = '\0';
  if (name[0] != '/' || std::strchr(name + 1, '/') != nullptr) {
    *err = "bad blob object name";
    return false;
  }
  const int fd = shm_open(name, O_RDONLY, 0);
  if (fd < 0) {
    *err = std::string("cannot open ") + name + ": " + strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != m.blob_size ||
      m.blob_size == 0 || m.blob_size > (1ull << 30)) {
    *err = std::string(name) + ": size does not match the announced " +
           std::to_string(m.blob_size) + " bytes";
    ::close(fd);
    return false;
  }
  void* p = mmap(nullptr, m.blob_size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    *err = std::string("cannot map ") + name + ": " + strerror(errno);
    return false;
  }
  blob->assign(static_cast<const char*>(p), m.blob_size);
  munmap(p, m.blob_size);
  return true;
}

}  // namespace egw
