// The dataplane's end of the shared-memory channel to egw-mgmt (dataplane/shm_abi.h):
// creates /egw-NAME-ctl at start, beats, takes activate requests and answers them.
// Control thread (main lcore) only.
#pragma once

#include <cstdint>
#include <string>

#include "dataplane/shm_abi.h"

namespace egw {

class ControlChannel {
 public:
  // Creates the control segment afresh (a stale one from an earlier run is replaced),
  // with a new boot id. On failure returns false with a message saying what to fix.
  // boot_id: random per start, also in the stats and flow-record segments' headers.
  bool open(const std::string& instance, uint64_t boot_id, std::string* err);
  // Unmaps and removes the segment.
  void close();
  ~ControlChannel() { close(); }

  void beat(uint64_t monotonic_ns);
  bool next_request(shm::Msg* m) { return seg_->requests.pop(m); }
  // Answers a request; false when the response ring is full (egw-mgmt not reading).
  bool respond(const shm::Msg& m) { return seg_->responses.push(m); }
  shm::CtlSegment* segment() { return seg_; }

  // Reads the blob object named in m (checks its size against m.blob_size).
  static bool read_blob(const shm::Msg& m, std::string* blob, std::string* err);

 private:
  shm::CtlSegment* seg_ = nullptr;
  std::string name_;
};

uint64_t monotonic_ns();

}  // namespace egw
