// Publisher: egw-mgmt's side of the shared-memory channel to egw-dataplane. A
// background thread attaches to /egw-NAME-ctl, beats, and notices dataplane restarts;
// publish() hands a compiled blob over and waits for the activation acknowledgement.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/shm_abi.h"
#include "mgmt/stats_reader.h"

namespace egw::mgmt {

class Publisher {
 public:
  explicit Publisher(std::string instance);
  ~Publisher();

  // Starts the attach/heartbeat thread. on_connect runs (on that thread) after every
  // (re)attach to a dataplane, to republish the current policy.
  void start(std::function<void()> on_connect);
  void stop();

  bool connected() const;
  uint64_t dataplane_version() const;  // the version the dataplane reports active

  struct Result {
    bool active = false;        // the dataplane acknowledged activation
    bool busy = false;          // the request ring was full: try again later
    double activation_ms = 0;   // as measured by the dataplane
    std::string error;          // set when not active
  };
  // Hands `blob` (already stamped with `version`) to the dataplane and waits up to
  // `timeout` for its answer. Not connected: active=false, error says so. Serialized.
  Result publish(uint64_t version, const std::string& blob, std::chrono::milliseconds timeout);

  // A snapshot of up to `limit` live flows (consistency: see dataplane/flow_snapshot.h).
  // False with *err when not connected or the dataplane did not answer in `timeout`.
  bool flows(uint32_t limit, std::vector<FlowRecord>* out, std::string* err,
             std::chrono::milliseconds timeout);

  // The dataplane's counters, read from its stats segment; false when not connected.
  bool stats(StatsView* out) const;

  // The dataplane's shared-memory objects as mapped now; null when not connected. The
  // mappings stay valid while the pointer is held, also after the dataplane is gone
  // (the flow-log drain empties the rings of a dataplane that stopped).
  struct Segments {
    shm::CtlSegment* ctl = nullptr;
    const void* stats = nullptr;  // read-only
    size_t stats_size = 0;
    void* flows = nullptr;        // stats::FlowsHeader, then the rings
    size_t flows_size = 0;
    uint64_t boot_id = 0;
    virtual ~Segments() = default;
  };
  std::shared_ptr<const Segments> segments() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace egw::mgmt
