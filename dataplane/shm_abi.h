// The shared-memory contract between egw-mgmt and egw-dataplane: one control segment
// (/egw-NAME-ctl) with a header, heartbeats and two single-producer/single-consumer
// message rings, plus one object per published blob (/egw-NAME-blob-VERSION).
// Read by both processes' control threads only; never touched by worker lcores.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "dataplane/counters.h"
#include "dataplane/flow_log.h"

namespace egw::shm {

constexpr uint32_t kCtlMagic = 0x43574745;  // "EGWC"
constexpr uint32_t kCtlAbiVersion = 6;  // 5: counters moved to the stats segment;
                                        // 6: FlowRecord with limits and report
constexpr uint32_t kRingSlots = 64;  // messages in flight each way
constexpr size_t kMaxNameLen = 64;

// The names of the objects of an instance (POSIX shm names: one leading slash).
inline std::string ctl_name(const std::string& instance) { return "/egw-" + instance + "-ctl"; }
inline std::string blob_name(const std::string& instance, uint64_t version, uint64_t nonce) {
  return "/egw-" + instance + "-blob-" + std::to_string(version) + "-" + std::to_string(nonce);
}

enum class MsgType : uint32_t {
  activate = 1,   // mgmt -> dataplane: load the blob named in `blob` and make it active
  activated = 2,  // dataplane -> mgmt: the result of one activate (same seq)
  flows = 3,      // mgmt -> dataplane: copy up to blob_size active flows, as FlowRecords,
                  // into the object named in `blob` (blob_size * sizeof(FlowRecord) bytes)
  flows_done = 4, // dataplane -> mgmt: blob_size = records written (same seq)
};

// One message; both rings carry the same struct. Plain data, no pointers.
struct Msg {
  MsgType type;
  uint32_t seq;          // chosen by mgmt, echoed in the answer
  uint64_t version;      // policy version
  uint64_t blob_size;    // bytes of the blob object
  uint64_t blob_checksum;  // PolicyHeader::checksum, checked again by the loader
  char blob[kMaxNameLen];  // shm object name holding the blob, NUL-terminated
  // activated only:
  int32_t status;          // 0 ok, else an errno-style code; error holds the message
  uint32_t reserved;
  uint64_t activation_ns;  // from taking the message to every worker using the policy
  char error[160];
};
static_assert(sizeof(Msg) == 272);
static_assert(sizeof(FlowRecord) == 560, "FlowRecord crosses the process boundary");
static_assert(alignof(FlowRecord) == 8);
static_assert(std::is_trivially_copyable_v<FlowRecord>);

// One side's liveness, on its own cache line: written only by that side.
struct alignas(64) Heartbeat {
  std::atomic<uint64_t> boot_id;  // random per process start; 0 = never attached
  std::atomic<uint64_t> pid;
  std::atomic<uint64_t> beat_ns;  // CLOCK_MONOTONIC ns of the last beat
};
static_assert(sizeof(Heartbeat) == 64);
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared atomics must be address free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared atomics must be address free");


// Dataplane state published for egw-mgmt (written by the dataplane control thread).
// Counters are in the stats segment (stats_abi.h).
struct alignas(64) DataplaneState {
  std::atomic<uint64_t> active_version;  // 0 = no policy (everything denied)
  std::atomic<uint64_t> activations;
  std::atomic<uint64_t> activation_failures;
};

// The control segment. Created (and re-created at every start) by egw-dataplane;
// egw-mgmt maps it, checks magic/ABI/size, and watches `dataplane.boot_id` to notice
// a restart (then republishes the current policy).
struct CtlSegment {
  uint32_t magic;
  uint32_t abi_version;
  uint64_t size;  // sizeof(CtlSegment)
  alignas(64) Heartbeat dataplane;
  Heartbeat mgmt;
  DataplaneState state;
  SpscRing<Msg, kRingSlots> requests;   // producer: egw-mgmt; consumer: dataplane
  SpscRing<Msg, kRingSlots> responses;  // producer: dataplane; consumer: egw-mgmt
};

// A heartbeat older than this means the other side is gone.
constexpr uint64_t kHeartbeatPeriodNs = 100ull * 1000000;
constexpr uint64_t kHeartbeatTimeoutNs = 3000ull * 1000000;  // > the longest activation

}  // namespace egw::shm
