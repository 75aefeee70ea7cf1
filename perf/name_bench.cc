// The rules_scale scenario of make perf (perf-method.md), then name extraction; single
// thread.
//
// Policies of literal to.domains (10, 1k, 10k, 100k entries: half exact names, half
// "*.zone" wildcards, 100 to a rule) and of to.domain_regex patterns (1k, 10k; two
// shapes, see regex_row). Per policy:
//   compile_s  what an operator waits for before the blob exists, wall time:
//              validate_s (rules::parse_policy, which also compiles each regex alone)
//              + build_s (mgmt::compile_policy: compile and serialize). cpu_s is its
//              process CPU time: the compile is single-threaded, so cpu_s is what it
//              takes on an idle core when a busy machine inflates the wall time.
//   blob_MiB, load_ms (RuntimePolicy::load, the activation's share),
//   ns per RuntimePolicy::decide_name(), thread CPU time: exact and wildcard hits,
//              misses, and mix, a pseudo-random interleaving of them (1:1:1; regexes
//              1:1 hit, miss) whose branches the CPU cannot learn: the per-flow mean.
//              hot: the same mix over its first kHot names only, whose table entries
//              stay in cache (popular names), next to mix's uniform spread (the worst
//              case of a table larger than the caches).
// Every rule is "from any, tcp 443", so each name is decided by the first candidate its
// match yields. Timings are medians of 5 runs, except the compile of 10k regexes, run
// once: one takes 25-45 s, and the whole program must stay near 2 minutes.
// Each kind of query cycles through kQueries names in a stride order that visits every
// entry (every exact name, wildcard, regex) equally often, so the big tables are used
// whole, not through one cache-resident corner; the same number of names at every size
// keeps the ratio between sizes about the table alone.
// Then name extraction: ns per parse_tcp_flight() on a first flight (TLS ClientHellos,
// an HTTP request head) and per parse_dns_query(), from a fresh state as a flow starts.
// The tls13-pq-2seg row is the post-quantum hello parsed as its two segments arrive.
// Needs the EAL (RuntimePolicy builds rte_acl/rte_lpm): started without hugepages.
// Usage: name_bench [--json FILE] [--slow] [--quick]
//   --json FILE  also writes {"rules_scale": {...}}: <row>_compile_s, <row>_match_ns ...
//                per row (rows: domains_10 ... domains_100k, regex_1k, regex_10k,
//                regex_same_1k [, regex_same_10k]), match_ns_<size> for the domains and
//                "extraction_ns": {input: ns}
//   --slow       adds the same-shape 10k regex row (about 40 s of compile; its hits
//                cost tens of microseconds each)
//   --quick      one run of everything instead of the median of 5 (make test's smoke run)
#include <json/json.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"
#include "dataplane/policy.h"
#include "mgmt/compiler.h"
#include "perf/bench_eal.h"
#include "rules/policy.h"
#include "tests/support/dns_msg.h"
#include "tests/support/tls_hello.h"

