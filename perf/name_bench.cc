// Standalone benchmark of name conditions end to end (single thread): validation and
// compile time (rules::parse_policy, mgmt::compile_policy) and blob size for policies of
// literal to.domains and of to.domain_regex patterns, RuntimePolicy::load time, and ns
// per decide_name() (hits and misses, thread CPU time, median of 5 runs). Every rule is
// "from any, tcp 443", so each name is decided by the first candidate its match yields.
// Then name extraction: ns per parse_tcp_flight() on a first flight (TLS ClientHellos,
// an HTTP request head) and per parse_dns_query(), from a fresh state as a flow starts.
// Needs the EAL (RuntimePolicy builds rte_acl/rte_lpm): started without hugepages.
// Usage: name_bench [max_literals [max_regexes]]   (defaults 100000 and 10000)
// The tls13-pq-2seg row is the post-quantum hello parsed as its two segments arrive.
#include <rte_eal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "dataplane/l7/l7.h"
#include "dataplane/policy.h"
#include "mgmt/compiler.h"
#include "rules/policy.h"
#include "tests/support/dns_msg.h"
#include "tests/support/tls_hello.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRuns = 5;
constexpr size_t kQueries = 1024;  // distinct names per kind, cycled
constexpr size_t kPerRule = 100;   // literal entries per rule
constexpr size_t kRegexPerRule = 10;
constexpr size_t kIters = 200000;  // decide_name() calls per run

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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

struct Row {
  const char* kind;
  size_t patterns = 0, rules = 0;
  double validate_ms = 0, compile_ms = 0, load_ms = 0, blob_kib = 0;
  double hit_ns = 0, wild_ns = 0, miss_ns = 0;  // wild_ns < 0: not measured
};

// Median ns per decide_name() over names, cycled; every decision is checked.
double time_decisions(const egw::RuntimePolicy& p, const std::vector<egw::l7::Name>& names,
                      bool hit) {
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
  std::vector<double> runs;
  uint64_t decided = 0;
  for (int r = 0; r < kRuns; ++r) {
    const double start = thread_ns();
    for (size_t i = 0; i < kIters; ++i)
      decided += p.decide_name(k, d, &names[i % names.size()], 0).rule_index != egw::kNoRule;
    runs.push_back((thread_ns() - start) / kIters);
  }
  if (decided != (hit ? kIters * kRuns : 0)) {
    fprintf(stderr, "name_bench: %s names decided %llu of %zu\n", hit ? "hit" : "miss",
            static_cast<unsigned long long>(decided), kIters * kRuns);
    exit(1);
  }
  return median(runs);
}

// Validates, compiles and loads doc; fills the build columns of row.
std::unique_ptr<egw::RuntimePolicy> build(const std::string& doc, Row* row) {
  auto t = Clock::now();
  egw::rules::ParseResult parsed = egw::rules::parse_policy(doc);
  row->validate_ms = ms_since(t);
  if (!parsed.policy) {
    fprintf(stderr, "name_bench: invalid document: %s: %s\n", parsed.errors[0].path.c_str(),
            parsed.errors[0].message.c_str());
    exit(1);
  }
  t = Clock::now();
  egw::mgmt::CompileResult res = egw::mgmt::compile_policy(*parsed.policy, doc, 1);
  row->compile_ms = ms_since(t);
  if (!res.errors.empty()) {
    fprintf(stderr, "name_bench: compile failed: %s: %s\n", res.errors[0].path.c_str(),
            res.errors[0].message.c_str());
    exit(1);
  }
  row->rules = res.stats.rules;
  row->blob_kib = res.blob.size() / 1024.0;
  std::string err;
  t = Clock::now();
  auto p = egw::RuntimePolicy::load(reinterpret_cast<const uint8_t*>(res.blob.data()),
                                    res.blob.size(), &err);
  row->load_ms = ms_since(t);
  if (!p) {
    fprintf(stderr, "name_bench: load failed: %s\n", err.c_str());
    exit(1);
  }
  return p;
}

