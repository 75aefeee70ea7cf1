// egw-replay: runs the dataplane's own worker pipeline (worker.cc, the same code) over
// a capture, in file order, and writes flow records and the packets egw would send.
// One process, one thread: the EAL main lcore plays the worker and the reader.
#include <getopt.h>
#include <sched.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/flow_log.h"
#include "dataplane/policy.h"
#include "dataplane/policy_abi.h"
#include "dataplane/replay/pcap_io.h"
#include "dataplane/worker.h"
#include "mgmt/compiler.h"
#include "rules/policy.h"

namespace egw::replay {
namespace {

constexpr int kExitInput = 2;
constexpr unsigned kPoolMbufs = 8191;   // captured frames, a burst at a time
constexpr unsigned kSynthMbufs = 2047;  // RSTs and ICMP errors the worker makes
constexpr uint32_t kDefaultFlows = 262144;
constexpr uint32_t kMaxFlows = 1u << 26;
// A burst holds frames captured within this window: a live port never batches
// packets that arrived further apart, and the burst clock stays faithful.
constexpr uint64_t kBurstWindowNs = 1000000;

const char kUsage[] =
    "usage: egw-replay --policy FILE --pcap IN [--inside CIDR]... [--pass-pcap OUT]\n"
    "                  [--log FILE|-] [--flows N]\n"
    "  --policy FILE   a policy document (JSON) or a compiled policy (egwctl compile)\n"
    "  --pcap IN       pcap or pcapng: Ethernet, Linux cooked (SLL, SLL2), raw IP, loopback\n"
    "  --inside CIDR   inside network (repeatable); default: the policy's service CIDRs\n"
    "  --pass-pcap OUT write every packet egw would transmit (Ethernet pcap)\n"
    "  --log FILE|-    flow records, one JSON line per flow (default -: stdout)\n"
    "  --flows N       flow table capacity (default: the policy's max_flows, else 262144)\n"
    "A summary JSON line goes to stderr. Exit 0: replayed; 2: bad usage or input.\n";

struct Options {
  std::string policy_path, pcap_path, pass_path, log_path = "-";
  std::vector<std::string> inside;
  uint32_t flows = 0;  // 0: from the policy, else kDefaultFlows
};

int fail(const std::string& msg) {
  fprintf(stderr, "egw-replay: %s\n", msg.c_str());
  return kExitInput;
}

// Parses the command line; returns false (message printed) on a usage error.
bool parse_options(int argc, char** argv, Options* o) {
  static const option kLong[] = {
      {"policy", required_argument, nullptr, 'p'}, {"pcap", required_argument, nullptr, 'r'},
      {"inside", required_argument, nullptr, 'i'}, {"pass-pcap", required_argument, nullptr, 'w'},
      {"log", required_argument, nullptr, 'l'},    {"flows", required_argument, nullptr, 'f'},
      {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0}};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    switch (c) {
      case 'p': o->policy_path = optarg; break;
      case 'r': o->pcap_path = optarg; break;
      case 'i': o->inside.push_back(optarg); break;
      case 'w': o->pass_path = optarg; break;
      case 'l': o->log_path = optarg; break;
      case 'f': {
        char* end = nullptr;
        unsigned long v = strtoul(optarg, &end, 10);
        if (end == optarg || *end != '\0' || v == 0 || v > kMaxFlows) {
          fprintf(stderr, "egw-replay: --flows %s: give a number from 1 to %u\n", optarg, kMaxFlows);
          return false;
        }
        o->flows = static_cast<uint32_t>(v);
        break;
      }
      case 'h': fputs(kUsage, stdout); exit(0);
      default:
        fprintf(stderr, "egw-replay: unknown option or missing value: %s\n%s",
                argv[optind - 1], kUsage);
        return false;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "egw-replay: unexpected argument %s\n%s", argv[optind], kUsage);
    return false;
  }
  if (o->policy_path.empty() || o->pcap_path.empty()) {
    fprintf(stderr, "egw-replay: --policy and --pcap are required\n%s", kUsage);
    return false;
  }
  if (o->pass_path == "-" && o->log_path == "-") {
    fprintf(stderr, "egw-replay: --pass-pcap - and --log - would both write to stdout\n");
    return false;
  }
  return true;
}

// Initialises the EAL for a single-threaded, device-less run; its messages go to stderr.
bool init_eal(const char* prog) {
  rte_openlog_stream(stderr);
  cpu_set_t set;
  int cpu = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) {
        cpu = i;
        break;
      }
  }
  std::vector<std::string> args = {prog, "--no-huge", "--no-pci", "--no-shconf", "-m", "512",
                                   "--log-level=lib.*:error", "--log-level=user1:error",
                                   "--file-prefix", "egw-replay-" + std::to_string(getpid()),
                                   "-l", std::to_string(cpu)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    fprintf(stderr, "egw-replay: DPDK EAL initialisation failed: %s\n", rte_strerror(rte_errno));
    return false;
  }
  return true;
}

