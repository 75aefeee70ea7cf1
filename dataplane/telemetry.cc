// DPDK telemetry commands: answered on DPDK's telemetry thread (one per client), never
// on a worker or the control thread.
#include "dataplane/telemetry.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include <rte_telemetry.h>

#include "dataplane/stats.h"
#include "dataplane/worker.h"
#include "mgmt/stats_reader.h"

namespace egw {
namespace {

constexpr unsigned kMaxListedFlows = 100;
// The telemetry library writes at most 16 KiB of JSON per answer (max_output_len) and
// silently leaves out what does not fit: lists stop short of it, by an estimate of
// their JSON, and say so ("truncated").
constexpr size_t kListBudget = 14 * 1024;

// The sources, and a lock held while a command reads them: detaching waits for the
// command being answered. Both are leaked on purpose: the telemetry threads outlive
// main(), and an exit() must not destroy what a command may be using.
std::shared_mutex& sources_lock() {
  static auto* m = new std::shared_mutex;
  return *m;
}
TelemetrySources* g_sources = nullptr;  // under sources_lock()

int stopping(rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "error", "egw-dataplane is stopping");
  return 0;
}

// JSON bytes of one `"name": value, ` entry, for the lists' budget.
size_t entry_len(const char* name, size_t value_len) {
  return std::strlen(name) + value_len + 6;
}
size_t u64_len(uint64_t v) {
  return static_cast<size_t>(snprintf(nullptr, 0, "%llu", static_cast<unsigned long long>(v)));
}

// A dict of `name`: value pairs added to d under `key`; freed with d.
class SubDict {
 public:
  explicit SubDict(rte_tel_data* parent, const char* key) : parent_(parent), key_(key) {
    d_ = rte_tel_data_alloc();
    if (d_ != nullptr) rte_tel_data_start_dict(d_);
  }
  ~SubDict() {
    if (d_ != nullptr && rte_tel_data_add_dict_container(parent_, key_, d_, 0) != 0)
      rte_tel_data_free(d_);
  }
  SubDict(const SubDict&) = delete;
  SubDict& operator=(const SubDict&) = delete;
  void u64(const char* name, uint64_t v) {
    if (d_ != nullptr) rte_tel_data_add_dict_u64(d_, name, v);
  }

 private:
  rte_tel_data* parent_;
  const char* key_;
  rte_tel_data* d_;
};

// Reads the stats segment into v; false (d says why) once the dataplane is stopping.
bool read_view(rte_tel_data* d, mgmt::StatsView* v) {
  std::shared_lock lock(sources_lock());
  if (g_sources == nullptr) {
    stopping(d);
    return false;
  }
  mgmt::read_stats(g_sources->stats->header(), v);
  return true;
}

int cmd_stats(const char*, const char*, rte_tel_data* d) {
  mgmt::StatsView v;
  if (!read_view(d, &v)) return 0;
  const mgmt::ControlView& c = v.control;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "boot_id", v.boot_id);
  rte_tel_data_add_dict_u64(d, "updated_ns", c.updated_ns);  // the port and flow counts'
  rte_tel_data_add_dict_u64(d, "workers", v.workers);
  static constexpr const char* kRole[2] = {"inside", "outside"};
  for (int side = 0; side < 2; ++side) {
    SubDict p(d, kRole[side]);
    p.u64("port", c.port_id[side]);
    p.u64("rx_packets", c.rx_packets[side]);
    p.u64("tx_packets", c.tx_packets[side]);
    p.u64("rx_bytes", c.rx_bytes[side]);
    p.u64("tx_bytes", c.tx_bytes[side]);
    p.u64("rx_missed", c.rx_missed[side]);
    p.u64("rx_errors", c.rx_errors[side]);
    p.u64("tx_errors", c.tx_errors[side]);
    p.u64("rx_nombuf", c.rx_nombuf[side]);
  }
  rte_tel_data_add_dict_u64(d, "drops_total", v.total.total_drops());
  {
    SubDict drops(d, "drops");  // non-zero reasons only: most never happen
    for (unsigned r = 0; r < kDropReasonCount; ++r)
      if (v.total.drops[r] != 0)
        drops.u64(drop_reason_name(static_cast<DropReason>(r)), v.total.drops[r]);
  }
  {
    SubDict flows(d, "flows");
    flows.u64("active", c.flows_active);
    flows.u64("capacity", c.flows_capacity);
    flows.u64("created", v.total.flows_created);
    flows.u64("expired", v.total.flows_expired);
    flows.u64("evicted", v.total.flows_evicted);
    flows.u64("records_written", c.records_written);
  }
  {
    SubDict w(d, "worker");  // summed over workers
#define EGW_X(name) w.u64(#name, v.total.name);
    EGW_WORKER_COUNTERS(EGW_X)
#undef EGW_X
  }
  return 0;
}

