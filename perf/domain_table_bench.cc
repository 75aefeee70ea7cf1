// Standalone benchmark of dataplane/l7/domain_table.cc (single thread, no EAL): build
// time and table size for 10..100k patterns (half exact, half "*.suffix"), and ns per
// match() for 3-5 label names (exact hits, wildcard hits, misses); median of 5 runs.
// match() times are thread CPU time, so other load on the machine inflates them less.
// Build: g++ -std=c++20 -O2 -I. perf/domain_table_bench.cc dataplane/l7/domain_table.cc
//          dataplane/l7/name.cc -o build/perf/domain_table_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "dataplane/l7/domain_table.h"

namespace {

using egw::l7::DomainTable;
using egw::l7::DomainTableBuilder;
using egw::l7::Name;
using Clock = std::chrono::steady_clock;

constexpr int kRuns = 5;
constexpr size_t kQueries = 4096;  // distinct names per kind, cycled
constexpr size_t kMatchesPerRun = 1u << 21;

const char* const kHosts[] = {"api", "www",       "cdn",  "static", "auth", "login", "m",  "img",
                              "eu",  "us-east-1", "edge", "files",  "pay",  "hooks", "v2", "s3"};
const char* const kWords[] = {"stripe", "github",     "amazonaws", "example",  "paypal",  "slack",
                              "google", "cloudfront", "fastly",    "akamai",   "datadog", "sentry",
                              "okta",   "twilio",     "shopify",   "atlassian"};
const char* const kTlds[] = {"com", "net", "org", "io", "dev", "co.uk", "cloud", "app"};

template <size_t N>
const char* pick(const char* const (&a)[N], std::mt19937& rng) {
  return a[rng() % N];
}

// A registrable domain like "stripe4821.com" (unique enough across 100k patterns).
std::string domain(std::mt19937& rng) {
  return std::string(pick(kWords, rng)) + std::to_string(rng() % 100000) + "." + pick(kTlds, rng);
}

Name to_name(const std::string& s) {
  Name n;
  if (!egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &n)) {
    fprintf(stderr, "bad generated name %s\n", s.c_str());
    std::exit(1);
  }
  return n;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double thread_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

// Median ns per match() over the names, cycled.
double time_matches(const DomainTable& t, const std::vector<Name>& names, uint64_t* sink) {
  std::vector<double> runs;
  uint32_t out[16];
  for (int r = 0; r < kRuns; ++r) {
    const double start = thread_ns();
    for (size_t i = 0; i < kMatchesPerRun; ++i)
      *sink += t.match(names[i & (kQueries - 1)], out, 16);
    runs.push_back((thread_ns() - start) / kMatchesPerRun);
  }
  return median(runs);
}

}  // namespace

int main() {
  static_assert((kQueries & (kQueries - 1)) == 0);
  uint64_t sink = 0;
  printf("%9s %10s %10s %9s %12s %11s %9s\n", "patterns", "build_ms", "size_KiB", "B/pattern",
         "exact_hit_ns", "wild_hit_ns", "miss_ns");
  for (size_t count : {size_t{10}, size_t{1000}, size_t{10000}, size_t{100000}}) {
    std::mt19937 rng(static_cast<uint32_t>(count));
    std::vector<std::string> exact, wild;  // wild: the suffix after "*."
    for (size_t i = 0; i < count; ++i) {
      if (i % 2 == 0)
        exact.push_back(std::string(pick(kHosts, rng)) + "." + domain(rng));  // 3-4 labels
      else
        wild.push_back(domain(rng));
    }
    std::vector<double> build_ms;
    std::string bytes;
    for (int r = 0; r < kRuns; ++r) {
      const auto start = Clock::now();
      DomainTableBuilder b;
      std::string err;
      for (size_t i = 0; i < exact.size(); ++i) b.add(exact[i], static_cast<uint32_t>(i), &err);
      for (size_t i = 0; i < wild.size(); ++i)
        b.add("*." + wild[i], static_cast<uint32_t>(i), &err);
      bytes = b.build();
      const std::chrono::duration<double, std::milli> d = Clock::now() - start;
      build_ms.push_back(d.count());
    }
    DomainTable t;
    std::string err;
    if (!t.open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &err)) {
      fprintf(stderr, "open failed: %s\n", err.c_str());
      return 1;
    }
    // Queries of 3-5 labels: exact names, 1-2 labels under a wildcard, and misses.
    std::vector<Name> exact_q, wild_q, miss_q;
    for (size_t i = 0; i < kQueries; ++i) {
      exact_q.push_back(to_name(exact[rng() % exact.size()]));
      std::string w = std::string(pick(kHosts, rng)) + "." + wild[rng() % wild.size()];
      if (rng() % 2) w = std::string(pick(kHosts, rng)) + "." + w;
      wild_q.push_back(to_name(w));
      std::string m =
          std::string(pick(kHosts, rng)) + ".miss" + std::to_string(rng()) + "." + pick(kTlds, rng);
      if (rng() % 2) m = std::string(pick(kHosts, rng)) + "." + m;
      miss_q.push_back(to_name(m));
    }
    const double exact_ns = time_matches(t, exact_q, &sink);
    const double wild_ns = time_matches(t, wild_q, &sink);
    const double miss_ns = time_matches(t, miss_q, &sink);
    printf("%9zu %10.2f %10.1f %9.1f %12.1f %11.1f %9.1f\n", count, median(build_ms),
           bytes.size() / 1024.0, static_cast<double>(bytes.size()) / count, exact_ns, wild_ns,
           miss_ns);
  }
  fprintf(stderr, "(checksum %llu)\n", static_cast<unsigned long long>(sink));
  return 0;
}