namespace {

using Clock = std::chrono::steady_clock;

int kRuns = 5;                     // --quick: 1 (a smoke run: shape, not timing)
constexpr int kBigRegexRuns = 1;    // compiles of a 10k-regex policy
constexpr size_t kQueries = 50000;  // names per kind: a multiple of every entry count
constexpr size_t kStride = 7919;    // prime, coprime to every entry count: visits all
constexpr size_t kPerRule = 100;    // literal entries per rule
constexpr size_t kRegexPerRule = 10;
constexpr size_t kIters = 200000;  // decide_name() calls per run, at most
constexpr double kRunNs = 50e6;    // ... fewer when they would take longer than this
constexpr size_t kHot = 256;       // names of the hot mix

Json::Value g_json(Json::objectValue);  // the "rules_scale" object

double wall_s(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double cpu_ns(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double thread_ns() {
  return cpu_ns(CLOCK_THREAD_CPUTIME_ID);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// 10 -> "10", 1000 -> "1k", 100000 -> "100k": the size in JSON keys.
std::string size_label(size_t n) {
  return n % 1000 ? std::to_string(n) : std::to_string(n / 1000) + "k";
}

egw::l7::Name to_name(const std::string& s) {
  egw::l7::Name n;
  if (!egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &n)) {
    fprintf(stderr, "name_bench: bad generated name %s\n", s.c_str());
    exit(1);
  }
  return n;
}

// A document of count entries, per_rule to a rule; entry(i) is the JSON string of entry i.
template <typename F>
std::string document(size_t count, size_t per_rule, const char* field, F entry) {
  std::string doc = R"({"schema":1,"rulesets":[{"name":"bench","rules":[)";
  for (size_t r = 0; r * per_rule < count; ++r) {
    doc += std::string(r ? "," : "") + R"({"id":"r)" + std::to_string(r) +
           R"(","from":["any"],"proto":"tcp","ports":[443],"to":{")" + field + R"(":[)";
    for (size_t i = r * per_rule; i < std::min(count, (r + 1) * per_rule); ++i)
      doc += std::string(i == r * per_rule ? "" : ",") + "\"" + entry(i) + "\"";
    doc += R"(]},"action":"allow"})";
  }
  return doc + "]}]}";
}

// Names to decide, with whether each must be decided by a rule (a hit).
struct Queries {
  std::vector<egw::l7::Name> names;
  std::vector<uint8_t> hit;
  void add(const egw::l7::Name& n, bool h) {
    names.push_back(n);
    hit.push_back(h);
  }
};

// For each q < count, the q-th query of a kind picked pseudo-randomly (fixed seed: the
// same mix every run).
Queries mix(const std::vector<const Queries*>& kinds, size_t count = kQueries) {
  Queries m;
  std::minstd_rand rng(1);
  for (size_t q = 0; q < count; ++q) {
    const Queries& k = *kinds[rng() % kinds.size()];
    m.add(k.names[q], k.hit[q]);
  }
  return m;
}

// Median ns per decide_name() over qs, cycled; every decision is checked.
double time_decisions(const egw::RuntimePolicy& p, const Queries& qs) {
  egw::FlowKey k{};
  k.family = 4;
  k.inside_ip[0] = 10;
  k.remote_ip[0] = 192;
  k.proto = 6;
  k.remote_port = 443;
  const egw::Decision d = p.classify(k);
  if (!d.needs_name) {
    fprintf(stderr, "name_bench: the flow does not wait for its name\n");
    exit(1);
  }
  const size_t n = qs.names.size();
  // A first pass sets the calls per run, so slow matchers stay near kRunNs a run.
  const size_t probe = std::min<size_t>(n, 1000);
  double start = thread_ns();
  for (size_t i = 0; i < probe; ++i) p.decide_name(k, d, &qs.names[i], 0);
  const double est = (thread_ns() - start) / probe;
  const size_t iters = std::clamp<size_t>(static_cast<size_t>(kRunNs / est), probe, kIters);
  uint64_t expected = 0;
  for (size_t i = 0, j = 0; i < iters; ++i, j = j + 1 == n ? 0 : j + 1) expected += qs.hit[j];
  std::vector<double> runs;
  for (int r = 0; r < kRuns; ++r) {
    uint64_t decided = 0;
    start = thread_ns();
    // j wraps by comparison: a division per call would cost more than some lookups.
    for (size_t i = 0, j = 0; i < iters; ++i, j = j + 1 == n ? 0 : j + 1)
      decided += p.decide_name(k, d, &qs.names[j], 0).rule_index != egw::kNoRule;
    runs.push_back((thread_ns() - start) / iters);
    if (decided != expected) {
      fprintf(stderr, "name_bench: %llu names decided by a rule, expected %llu\n",
              static_cast<unsigned long long>(decided), static_cast<unsigned long long>(expected));
      exit(1);
    }
  }
  return median(runs);
}

struct Row {
  std::string key;  // JSON prefix: domains_10k, regex_1k, regex_same_10k
  const char* kind;
  size_t patterns = 0, rules = 0;
  int reps = 0;  // compiles timed
  double validate_s = 0, build_s = 0, compile_s = 0, cpu_s = 0, blob_mib = 0, load_ms = 0;
  double exact_ns = 0, wild_ns = -1, miss_ns = 0, mix_ns = 0, hot_ns = 0;  // wild_ns < 0: none
};

// Validates and compiles doc reps times, loads the blob kRuns times; fills the build
// columns of row and returns the last policy loaded.
std::unique_ptr<egw::RuntimePolicy> build(const std::string& doc, int reps, Row* row) {
  std::vector<double> validate, compile, total, cpu;
  std::string blob;
  for (int r = 0; r < reps; ++r) {
    const double cpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    const auto t0 = Clock::now();
    egw::rules::ParseResult parsed = egw::rules::parse_policy(doc);
    validate.push_back(wall_s(t0));
    if (!parsed.policy) {
      fprintf(stderr, "name_bench: invalid document: %s: %s\n", parsed.errors[0].path.c_str(),
              parsed.errors[0].message.c_str());
      exit(1);
    }
    const auto t1 = Clock::now();
    egw::mgmt::CompileResult res = egw::mgmt::compile_policy(*parsed.policy, doc, 1);
    compile.push_back(wall_s(t1));
    total.push_back(wall_s(t0));
    cpu.push_back((cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / 1e9);
    if (!res.errors.empty()) {
      fprintf(stderr, "name_bench: compile failed: %s: %s\n", res.errors[0].path.c_str(),
              res.errors[0].message.c_str());
      exit(1);
    }
    row->rules = res.stats.rules;
    blob = std::move(res.blob);
  }
  row->reps = reps;
  row->validate_s = median(validate);
  row->build_s = median(compile);
  row->compile_s = median(total);
  row->cpu_s = median(cpu);
  row->blob_mib = blob.size() / double(1 << 20);
  std::unique_ptr<egw::RuntimePolicy> p;
  std::vector<double> load;
  for (int r = 0; r < kRuns; ++r) {
    std::string err;
    p.reset();  // one policy at a time, as after an activation
    const auto t = Clock::now();
    p = egw::RuntimePolicy::load(reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), &err);
    load.push_back(wall_s(t) * 1e3);
    if (!p) {
      fprintf(stderr, "name_bench: load failed: %s\n", err.c_str());
      exit(1);
    }
  }
  row->load_ms = median(load);
  return p;
}

std::string exact_entry(size_t i) {
  return "api" + std::to_string(i) + ".svc" + std::to_string(i) + ".example.com";
}
std::string wild_suffix(size_t i) {
  return "zone" + std::to_string(i) + ".example.net";
}

Row literal_row(size_t count) {
  // Even entries exact, odd ones "*.zoneN.example.net"; queries hit one rule each, or none.
  Row row{"domains_" + size_label(count), "domains"};
  row.patterns = count;
  auto entry = [](size_t i) { return i % 2 ? "*." + wild_suffix(i) : exact_entry(i); };
  auto p = build(document(count, kPerRule, "domains", entry), kRuns, &row);
  Queries exact, wild, miss;
  for (size_t q = 0; q < kQueries; ++q) {
    const size_t i = (q * kStride) % (count / 2);  // count is even
    const std::string qs = std::to_string(q);
    exact.add(to_name(exact_entry(2 * i)), true);
    wild.add(to_name("h" + qs + "." + wild_suffix(2 * i + 1)), true);
    // The shape of a hit, so the same lookups run and find nothing.
    miss.add(to_name("api" + std::to_string(2 * i) + ".svc" + qs + ".example.org"), false);
  }
  row.exact_ns = time_decisions(*p, exact);
  row.wild_ns = time_decisions(*p, wild);
  row.miss_ns = time_decisions(*p, miss);
  row.mix_ns = time_decisions(*p, mix({&exact, &wild, &miss}));
  row.hot_ns = time_decisions(*p, mix({&exact, &wild, &miss}, kHot));
  return row;
}

// Eight letters, distinct for distinct i (a bijection of i modulo 26^8).
std::string word(size_t i) {
  uint64_t x = (uint64_t{i} * 1000003u) % 208827064576ull;
  std::string w;
  for (int k = 0; k < 8; ++k, x /= 26) w += static_cast<char>('a' + x % 26);
  return w;
}

// same_shape: "^[a-z0-9-]+\.svcN\.example\.org$" (only N differs, one long common
// suffix: Hyperscan's hard case); otherwise "^[a-z0-9-]+\.WORD\.com$" with a distinct
// 8-letter word each, like patterns written for different sites.
Row regex_row(size_t count, bool same_shape) {
  Row row{(same_shape ? "regex_same_" : "regex_") + size_label(count),
          same_shape ? "regex-same" : "regex"};
  row.patterns = count;
  auto entry = [&](size_t i) {
    return same_shape ? "^[a-z0-9-]+\\\\.svc" + std::to_string(i) + "\\\\.example\\\\.org$"
                      : "^[a-z0-9-]+\\\\." + word(i) + "\\\\.com$";
  };
  auto p = build(document(count, kRegexPerRule, "domain_regex", entry),
                 count >= 10000 ? kBigRegexRuns : kRuns, &row);
  Queries hit, miss;
  for (size_t q = 0; q < kQueries; ++q) {
    const size_t i = (q * kStride) % count;
    const std::string host = "host-" + std::to_string(q) + ".";
    const std::string middle = same_shape ? "svc" + std::to_string(i) + ".example" : word(i);
    hit.add(to_name(host + middle + (same_shape ? ".org" : ".com")), true);
    miss.add(to_name(host + middle + (same_shape ? ".com" : ".net")), false);
  }
  row.exact_ns = time_decisions(*p, hit);
  row.miss_ns = time_decisions(*p, miss);
  row.mix_ns = time_decisions(*p, mix({&hit, &miss}));
  row.hot_ns = time_decisions(*p, mix({&hit, &miss}, kHot));
  return row;
}

void print_header() {
  printf("%-10s %8s %5s %4s %10s %8s %9s %7s %8s %7s %6s %6s %6s %6s %6s\n", "kind", "patterns",
         "rules", "reps", "validate_s", "build_s", "compile_s", "cpu_s", "blob_MiB", "load_ms",
         "hit_ns", "wild", "miss", "mix", "hot");
}

// x to `decimals` places: the JSON writer prints at most 6 and drops trailing zeros.
double rounded(double x, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(x * scale) / scale;
}

void record(const Row& r) {
  char wild[16] = "-";
  if (r.wild_ns >= 0) snprintf(wild, sizeof(wild), "%.0f", r.wild_ns);
  printf("%-10s %8zu %5zu %4d %10.4f %8.4f %9.4f %7.3f %8.3f %7.1f %6.0f %6s %6.0f %6.0f %6.0f\n",
         r.kind, r.patterns, r.rules, r.reps, r.validate_s, r.build_s, r.compile_s, r.cpu_s,
         r.blob_mib, r.load_ms, r.exact_ns, wild, r.miss_ns, r.mix_ns, r.hot_ns);
  fflush(stdout);
  Json::Value& j = g_json;
  const std::string& k = r.key;
  j[k + "_patterns"] = Json::UInt64(r.patterns);
  j[k + "_rules"] = Json::UInt64(r.rules);
  j[k + "_compile_reps"] = r.reps;
  j[k + "_validate_s"] = rounded(r.validate_s, 6);
  j[k + "_build_s"] = rounded(r.build_s, 6);
  j[k + "_compile_s"] = rounded(r.compile_s, 6);
  j[k + "_compile_cpu_s"] = rounded(r.cpu_s, 6);
  j[k + "_blob_mib"] = rounded(r.blob_mib, 4);
  j[k + "_load_ms"] = rounded(r.load_ms, 3);
  j[k + "_hit_ns"] = rounded(r.exact_ns, 1);
  if (r.wild_ns >= 0) j[k + "_wild_ns"] = rounded(r.wild_ns, 1);
  j[k + "_miss_ns"] = rounded(r.miss_ns, 1);
  j[k + "_match_ns"] = rounded(r.mix_ns, 1);
  j[k + "_hot_ns"] = rounded(r.hot_ns, 1);
}

// ---- Name extraction ------------------------------------------------------------

constexpr size_t kParseIters = 200000;  // parser calls per run
constexpr size_t kMss = 1448;           // a segment of a 1500-byte path with timestamps

const char kHost[] = "www.example.com";

struct Input {
  const char* kind;
  std::vector<uint8_t> bytes;
  uint16_t port;     // remote port: 53 is DNS over TCP (not used here), else detected
  size_t first_seg;  // 0: one call with every byte; else two calls, at first_seg and all
  bool dns;          // parse_dns_query() instead of parse_tcp_flight()
};

// Runs one flow's parse (fresh state, as in the worker); returns the name's length.
size_t parse_once(const Input& in) {
  egw::l7::Error err;
  if (in.dns) {
    egw::l7::DnsQuery q;
    return egw::l7::parse_dns_query(in.bytes.data(), in.bytes.size(), &q, &err) ==
                   egw::l7::Status::ok
               ? q.name.len
               : 0;
  }
  egw::l7::FlightState st;
  egw::l7::FlowName out;
  if (in.first_seg != 0 && egw::l7::parse_tcp_flight(in.bytes.data(), in.first_seg, in.port, &st,
                                                     &out, &err) != egw::l7::Status::need_more)
    return 0;
  return egw::l7::parse_tcp_flight(in.bytes.data(), in.bytes.size(), in.port, &st, &out, &err) ==
                     egw::l7::Status::ok &&
                 out.has_name
             ? out.name.len
             : 0;
}

// Median ns per flow (thread CPU time); every parse must yield kHost.
double time_parse(const Input& in) {
  std::vector<double> runs;
  for (int r = 0; r < kRuns; ++r) {
    size_t named = 0;
    const double start = thread_ns();
    for (size_t i = 0; i < kParseIters; ++i) named += parse_once(in) == sizeof(kHost) - 1;
    runs.push_back((thread_ns() - start) / kParseIters);
    if (named != kParseIters) {
      fprintf(stderr, "name_bench: %s named %zu of %zu\n", in.kind, named, kParseIters);
      exit(1);
    }
  }
  return median(runs);
}

std::vector<uint8_t> bytes_of(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

void print_extraction() {
  using namespace egw::test;
  HelloSpec tls13 = tls13_spec(kHost);
  tls13.pad_to = 512;  // padded like browsers' hellos: a 517-byte record
  const TlsBytes pq = hello_stream(pq_spec(kHost));
  const std::string http =
      std::string("GET /index.html HTTP/1.1\r\nHost: ") + kHost +
      "\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
      "Firefox/128.0\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;"
      "q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n"
      "Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n\r\n";
  const Input inputs[] = {
      {"tls13", hello_stream(tls13), 443, 0, false}, {"tls13-pq", pq, 443, 0, false},
      {"tls13-pq-2seg", pq, 443, kMss, false},       {"http", bytes_of(http), 80, 0, false},
      {"dns", dns_query(kHost), 53, 0, true},
  };
  printf("\n%-14s %6s %6s %8s\n", "extract", "bytes", "calls", "ns_flow");
  Json::Value& j = g_json["extraction_ns"];
  for (const Input& in : inputs) {
    const double ns = time_parse(in);
    j[in.kind] = rounded(ns, 1);
    printf("%-14s %6zu %6d %8.0f\n", in.kind, in.bytes.size(), in.first_seg ? 2 : 1, ns);
    fflush(stdout);
  }
}

void write_json(const std::string& path) {
  Json::StreamWriterBuilder w;
  w["indentation"] = " ";
  w["precision"] = 6;
  w["precisionType"] = "decimal";
  Json::Value root;
  root["rules_scale"] = g_json;
  std::ofstream out(path);
  out << Json::writeString(w, root) << "\n";
  out.close();
  if (!out) {
    fprintf(stderr, "name_bench: cannot write %s\n", path.c_str());
    exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  bool slow = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else if (strcmp(argv[i], "--slow") == 0) {
      slow = true;
    } else if (strcmp(argv[i], "--quick") == 0) {
      kRuns = 1;
    } else {
      fprintf(stderr, "usage: name_bench [--json FILE] [--slow] [--quick]\n");
      return 2;
    }
  }
  // Keeps its CPUs: the regex parts compile in parallel in egw-mgmt and egwctl (no EAL).
  if (!egw::bench::start_eal("name_bench", true)) {
    fprintf(stderr, "name_bench: rte_eal_init failed\n");
    return 1;
  }
  print_header();
  std::vector<Row> domains;
  for (size_t n : {10, 1000, 10000, 100000}) {
    domains.push_back(literal_row(n));
    record(domains.back());
    g_json["match_ns_" + size_label(n)] = rounded(domains.back().mix_ns, 1);
  }
  for (bool same : {false, true})
    for (size_t n : {1000, 10000})
      if (!same || n < 10000 || slow) record(regex_row(n, same));
  const Row& small = domains.front();
  const Row& big = domains.back();
  printf(
      "\ndecide_name at %zu domains / at %zu: hit %.2fx, wildcard %.2fx, miss %.2fx, "
      "mix %.2fx, hot %.2fx\n",
      big.patterns, small.patterns, big.exact_ns / small.exact_ns, big.wild_ns / small.wild_ns,
      big.miss_ns / small.miss_ns, big.mix_ns / small.mix_ns, big.hot_ns / small.hot_ns);
  g_json["match_ratio_100k_10"] = rounded(big.mix_ns / small.mix_ns, 3);
  g_json["match_hot_ratio_100k_10"] = rounded(big.hot_ns / small.hot_ns, 3);
  print_extraction();
  if (!json_path.empty()) write_json(json_path);
  rte_eal_cleanup();
  return 0;
}