// The compiled blob of --policy and its default inside CIDRs (the service CIDRs).
bool load_policy_file(const std::string& path, std::string* blob,
                      std::vector<rules::Cidr>* service_cidrs) {
  std::string text, err;
  if (!read_file(path, &text, &err)) {
    fail("--policy " + path + ": " + err);
    return false;
  }
  if (text.size() >= 4 && std::memcmp(text.data(), "EGWP", 4) == 0) {
    *blob = std::move(text);
    return true;  // the service CIDRs are read from the blob once it is validated
  }
  mgmt::CompileResult r = mgmt::compile_document(text, 0);
  if (!r.errors.empty()) {
    fprintf(stderr, "egw-replay: --policy %s: invalid policy document:\n", path.c_str());
    for (const auto& e : r.errors)
      fprintf(stderr, "%s: %s\n", e.path.empty() ? "/" : e.path.c_str(), e.message.c_str());
    return false;
  }
  rules::ParseResult parsed = rules::parse_policy(text);
  if (parsed.policy) {
    for (const auto& s : parsed.policy->services)
      service_cidrs->insert(service_cidrs->end(), s.cidrs.begin(), s.cidrs.end());
  }
  *blob = std::move(r.blob);
  return true;
}

// Service CIDRs from a validated blob (RuntimePolicy::load checked offsets and sizes;
// bounds are checked again here all the same).
std::vector<rules::Cidr> blob_service_cidrs(const std::string& blob) {
  std::vector<rules::Cidr> out;
  abi::PolicyHeader h;
  if (blob.size() < sizeof(h)) return out;
  std::memcpy(&h, blob.data(), sizeof(h));
  for (uint32_t i = 0; i < h.section_count; ++i) {
    const uint64_t at = h.header_size + uint64_t{i} * sizeof(abi::SectionEntry);
    if (at + sizeof(abi::SectionEntry) > blob.size()) break;
    abi::SectionEntry s;
    std::memcpy(&s, blob.data() + at, sizeof(s));
    if (s.type != abi::kSecServiceCidrs || s.elem_size != sizeof(abi::CidrRec)) continue;
    if (s.offset > blob.size() || s.size > blob.size() - s.offset) break;
    for (uint64_t off = 0; off + sizeof(abi::CidrRec) <= s.size; off += sizeof(abi::CidrRec)) {
      abi::CidrRec c;
      std::memcpy(&c, blob.data() + s.offset + off, sizeof(c));
      rules::Cidr r;
      r.family = c.family;
      r.prefix = c.prefix;
      std::memcpy(r.addr.data(), c.addr, 16);
      out.push_back(r);
    }
  }
  return out;
}

