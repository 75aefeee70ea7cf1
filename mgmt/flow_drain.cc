// Flow-record rings -> flows.jsonl (with rotation). One thread; the only consumer of
// the rings while egw-mgmt runs (the dataplane drains them itself only when it was
// started with --flow-log, and says so in the segment's header).
#include "mgmt/flow_drain.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "dataplane/flow_log.h"
#include "dataplane/stats_abi.h"

namespace egw::mgmt {
namespace {

constexpr size_t kFlushBytes = 256 * 1024;  // write in pieces of about this size

FlowRecordRing* ring_of(void* flows, uint32_t i) {
  const auto* h = static_cast<const stats::FlowsHeader*>(flows);
  return reinterpret_cast<FlowRecordRing*>(static_cast<char*>(flows) + h->rings_offset +
                                           uint64_t{i} * h->ring_stride);
}

}  // namespace

FlowDrain::FlowDrain(const Publisher& pub, FlowLogOptions o) : pub_(pub), opt_(std::move(o)) {}

FlowDrain::~FlowDrain() {
  stop();
  if (f_ != nullptr && f_ != stdout) fclose(f_);
}

bool FlowDrain::open(std::string* err) {
  if (opt_.path.empty()) return true;
  if (opt_.path == "-") {
    f_ = stdout;
    return true;
  }
  f_ = fopen(opt_.path.c_str(), "a");
  if (f_ == nullptr) {
    *err = "--flow-log " + opt_.path + ": " + strerror(errno);
    return false;
  }
  struct stat st;
  size_ = fstat(fileno(f_), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return true;
}

void FlowDrain::start() {
  thread_ = std::thread([this] { run(); });
}

void FlowDrain::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  thread_.join();
}

// path.N-1 -> path.N, ..., path -> path.1, then a new path. Rename errors (a file
// that is not there yet) are expected and ignored.
void FlowDrain::rotate() {
  if (f_ == nullptr || f_ == stdout || opt_.keep == 0) return;
  fclose(f_);
  for (unsigned i = opt_.keep; i > 1; --i) {
    const std::string from = opt_.path + "." + std::to_string(i - 1);
    const std::string to = opt_.path + "." + std::to_string(i);
    rename(from.c_str(), to.c_str());
  }
  rename(opt_.path.c_str(), (opt_.path + ".1").c_str());
  f_ = fopen(opt_.path.c_str(), "a");
  if (f_ == nullptr) fprintf(stderr, "egw-mgmt: cannot reopen the flow log %s: %s\n",
                             opt_.path.c_str(), strerror(errno));
  size_ = 0;
  counters_.rotations.fetch_add(1);
}

void FlowDrain::write_out(std::string& buf) {
  if (buf.empty()) return;
  // No file (it could not be reopened after a rotation: retried at the next one) or a
  // failed write: the lines are lost, and counted.
  if (f_ == nullptr || fwrite(buf.data(), 1, buf.size(), f_) != buf.size() || fflush(f_) != 0) {
    size_t lines = 0;
    for (char c : buf) lines += c == '\n';
    counters_.write_errors.fetch_add(lines);
  } else {
    size_ += buf.size();
    counters_.bytes.fetch_add(buf.size());
  }
  buf.clear();
}

size_t FlowDrain::drain_once(const Publisher::Segments& seg) {
  if (seg.flows == nullptr || opt_.path.empty()) return 0;
  if (f_ == nullptr && opt_.path != "-") {  // lost after a rotation: try again
    f_ = fopen(opt_.path.c_str(), "a");
    size_ = 0;
  }
  const auto* h = static_cast<const stats::FlowsHeader*>(seg.flows);
  if (h->consumer != stats::Consumer::mgmt) return 0;  // the dataplane writes its own log
  std::string buf;
  buf.reserve(kFlushBytes + 4096);
  size_t n = 0;
  FlowRecord r;
  for (uint32_t w = 0; w < h->workers; ++w) {
    FlowRecordRing* ring = ring_of(seg.flows, w);
    while (ring->pop(&r)) {
      // A flow decided by a policy its worker no longer had: named by its rule slot.
      if (r.rule_id[0] == '\0' && r.rule_index != kNoRule && seg.stats != nullptr) {
        const std::string id = slot_id(seg.stats, r.rule_slot);
        if (id != stats::kDefaultLabel && id != stats::kOtherLabel)
          snprintf(r.rule_id, sizeof r.rule_id, "%s", id.c_str());
      }
      if (r.has_report && r.report_rule_id[0] == '\0' && seg.stats != nullptr)
        snprintf(r.report_rule_id, sizeof r.report_rule_id, "%s",
                 slot_id(seg.stats, r.report_slot).c_str());
      const size_t before = buf.size();
      append_flow_record_json(buf, r);
      buf += '\n';
      // A file never passes max_bytes (unless one line does): rotate between lines.
      if (opt_.keep != 0 && f_ != stdout && size_ + before != 0 &&
          size_ + buf.size() > opt_.max_bytes) {
        std::string rest(buf, before);
        buf.resize(before);
        write_out(buf);
        rotate();
        buf = std::move(rest);
      }
      ++n;
      if (buf.size() >= kFlushBytes) write_out(buf);
    }
  }
  write_out(buf);
  counters_.records.fetch_add(n);
  return n;
}

void FlowDrain::run() {
  // The rings of the dataplane attached last: kept mapped after it stopped or was
  // replaced, until they are empty.
  std::shared_ptr<const Publisher::Segments> held;
  for (;;) {
    const bool stopping = stop_.load();
    std::shared_ptr<const Publisher::Segments> now = pub_.segments();
    size_t n = 0;
    if (held && held != now) {
      while (drain_once(*held) != 0) {
      }
      held.reset();
    }
    if (now) {
      held = now;
      n = drain_once(*now);
    }
    if (stopping) break;
    if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace egw::mgmt
