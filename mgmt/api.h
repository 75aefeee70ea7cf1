// The REST API's shared machinery: JSON answers and errors, authentication, the one
// mutation path (lock, compile, commit, publish, audit) and the republisher thread.
// Request handlers (mgmt/handlers_*.cc) run on the HTTP pool threads and go through it.
#pragma once

#include <json/json.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mgmt/auth.h"
#include "mgmt/compiler.h"
#include "mgmt/http.h"
#include "mgmt/publisher.h"
#include "mgmt/store.h"
#include "rules/policy.h"

namespace egw::mgmt {

class FlowDrain;

// Serializes a JSON value compactly (one line).
std::string to_json(const Json::Value& v);
// Parses a request body strictly (no comments, no duplicate keys, one value, depth
// limited, valid UTF-8). On failure returns false with a message.
bool parse_json_strict(const std::string& text, Json::Value* out, std::string* err);

void json_response(http::Response& res, int status, const Json::Value& body);

// The contract's error shape: {"error":{"code","message","details":[{"path","message"}]}}.
void error_response(http::Response& res, int status, const std::string& code,
                    const std::string& message, const std::vector<rules::Error>& details = {});

// Activation times of the policies this process published, as a Prometheus histogram.
class ActivationHistogram {
 public:
  void record(double seconds);
  std::string prometheus(const std::string& name) const;  // HELP, TYPE and the series

 private:
  static constexpr double kBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,   0.25,   0.5,   1,    2.5,   5};
  static constexpr size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);
  mutable std::mutex mu_;
  uint64_t counts_[kBuckets] = {};
  uint64_t total_ = 0;
  double sum_ = 0;
};

struct ApiConfig {
  std::chrono::milliseconds activation_timeout{5000};
};

class Api {
 public:
  Api(PolicyStore& store, AuditLog& audit, Publisher& publisher, const TokenTable& tokens,
      ApiConfig config);
  ~Api();

  // Read-only access: true with *who when the request's token has at least `need`;
  // otherwise res holds the 401/403 answer.
  bool authorize(const http::Request& req, Role need, Identity* who, http::Response& res) const;

  // Runs a mutation: a token with `need` (admin by default), one mutation at a time,
  // and the audit line (whatever the outcome) written before the answer; a failed
  // audit write turns the answer into a 500.
  void mutation(const http::Request& req, http::Response& res,
                const std::function<void(const Identity&, http::Response&)>& fn,
                Role need = Role::admin);

  // Inside mutation(): If-Match against the current version (400/412 in res on failure).
  bool check_if_match(const http::Request& req, http::Response& res);
  // Inside mutation(): validates and compiles `document` as the next version, commits
  // it (author = who, comment from X-Egw-Comment or ?comment=, else default_comment),
  // publishes it and answers.
  void commit_document(const std::string& document, const Identity& who, const http::Request& req,
                       const std::string& default_comment, http::Response& res);

  // For http::Server::on_refused: the answer for requests refused before routing
  // (401 first for unknown resources), audited when they are mutations.
  void refused(const http::Request& req, int status, const std::string& message,
               http::Response& res);

  // Store reads, safe against a concurrent commit.
  uint64_t current_version() const;
  bool read_current(std::string* document, uint64_t* version, std::string* err) const;
  bool read_document(uint64_t version, std::string* document, std::string* err) const;
  std::vector<VersionInfo> history() const;

  // The current version (0: none committed) and its blob, for (re)publishing. A stored
  // blob this build's dataplane would refuse (another policy ABI version after an
  // upgrade, or a header that fails its checks) is recompiled from the version's document
  // under the same number and replaces the stored one (logged to stderr and the audit
  // log). False with *err when that fails: nothing is to be published, and the reason
  // stays in policy_error() until a later check passes or a version is committed.
  bool current_blob(uint64_t* version, std::string* blob, std::string* err);
  // Why the current version cannot be published; empty when it can (GET /v1/health).
  std::string policy_error() const;

  // Republishes the current version from a thread of its own (Publisher's on_connect),
  // and checks (current_blob) the stored one once at start.
  void start_republisher();
  void request_republish();
  void stop_republisher();

  Publisher& publisher() { return publisher_; }
  const ActivationHistogram& activations() const { return activations_; }
  // The flow log's drain (its counters in /metrics); may be null.
  void set_flow_drain(const FlowDrain* d) { drain_ = d; }
  const FlowDrain* flow_drain() const { return drain_; }

 private:
  struct Snapshot {
    uint64_t version = 0;
    std::string sha256;
  };
  Snapshot snapshot() const;
  bool audit(const http::Request& req, const Identity* who, int status, const Snapshot& before,
             const Snapshot& after, std::string* err);
  Publisher::Result publish(uint64_t version, const std::string& blob);
  bool current_blob_locked(uint64_t* version, std::string* blob, std::string* err);
  void set_policy_error(const std::string& why);
  void republish_loop();

  PolicyStore& store_;
  AuditLog& audit_;
  Publisher& publisher_;
  const TokenTable& tokens_;
  ApiConfig config_;
  ActivationHistogram activations_;
  const FlowDrain* drain_ = nullptr;

  std::mutex mutation_mu_;    // one mutation (commit + publish) at a time
  mutable std::mutex store_mu_;  // PolicyStore access
  std::mutex audit_mu_;
  mutable std::mutex error_mu_;
  std::string policy_error_;  // under error_mu_

  std::mutex repub_mu_;
  std::condition_variable repub_cv_;
  bool repub_wanted_ = false;
  bool repub_stop_ = false;
  std::thread repub_thread_;
};

// Route registration, one file per resource.
void add_policy_routes(Api& api, http::Server& server);    // mgmt/handlers_policy.cc
void add_ruleset_routes(Api& api, http::Server& server);   // mgmt/handlers_rulesets.cc
void add_status_routes(Api& api, http::Server& server);    // mgmt/handlers_status.cc
// GET /metrics without authentication, for --metrics-listen.
void add_open_metrics_route(Api& api, http::Server& server);

}  // namespace egw::mgmt