int cmd_policy(const char*, const char*, rte_tel_data* d) {
  mgmt::StatsView v;
  if (!read_view(d, &v)) return 0;
  const mgmt::ControlView& c = v.control;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "active_version", c.active_version);
  rte_tel_data_add_dict_u64(d, "activations", c.activations);
  rte_tel_data_add_dict_u64(d, "activation_failures", c.activation_failures);
  // Telemetry has no floating-point values: microseconds rather than fractional ms.
  rte_tel_data_add_dict_u64(d, "last_activation_us", c.last_activation_ns / 1000);
  rte_tel_data_add_dict_u64(d, "rule_slots", v.rule_slots);
  rte_tel_data_add_dict_u64(d, "rule_slots_used", c.rule_slots_used);
  rte_tel_data_add_dict_u64(d, "rule_slots_reused", c.rule_slots_reused);
  // Rules in force beyond the slots are counted under "(other)", not listed.
  rte_tel_data_add_dict_u64(d, "rules_without_slot", c.rules_without_slot);
  rte_tel_data* ids = rte_tel_data_alloc();
  if (ids == nullptr) return -ENOMEM;
  rte_tel_data_start_array(ids, RTE_TEL_STRING_VAL);
  uint64_t active = 0, listed = 0;
  size_t used = 0;
  for (const mgmt::RuleStats& r : v.rules) {
    if (!r.active || r.id == stats::kDefaultLabel || r.id == stats::kOtherLabel) continue;
    ++active;
    used += r.id.size() + 4;  // "id",
    if (used > kListBudget || listed == RTE_TEL_MAX_ARRAY_ENTRIES) continue;
    if (rte_tel_data_add_array_string(ids, r.id.c_str()) == 0) ++listed;
  }
  rte_tel_data_add_dict_u64(d, "rules_active", active);
  rte_tel_data_add_dict_u64(d, "truncated", listed < active ? 1 : 0);
  if (rte_tel_data_add_dict_container(d, "rules", ids, 0) != 0) rte_tel_data_free(ids);
  return 0;
}

const char* proto_name(uint8_t proto, char* buf, size_t cap) {
  switch (proto) {
    case kProtoTcp:
      return "TCP";
    case kProtoUdp:
      return "UDP";
    case kProtoIcmp:
      return "ICMP";
    case kProtoIcmpv6:
      return "IPv6-ICMP";
    default:
      snprintf(buf, cap, "%u", proto);
      return buf;
  }
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::allow:
      return "allow";
    case Verdict::deny:
      return "deny";
    case Verdict::reject:
      return "reject";
  }
  return "unknown";  // a torn copy
}

// One live flow as a dict, as its flow record would name things; nullptr when no
// memory. *len gets an estimate of its JSON size.
rte_tel_data* flow_dict(const void* seg, unsigned worker, const FlowEntry& e, size_t* len) {
  rte_tel_data* f = rte_tel_data_alloc();
  if (f == nullptr) return nullptr;
  rte_tel_data_start_dict(f);
  *len = 2;
  auto str = [&](const char* name, const char* s) {
    rte_tel_data_add_dict_string(f, name, s);
    *len += entry_len(name, std::strlen(s) + 2);
  };
  auto u64 = [&](const char* name, uint64_t v) {
    rte_tel_data_add_dict_u64(f, name, v);
    *len += entry_len(name, u64_len(v));
  };
  char ip[INET6_ADDRSTRLEN], pbuf[8];
  const int af = e.key.family == 6 ? AF_INET6 : AF_INET;
  u64("worker", worker);
  u64("flow_id", e.flow_id);
  str("src_ip", inet_ntop(af, e.key.inside_ip, ip, sizeof ip) ? ip : "");
  u64("src_port", e.key.inside_port);
  str("dest_ip", inet_ntop(af, e.key.remote_ip, ip, sizeof ip) ? ip : "");
  u64("dest_port", e.key.remote_port);
  str("proto", proto_name(e.key.proto, pbuf, sizeof pbuf));
  str("verdict", verdict_name(e.verdict));
  // The slot names the rule (kSlotDefault: the default action, "(default)"); "" while
  // the slot is being rewritten.
  str("rule_id", mgmt::slot_id(seg, e.rule_slot).c_str());
  u64("pkts_toserver", e.pkts[0]);
  u64("pkts_toclient", e.pkts[1]);
  u64("bytes_toserver", e.bytes[0]);
  u64("bytes_toclient", e.bytes[1]);
  // As flow records say it: the TCP state, else new until the remote end answered.
  str("state", e.key.proto == kProtoTcp ? tcp_state_name(e.tcp_state)
                                        : (e.pkts[1] != 0 ? "established" : "new"));
  return f;
}