bool cidr_contains(const rules::Cidr& c, uint8_t family, const uint8_t* addr) {
  if (c.family != family) return false;
  const unsigned full = c.prefix / 8, rest = c.prefix % 8;
  if (std::memcmp(c.addr.data(), addr, full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (c.addr[full] & mask) == (addr[full] & mask);
}

enum class Dir : uint8_t { outbound, inbound, not_inside };

// Which port a frame arrives on. Source inside: inside port; destination inside:
// outside port; non-IP frames (ARP, other ethertypes), ND and IP packets too short to
// read addresses from: the inside port (the pipeline bridges or drops and counts them).
Dir direction_of(const uint8_t* f, size_t len, const std::vector<rules::Cidr>& inside) {
  size_t off = 12;
  uint16_t et = 0;
  for (int tags = 0; tags <= 3; ++tags) {
    if (off + 2 > len) return Dir::outbound;
    et = static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
    if (et != 0x8100 && et != 0x88a8 && et != 0x9100) break;
    off += 4;
  }
  off += 2;
  uint8_t family;
  const uint8_t *src, *dst;
  if (et == 0x0800 && off + 20 <= len) {
    family = 4;
    src = f + off + 12;
    dst = f + off + 16;
  } else if (et == 0x86dd && off + 40 <= len) {
    family = 6;
    src = f + off + 8;
    dst = f + off + 24;
  } else {
    return Dir::outbound;
  }
  for (const auto& c : inside)
    if (cidr_contains(c, family, src)) return Dir::outbound;
  for (const auto& c : inside)
    if (cidr_contains(c, family, dst)) return Dir::inbound;
  // Neighbour discovery (ICMPv6 133..137 right after the fixed header) is bridged.
  if (family == 6 && f[off + 6] == 58 && off + 41 <= len && f[off + 40] >= 133 &&
      f[off + 40] <= 137)
    return Dir::outbound;
  return Dir::not_inside;
}

struct Stats {
  uint64_t packets = 0, outbound = 0, inbound = 0, not_inside = 0, passed = 0,
           synthesized = 0, oversize = 0, bad_link_header = 0, no_mbuf = 0, records = 0;
  bool truncated = false;
};

// Everything one replay needs: the worker, its output, the open files.
class Replay {
 public:
  Replay(WorkerCtx* w, FlowRecordRing* ring, rte_mempool* pool, FILE* log, PcapWriter* pass)
      : w_(w), ring_(ring), pool_(pool), log_(log), pass_(pass) {}

  // Adds one frame to the current burst, running the burst first when the frame
  // arrives on the other port, the burst is full or its time window is over.
  // Returns false when the frame was skipped (counted as oversize or no_mbuf).
  bool add(const Frame& f, Side side) {
    if (n_ != 0 && (side != side_ || n_ == kBurst || f.ts_ns < ts_[0] ||
                    f.ts_ns - ts_[0] > kBurstWindowNs))
      run_burst();
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) {
      ++stats.no_mbuf;
      return false;
    }
    if (f.len > rte_pktmbuf_tailroom(m)) {
      ++stats.oversize;
      rte_pktmbuf_free(m);
      return false;
    }
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.len)), f.data, f.len);
    side_ = side;
    ts_[n_] = f.ts_ns;
    pkts_[n_] = m;
    in_[n_++] = m;
    return true;
  }

  // Runs the pending burst through the worker; writes what it transmits and the
  // records of flows that ended.
  void run_burst() {
    if (n_ == 0) return;
    // The burst clock never goes backwards (captures are not always in time order).
    if (ts_[0] > now_) now_ = ts_[0];
    TxBatch out[2];
    worker_process_burst(*w_, pkts_, n_, side_, now_, out);
    // What continues onward first, then what goes back towards the sender.
    const Side onward = side_ == kInside ? kOutside : kInside;
    write_batch(out[onward]);
    write_batch(out[side_]);
    n_ = 0;
    worker_housekeeping(*w_, now_);
    drain();
  }

  // Writes the records waiting in the ring.
  void drain() {
    FlowRecord r;
    while (ring_->pop(&r)) write_record(r);
  }

  void write_record(FlowRecord r) {
    // One policy for the whole replay: it names the rule of every record.
    const RuntimePolicy* p = w_->policy;
    if (p != nullptr && r.rule_index != kNoRule && r.policy_version == p->version())
      snprintf(r.rule_id, sizeof r.rule_id, "%s", p->rule_id(r.rule_index));
    std::string line = flow_record_json(r);
    line.push_back('\n');
    fwrite(line.data(), 1, line.size(), log_);
    ++stats.records;
  }

  Stats stats;

 private:
  void write_batch(TxBatch& b) {
    for (uint16_t i = 0; i < b.n; ++i) {
      rte_mbuf* m = b.pkts[i];
      uint64_t ts = now_;
      // Captured frames come from pool_ only (synthesized ones from the worker's
      // pool), so a pointer match is never a recycled mbuf.
      const bool original = m->pool == pool_;
      for (unsigned j = 0; original && j < n_; ++j) {
        if (in_[j] == m) {
          ts = ts_[j];
          break;
        }
      }
      ++(original ? stats.passed : stats.synthesized);
      if (pass_ != nullptr && pass_->is_open()) {
        // A synthesized packet may be chained; write it linearised.
        if (m->nb_segs == 1) {
          pass_->write(ts, rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m));
        } else {
          std::vector<uint8_t> buf(rte_pktmbuf_pkt_len(m));
          const void* p = rte_pktmbuf_read(m, 0, buf.size(), buf.data());
          if (p != nullptr) pass_->write(ts, static_cast<const uint8_t*>(p), buf.size());
        }
      }
      rte_pktmbuf_free(m);
    }
    b.n = 0;
  }

  WorkerCtx* w_;
  FlowRecordRing* ring_;
  rte_mempool* pool_;
  FILE* log_;
  PcapWriter* pass_;
  rte_mbuf* pkts_[kBurst];
  rte_mbuf* in_[kBurst];  // the burst's input (pkts_ may be reordered by the worker)
  uint64_t ts_[kBurst];
  uint16_t n_ = 0;
  Side side_ = kInside;
  uint64_t now_ = 0;
};

