// The flow log: a thread of egw-mgmt that empties the dataplane's flow-record rings
// (dataplane/stats_abi.h) into DIR/flows.jsonl, one EVE-style JSON line per flow,
// rotating the file by size. The workers never wait for it: while it is stopped or
// slow the rings fill and the workers count the records they could not keep
// (flow_records_lost).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "mgmt/publisher.h"

namespace egw::mgmt {

struct FlowLogOptions {
  std::string path;                   // "-": standard output; "": no flow log
  uint64_t max_bytes = 100ull << 20;  // rotate before the file would pass this
  unsigned keep = 5;                  // rotated files kept (path.1 newest); 0: never rotate
};

class FlowDrain {
 public:
  FlowDrain(const Publisher& pub, FlowLogOptions o);
  ~FlowDrain();
  FlowDrain(const FlowDrain&) = delete;
  FlowDrain& operator=(const FlowDrain&) = delete;

  // Opens the log (appending); false with a message saying what to fix.
  bool open(std::string* err);
  void start();
  void stop();  // drains what the rings hold, then returns

  // Writes every record the rings of `seg` hold now; returns how many. The drain
  // thread calls it; tests call it directly (without start()).
  size_t drain_once(const Publisher::Segments& seg);

  struct Counters {
    std::atomic<uint64_t> records{0};  // lines written
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> rotations{0};
    std::atomic<uint64_t> write_errors{0};  // lines lost to a failed write
  };
  const Counters& counters() const { return counters_; }

 private:
  void run();
  void write_out(std::string& buf);
  void rotate();

  const Publisher& pub_;
  FlowLogOptions opt_;
  FILE* f_ = nullptr;
  uint64_t size_ = 0;  // of the current file
  Counters counters_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace egw::mgmt