Row literal_row(size_t count) {
  // Half exact names, half "*.zone" wildcards; queries hit one rule each, or none.
  Row row{"literal"};
  row.patterns = count;
  auto entry = [](size_t i) {
    return i % 2 ? "*.zone" + std::to_string(i) + ".example.net"
                 : "api" + std::to_string(i) + ".svc" + std::to_string(i) + ".example.com";
  };
  auto p = build(document(count, kPerRule, "domains", entry), &row);
  std::vector<egw::l7::Name> exact, wild, miss;
  for (size_t q = 0; q < kQueries; ++q) {
    const size_t i = (q * 7919) % (count / 2);  // count is even
    const size_t e = 2 * i, w = 2 * i + 1;      // an exact entry, a wildcard entry
    exact.push_back(
        to_name("api" + std::to_string(e) + ".svc" + std::to_string(e) + ".example.com"));
    wild.push_back(to_name("a.b.zone" + std::to_string(w) + ".example.net"));
    miss.push_back(
        to_name("api" + std::to_string(i) + ".nowhere" + std::to_string(q) + ".example.org"));
  }
  row.hit_ns = time_decisions(*p, exact, true);
  row.wild_ns = time_decisions(*p, wild, true);
  row.miss_ns = time_decisions(*p, miss, false);
  return row;
}

// Eight letters, distinct for distinct i (a bijection of i modulo 26^8).
std::string word(size_t i) {
  uint64_t x = (uint64_t{i} * 1000003u) % 208827064576ull;
  std::string w;
  for (int k = 0; k < 8; ++k, x /= 26) w += static_cast<char>('a' + x % 26);
  return w;
}

// shared_suffix: "^[a-z0-9-]+\.svcN\.example\.org$" (only N differs, one long common
// suffix); otherwise "^[a-z0-9-]+\.WORD\.com$" with a distinct 8-letter word each.
Row regex_row(size_t count, bool shared_suffix) {
  Row row{shared_suffix ? "regex" : "regex-w"};
  row.patterns = count;
  auto entry = [&](size_t i) {
    return shared_suffix ? "^[a-z0-9-]+\\\\.svc" + std::to_string(i) + "\\\\.example\\\\.org$"
                         : "^[a-z0-9-]+\\\\." + word(i) + "\\\\.com$";
  };
  auto p = build(document(count, kRegexPerRule, "domain_regex", entry), &row);
  std::vector<egw::l7::Name> hit, miss;
  for (size_t q = 0; q < kQueries; ++q) {
    const size_t i = (q * 7919) % count;
    const std::string host = "host-" + std::to_string(q) + ".";
    const std::string middle = shared_suffix ? "svc" + std::to_string(i) + ".example" : word(i);
    hit.push_back(to_name(host + middle + (shared_suffix ? ".org" : ".com")));
    miss.push_back(to_name(host + middle + (shared_suffix ? ".com" : ".net")));
  }
  row.hit_ns = time_decisions(*p, hit, true);
  row.wild_ns = -1;
  row.miss_ns = time_decisions(*p, miss, false);
  return row;
}

void print(const Row& r) {
  char wild[16] = "-";
  if (r.wild_ns >= 0) snprintf(wild, sizeof(wild), "%.0f", r.wild_ns);
  printf("%-8s %9zu %6zu %12.1f %11.1f %10.1f %8.1f %7.0f %8s %8.0f\n", r.kind, r.patterns, r.rules,
         r.validate_ms, r.compile_ms, r.blob_kib, r.load_ms, r.hit_ns, wild, r.miss_ns);
  fflush(stdout);
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
  for (const Input& in : inputs) {
    printf("%-14s %6zu %6d %8.0f\n", in.kind, in.bytes.size(), in.first_seg ? 2 : 1,
           time_parse(in));
    fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t max_literals = argc > 1 ? strtoul(argv[1], nullptr, 10) : 100000;
  const size_t max_regexes = argc > 2 ? strtoul(argv[2], nullptr, 10) : 10000;
  std::string prefix = "egw-name-bench-" + std::to_string(getpid());
  std::vector<std::string> args = {"name_bench",
                                   "--no-huge",
                                   "--no-pci",
                                   "--no-shconf",
                                   "-m",
                                   "1024",
                                   "-l",
                                   "0",
                                   "--log-level=lib.*:error",
                                   "--file-prefix",
                                   prefix};
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    fprintf(stderr, "name_bench: rte_eal_init failed\n");
    return 1;
  }
  printf("%-8s %9s %6s %12s %11s %10s %8s %7s %8s %8s\n", "kind", "patterns", "rules",
         "validate_ms", "compile_ms", "blob_KiB", "load_ms", "hit_ns", "wild_ns", "miss_ns");
  for (size_t n = 1000; n <= max_literals; n *= 10) print(literal_row(n));
  for (bool shared : {true, false})
    for (size_t n = 100; n <= max_regexes; n *= 10) print(regex_row(n, shared));
  print_extraction();
  rte_eal_cleanup();
  return 0;
}