// Ends every flow (reason shutdown) in slices of half the record ring, draining it
// after each slice, so that a table larger than the ring loses no record.
void flush_all(WorkerCtx& w, Replay& replay) {
  replay.drain();
  while (!worker_flush(w)) replay.drain();
  replay.drain();
}

void print_summary(const Stats& s, const WorkerCounters& c, double elapsed) {
  std::string out = "{";
  auto num = [&out](const char* name, uint64_t v, bool comma = true) {
    char buf[96];
    snprintf(buf, sizeof(buf), "%s\"%s\":%" PRIu64, comma ? "," : "", name, v);
    out += buf;
  };
  num("packets", s.packets, false);
  num("outbound", s.outbound);
  num("inbound", s.inbound);
  num("not_inside", s.not_inside);
  num("passed", s.passed);
  num("synthesized", s.synthesized);
  out += ",\"drops\":{";
  bool first = true;
  for (unsigned i = 0; i < kDropReasonCount; ++i) {
    if (c.drops[i] == 0) continue;
    num(drop_reason_name(static_cast<DropReason>(i)), c.drops[i], !first);
    first = false;
  }
  out += "}";
  num("flows_created", c.flows_created);
  num("flow_records", s.records);
  num("flow_records_lost", c.flow_records_lost);
  num("oversize", s.oversize);
  num("bad_link_header", s.bad_link_header);
  num("no_mbuf", s.no_mbuf);
  out += s.truncated ? ",\"truncated\":true" : ",\"truncated\":false";
  char buf[128];
  snprintf(buf, sizeof(buf), ",\"elapsed_s\":%.6f,\"pps\":%.0f}", elapsed,
           elapsed > 0 ? static_cast<double>(s.packets) / elapsed : 0.0);
  out += buf;
  fprintf(stderr, "%s\n", out.c_str());
}