constexpr const char* kFlowsUsage = "usage: /egw/flows[,N] with N from 0 to 100 (flows listed)";

int cmd_flows(const char*, const char* params, rte_tel_data* d) {
  unsigned want = 0;
  if (params != nullptr && params[0] != '\0') {
    char* end = nullptr;
    errno = 0;
    const unsigned long n = std::strtoul(params, &end, 10);
    if (errno != 0 || *end != '\0' || params[0] == '-' || n > kMaxListedFlows) {
      rte_tel_data_start_dict(d);
      rte_tel_data_add_dict_string(d, "error", kFlowsUsage);
      return 0;
    }
    want = static_cast<unsigned>(n);
  }
  std::shared_lock lock(sources_lock());
  if (g_sources == nullptr) return stopping(d);
  const std::vector<WorkerCtx*>& workers = g_sources->workers;
  const void* seg = g_sources->stats->header();
  rte_tel_data_start_dict(d);
  rte_tel_data* per = rte_tel_data_alloc();
  if (per == nullptr) return -ENOMEM;
  rte_tel_data_start_array(per, RTE_TEL_U64_VAL);
  uint64_t active = 0, capacity = 0;
  for (const WorkerCtx* w : workers) {
    const uint64_t n = w->flows.size();  // a racy read of a word the worker writes
    rte_tel_data_add_array_u64(per, n);
    active += n;
    capacity += w->flows.capacity();
  }
  rte_tel_data_add_dict_u64(d, "active", active);
  rte_tel_data_add_dict_u64(d, "capacity", capacity);
  if (rte_tel_data_add_dict_container(d, "per_worker", per, 0) != 0) rte_tel_data_free(per);

  // A dict keyed by flow id: telemetry arrays cannot hold dicts.
  rte_tel_data* list = rte_tel_data_alloc();
  if (list == nullptr) return -ENOMEM;
  rte_tel_data_start_dict(list);
  unsigned listed = 0;
  size_t used = 0;
  bool truncated = false;
  for (WorkerCtx* w : workers) {
    w->flows.for_each([&](const FlowEntry& live) {
      if (listed == want || truncated) return;
      FlowEntry e;
      std::memcpy(static_cast<void*>(&e), &live, sizeof e);  // racy by design: flow_snapshot.h
      size_t len = 0;
      rte_tel_data* f = flow_dict(seg, w->id, e, &len);
      if (f == nullptr) {
        truncated = true;
        return;
      }
      char key[24];
      snprintf(key, sizeof key, "%llu", static_cast<unsigned long long>(e.flow_id));
      len += entry_len(key, 2);
      if (used + len > kListBudget || rte_tel_data_add_dict_container(list, key, f, 0) != 0) {
        rte_tel_data_free(f);
        truncated = true;
        return;
      }
      used += len;
      ++listed;
    });
  }
  rte_tel_data_add_dict_u64(d, "listed", listed);
  rte_tel_data_add_dict_u64(d, "truncated", truncated ? 1 : 0);
  if (rte_tel_data_add_dict_container(d, "flows", list, 0) != 0) rte_tel_data_free(list);
  return 0;
}

struct Command {
  const char* name;
  telemetry_cb fn;
  const char* help;
};
constexpr Command kCommands[] = {
    {"/egw/stats", cmd_stats,
     "egw counters summed over workers: ports, drops, flows. No parameters"},
    {"/egw/policy", cmd_policy,
     "egw policy in force: version, activations, rule ids. No parameters"},
    {"/egw/flows", cmd_flows,
     "egw flows active per worker. Parameter: N (0-100) live flows to list"},
};

}  // namespace

bool telemetry_register(const TelemetrySources& src, std::string* err) {
  static bool registered = false;  // control thread only
  if (!registered) {
    for (const Command& c : kCommands) {
      const int rc = rte_telemetry_register_cmd(c.name, c.fn, c.help);
      if (rc != 0) {
        *err = std::string("cannot register telemetry command ") + c.name + ": " + strerror(-rc);
        return false;
      }
    }
    registered = true;
  }
  auto* s = new TelemetrySources(src);
  std::unique_lock lock(sources_lock());
  delete g_sources;
  g_sources = s;
  return true;
}

void telemetry_detach() {
  std::unique_lock lock(sources_lock());
  delete g_sources;
  g_sources = nullptr;
}

}  // namespace egw
