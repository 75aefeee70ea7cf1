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

  // A consistent copy of the dataplane's counters; false when not connected.
  bool counters(shm::CounterSnapshot* out) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace egw::mgmt