int run(const Options& o, const char* prog) {
  // Inputs first: every problem with them is reported before the EAL starts.
  PcapReader reader;
  std::string err;
  if (!reader.open(o.pcap_path, &err)) return fail("--pcap " + err);
  std::string blob;
  std::vector<rules::Cidr> inside;
  if (!load_policy_file(o.policy_path, &blob, &inside)) return kExitInput;
  if (!o.inside.empty()) {
    inside.clear();
    for (const auto& text : o.inside) {
      std::string why;
      auto c = rules::parse_cidr(text, &why);
      if (!c) return fail("--inside " + text + ": " + why);
      inside.push_back(*c);
    }
  }

  if (!init_eal(prog)) return kExitInput;
  auto policy = RuntimePolicy::load(reinterpret_cast<const uint8_t*>(blob.data()), blob.size(),
                                    &err);
  if (!policy) return fail("--policy " + o.policy_path + ": " + err);
  if (o.inside.empty() && inside.empty()) inside = blob_service_cidrs(blob);
  if (inside.empty())
    return fail("no inside networks: the policy defines no service CIDRs; give --inside CIDR");

  FILE* log = stdout;
  if (o.log_path != "-") {
    log = fopen(o.log_path.c_str(), "w");
    if (log == nullptr) return fail("--log " + o.log_path + ": " + strerror(errno));
  }
  PcapWriter pass;
  if (!o.pass_path.empty() && !pass.open(o.pass_path, &err)) return fail("--pass-pcap " + err);

  rte_mempool* pool = rte_pktmbuf_pool_create("egw_replay", kPoolMbufs, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  rte_mempool* synth_pool = rte_pktmbuf_pool_create("egw_replay_synth", kSynthMbufs, 0, 0,
                                                    RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (pool == nullptr || synth_pool == nullptr)
    return fail(std::string("mbuf pool: ") + rte_strerror(rte_errno));

  uint32_t flows = o.flows;
  if (flows == 0) flows = policy->settings().max_flows;
  if (flows == 0) flows = kDefaultFlows;
  auto* ring = new (std::align_val_t(64)) FlowRecordRing();
  auto* w = new WorkerCtx();
  WorkerConfig cfg;
  cfg.flow_capacity = flows;
  cfg.hash_seed[0] = 0x6567772d7265706cull;  // fixed: a replay is reproducible
  cfg.hash_seed[1] = 0x6179000000000001ull;
  cfg.pool = synth_pool;
  if (!worker_init(*w, cfg, ring)) return fail("cannot allocate a flow table of " +
                                               std::to_string(flows) + " flows; lower --flows");
  w->published.store(policy.get(), std::memory_order_release);
  worker_refresh_policy(*w);

  Replay replay(w, ring, pool, log, &pass);
  auto frame = std::make_unique<Frame>();
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const PcapReader::Status st = reader.next(frame.get(), &err);
    if (st == PcapReader::Status::end) break;
    if (st == PcapReader::Status::error) {
      fprintf(stderr, "egw-replay: --pcap %s: %s; replaying what was read\n",
              o.pcap_path.c_str(), err.c_str());
      replay.stats.truncated = true;
      break;
    }
    ++replay.stats.packets;
    if (st == PcapReader::Status::skipped) {
      ++replay.stats.bad_link_header;
      continue;
    }
    switch (direction_of(frame->data, frame->len, inside)) {
      case Dir::outbound: replay.stats.outbound += replay.add(*frame, kInside); break;
      case Dir::inbound: replay.stats.inbound += replay.add(*frame, kOutside); break;
      case Dir::not_inside: ++replay.stats.not_inside; break;
    }
  }
  replay.run_burst();
  flush_all(*w, replay);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  int rc = 0;
  if (fflush(log) != 0 || ferror(log)) rc = fail("--log " + o.log_path + ": write failed");
  if (log != stdout) fclose(log);
  if (!pass.close(&err)) rc = fail("--pass-pcap " + o.pass_path + ": " + err);
  print_summary(replay.stats, *w->counters, elapsed);
  if (replay.stats.records != w->counters->flows_created)
    fprintf(stderr, "egw-replay: %" PRIu64 " flows created but %" PRIu64
                    " records written\n", w->counters->flows_created, replay.stats.records);

  delete w;
  ring->~FlowRecordRing();
  operator delete(ring, std::align_val_t(64));
  policy.reset();
  rte_mempool_free(pool);
  rte_mempool_free(synth_pool);
  rte_eal_cleanup();
  return rc;
}

}  // namespace
}  // namespace egw::replay

int main(int argc, char** argv) {
  egw::replay::Options o;
  if (!egw::replay::parse_options(argc, argv, &o)) return egw::replay::kExitInput;
  return egw::replay::run(o, argv[0]);
}
