// Live flow snapshots for egw-mgmt's GET /v1/flows. Control thread only.
#include "dataplane/flow_snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace egw {

void snapshot_flows(const std::vector<WorkerCtx*>& workers, const PolicySwap& swap,
                    const shm::Msg& request, shm::Msg* answer) {
  *answer = request;
  answer->type = shm::MsgType::flows_done;
  answer->status = 0;
  answer->error[0] = '\0';
  const uint64_t capacity = request.blob_size;
  answer->blob_size = 0;
  char name[shm::kMaxNameLen + 1];
  std::memcpy(name, request.blob, shm::kMaxNameLen);
  name[shm::kMaxNameLen] = '\0';
  const uint64_t bytes = capacity * sizeof(FlowRecord);
  const int fd = name[0] == '/' ? shm_open(name, O_RDWR, 0) : -1;
  struct stat st;
  if (fd < 0 || capacity == 0 || capacity > (1u << 22) || fstat(fd, &st) != 0 ||
      static_cast<uint64_t>(st.st_size) != bytes) {
    answer->status = EINVAL;
    snprintf(answer->error, sizeof answer->error, "bad flow snapshot object %s", name);
    if (fd >= 0) close(fd);
    return;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    answer->status = errno;
    snprintf(answer->error, sizeof answer->error, "cannot map %s: %s", name, strerror(errno));
    return;
  }
  auto* out = static_cast<FlowRecord*>(p);
  uint64_t n = 0;
  for (WorkerCtx* w : workers) {
    w->flows.for_each([&](const FlowEntry& live) {
      if (n == capacity) return;
      FlowEntry e;
      std::memcpy(static_cast<void*>(&e), &live, sizeof e);  // racy by design: see header
      FlowRecord r;
      make_flow_record(e, EndReason::active, nullptr, nullptr, &r);
      // The name, from the worker's side table (same index), copied the same way.
      if (w->aux != nullptr) {
        FlowAux a;
        std::memcpy(static_cast<void*>(&a), &w->aux[w->flows.index_of(&live)], sizeof a);
        flow_name_load(*w, e.key, a, &r.app);
      }
      swap.fill_rule_id(&r);
      out[n++] = r;
    });
  }
  munmap(p, bytes);
  answer->blob_size = n;
}

}  // namespace egw
