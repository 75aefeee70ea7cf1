// The REST API's shared machinery: JSON helpers, errors, authentication, the mutation
// path (lock, compile, commit, publish, audit) and the republisher thread.
// Runs on the HTTP pool threads; the republisher on its own thread.
#include "mgmt/api.h"

#include "rules/names.h"

#include <time.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>

#include "dataplane/policy_abi.h"
#include "mgmt/compiler.h"

namespace egw::mgmt {

namespace {

constexpr size_t kMaxComment = 1024;

bool valid_comment_utf8(const std::string& s) {
  size_t bad = 0;
  return rules::valid_utf8(s, &bad);
}


std::string utc_now_micros() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000);
  return buf;
}

bool is_mutation(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "DELETE";
}

const char* code_for(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 412: return "version_mismatch";
    case 413: return "body_too_large";
    case 415: return "unsupported_media_type";
    case 501: return "not_implemented";
    case 503: return "unavailable";
    default: return "internal";
  }
}

void unauthorized(http::Response& res, const std::string& why) {
  error_response(res, 401, "unauthorized", why);
  res.set_header("WWW-Authenticate", "Bearer realm=\"egw\"");
}

// Why a stored blob cannot be published as `version` by this build, empty when it can:
// the header checks the dataplane's loader makes first, and the version stamped in it.
std::string blob_problem(const std::string& blob, uint64_t version) {
  abi::PolicyHeader h;
  if (blob.size() < sizeof(h))
    return std::to_string(blob.size()) + " bytes, shorter than a policy header";
  std::memcpy(&h, blob.data(), sizeof(h));
  if (h.magic != abi::kPolicyMagic) return "bad magic (not a compiled egw policy)";
  if (h.abi_version != abi::kPolicyAbiVersion)
    return "policy ABI version " + std::to_string(h.abi_version) + ", this build's is " +
           std::to_string(abi::kPolicyAbiVersion);
  if (h.header_size != sizeof(h)) return "header_size " + std::to_string(h.header_size);
  if (h.total_size != blob.size() || h.total_size > abi::kPolicyMaxSize)
    return "header says " + std::to_string(h.total_size) + " bytes, the file has " +
           std::to_string(blob.size());
  if (h.flags != 0) return "reserved header flags are not 0";
  if (abi::fnv1a64(reinterpret_cast<const uint8_t*>(blob.data()) + h.header_size,
                   blob.size() - h.header_size) != h.checksum)
    return "checksum mismatch (corrupted)";
  if (h.policy_version != version)
    return "stamped with version " + std::to_string(h.policy_version);
  return "";
}

// "PATH: MESSAGE (and N more)" of a failed compile.
std::string first_error(const CompileResult& cr) {
  const rules::Error& e = cr.errors.front();
  std::string s = (e.path.empty() ? "" : e.path + ": ") + e.message;
  if (cr.errors.size() > 1) s += " (and " + std::to_string(cr.errors.size() - 1) + " more)";
  return s;
}

}  // namespace

std::string to_json(const Json::Value& v) {
  Json::StreamWriterBuilder b;
  b["indentation"] = "";
  b["emitUTF8"] = true;
  b["precision"] = 15;  // 0.339458, not 0.33945800000000003
  return Json::writeString(b, v);
}

bool parse_json_strict(const std::string& text, Json::Value* out, std::string* err) {
  std::vector<rules::Error> problems;
  if (rules::read_json_strict(text, out, &problems)) return true;
  err->clear();
  for (const rules::Error& e : problems) *err += (err->empty() ? "" : "; ") + e.message;
  return false;
}

void json_response(http::Response& res, int status, const Json::Value& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = to_json(body) + "\n";
}

void error_response(http::Response& res, int status, const std::string& code,
                    const std::string& message, const std::vector<rules::Error>& details) {
  Json::Value e(Json::objectValue);
  e["code"] = code;
  e["message"] = message;
  if (!details.empty()) {
    Json::Value d(Json::arrayValue);
    for (size_t i = 0; i < details.size() && i < rules::kMaxErrors; ++i) {
      Json::Value one(Json::objectValue);
      one["path"] = details[i].path;
      one["message"] = details[i].message;
      d.append(one);
    }
    e["details"] = d;
  }
  Json::Value root(Json::objectValue);
  root["error"] = e;
  json_response(res, status, root);
}

// ---- ActivationHistogram ----

void ActivationHistogram::record(double seconds) {
  std::lock_guard<std::mutex> g(mu_);
  for (size_t i = 0; i < kBuckets; ++i)
    if (seconds <= kBounds[i]) ++counts_[i];
  ++total_;
  sum_ += seconds;
}

std::string ActivationHistogram::prometheus(const std::string& name) const {
  std::lock_guard<std::mutex> g(mu_);
  std::ostringstream o;
  o << "# HELP " << name
    << " Time the dataplane took to activate a policy this egw-mgmt published.\n"
    << "# TYPE " << name << " histogram\n";
  char num[32];
  for (size_t i = 0; i < kBuckets; ++i) {
    snprintf(num, sizeof(num), "%g", kBounds[i]);
    o << name << "_bucket{le=\"" << num << "\"} " << counts_[i] << "\n";
  }
  o << name << "_bucket{le=\"+Inf\"} " << total_ << "\n";
  snprintf(num, sizeof(num), "%.9g", sum_);
  o << name << "_sum " << num << "\n" << name << "_count " << total_ << "\n";
  return o.str();
}

// ---- Api ----

Api::Api(PolicyStore& store, AuditLog& audit, Publisher& publisher, const TokenTable& tokens,
         ApiConfig config)
    : store_(store), audit_(audit), publisher_(publisher), tokens_(tokens), config_(config) {}

Api::~Api() { stop_republisher(); }

bool Api::authorize(const http::Request& req, Role need, Identity* who,
                    http::Response& res) const {
  if (!req.has_header("Authorization")) {
    unauthorized(res, "missing Authorization: Bearer TOKEN header");
    return false;
  }
  auto id = tokens_.authenticate(req.header("Authorization"));
  if (!id) {
    unauthorized(res, "invalid token");
    return false;
  }
  if (need == Role::admin && id->role != Role::admin) {
    error_response(res, 403, "forbidden", "token \"" + id->name + "\" is a reader; this call needs an admin token");
    *who = *id;
    return false;
  }
  *who = *id;
  return true;
}

Api::Snapshot Api::snapshot() const {
  std::lock_guard<std::mutex> g(store_mu_);
  Snapshot s;
  s.version = store_.current_version();
  VersionInfo info;
  if (s.version != 0 && store_.info(s.version, &info)) s.sha256 = info.sha256;
  return s;
}

bool Api::audit(const http::Request& req, const Identity* who, int status, const Snapshot& before,
                const Snapshot& after, std::string* err) {
  AuditRecord r;
  r.time = utc_now_micros();
  r.token = who ? who->name : "";
  r.remote = req.remote();
  r.method = req.method;
  r.path = req.path;
  r.status = status;
  r.sha256_before = before.sha256;
  r.sha256_after = after.sha256;
  r.version = after.version;
  std::lock_guard<std::mutex> g(audit_mu_);
  return audit_.append(r, err);
}

void Api::mutation(const http::Request& req, http::Response& res,
                   const std::function<void(const Identity&, http::Response&)>& fn,
                   Role need) {
  Identity who;
  std::string err;
  if (!authorize(req, need, &who, res)) {
    Snapshot s = snapshot();
    bool named = res.status == 403;
    if (!audit(req, named ? &who : nullptr, res.status, s, s, &err))
      error_response(res, 500, "audit_failed", "cannot write the audit log: " + err);
    return;
  }
  std::lock_guard<std::mutex> g(mutation_mu_);
  Snapshot before = snapshot();
  fn(who, res);
  Snapshot after = snapshot();
  if (!audit(req, &who, res.status, before, after, &err)) {
    std::string msg = "cannot write the audit log: " + err;
    if (after.version != before.version)
      msg += "; version " + std::to_string(after.version) + " was committed nonetheless";
    error_response(res, 500, "audit_failed", msg);
  }
}

void Api::refused(const http::Request& req, int status, const std::string& message,
                  http::Response& res) {
  auto id = tokens_.authenticate(req.header("Authorization"));
  if ((status == 404 || status == 405) && !id) {
    unauthorized(res, req.has_header("Authorization") ? "invalid token"
                                                      : "missing Authorization: Bearer TOKEN header");
  } else {
    auto allow = res.headers;  // keep Allow from the router
    error_response(res, status, code_for(status), message);
    for (const auto& [k, v] : allow) res.set_header(k, v);
  }
  if (!is_mutation(req.method)) return;
  Snapshot s = snapshot();
  std::string err;
  if (!audit(req, id ? &*id : nullptr, res.status, s, s, &err))
    error_response(res, 500, "audit_failed", "cannot write the audit log: " + err);
}

bool Api::check_if_match(const http::Request& req, http::Response& res) {
  if (!req.has_header("If-Match")) return true;
  std::string v = req.header("If-Match");
  while (!v.empty() && v.front() == ' ') v.erase(0, 1);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  uint64_t current = current_version();
  if (v == "*") {
    if (current != 0) return true;
    error_response(res, 412, "version_mismatch", "If-Match: * but no policy is committed yet");
    return false;
  }
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  bool digits = !v.empty() && v.size() <= 19;
  for (char c : v) digits = digits && c >= '0' && c <= '9';
  if (!digits) {
    error_response(res, 400, "bad_request",
                   "If-Match must be a policy version such as \"7\" (the ETag of GET /v1/policy)");
    return false;
  }
  uint64_t want = std::stoull(v);
  if (want != current) {
    error_response(res, 412, "version_mismatch",
                   "If-Match names version " + std::to_string(want) + " but the current version is " +
                       std::to_string(current));
    res.set_header("ETag", "\"" + std::to_string(current) + "\"");
    return false;
  }
  return true;
}

Publisher::Result Api::publish(uint64_t version, const std::string& blob) {
  auto deadline = std::chrono::steady_clock::now() + config_.activation_timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 1) left = std::chrono::milliseconds(1);
    Publisher::Result r = publisher_.publish(version, blob, left);
    if (r.active) activations_.record(r.activation_ms / 1000.0);
    if (!r.busy || std::chrono::steady_clock::now() >= deadline) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Api::commit_document(const std::string& document, const Identity& who,
                          const http::Request& req, const std::string& default_comment,
                          http::Response& res) {
  std::string comment = default_comment;
  if (req.has_header("X-Egw-Comment")) comment = req.header("X-Egw-Comment");
  else if (req.has_query("comment")) comment = req.query_value("comment");
  if (comment.size() > kMaxComment || !valid_comment_utf8(comment)) {
    error_response(res, 400, "bad_request",
                   "the comment must be valid UTF-8 of at most " + std::to_string(kMaxComment) +
                       " bytes");
    return;
  }
  for (char c : comment)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      error_response(res, 400, "bad_request", "the comment must not hold control characters");
      return;
    }
  const uint64_t next = current_version() + 1;
  CompileResult cr = compile_document(document, next);
  if (!cr.errors.empty()) {
    error_response(res, 400, "invalid_policy",
                   std::to_string(cr.errors.size()) + " error(s) in the policy document",
                   cr.errors);
    return;
  }
  std::string err;
  uint64_t v;
  {
    std::lock_guard<std::mutex> g(store_mu_);
    v = store_.commit(document, cr.blob, who.name, comment, &err);
  }
  if (v == 0) {
    error_response(res, 500, "commit_failed", "the policy was not committed: " + err);
    return;
  }
  set_policy_error("");  // whatever kept the previous version from being published
  fault_point("before_publish");
  Publisher::Result pr = publish(v, cr.blob);
  fault_point("after_publish");
  Json::Value out(Json::objectValue);
  out["version"] = Json::UInt64(v);
  if (pr.active) {
    out["active"] = true;
    out["activation_ms"] = std::round(pr.activation_ms * 1000.0) / 1000.0;  // microseconds
    out["stats"] = compile_stats_json(cr);
    json_response(res, 200, out);
  } else if (pr.busy) {
    request_republish();  // keeps trying in the background
    error_response(res, 503, "dataplane_busy",
                   "version " + std::to_string(v) + " is committed but the dataplane is not "
                   "taking requests (" + pr.error + "); it is republished when it catches up");
    res.set_header("Retry-After", "1");
  } else if (!publisher_.connected()) {
    out["active"] = false;  // published when a dataplane connects
    out["stats"] = compile_stats_json(cr);
    json_response(res, 200, out);
  } else {
    error_response(res, 500, "activation_failed",
                   "version " + std::to_string(v) + " is committed but the dataplane did not "
                   "activate it: " + pr.error);
  }
  res.set_header("ETag", "\"" + std::to_string(v) + "\"");
}

uint64_t Api::current_version() const {
  std::lock_guard<std::mutex> g(store_mu_);
  return store_.current_version();
}

bool Api::read_current(std::string* document, uint64_t* version, std::string* err) const {
  std::lock_guard<std::mutex> g(store_mu_);
  *version = store_.current_version();
  if (*version == 0) return true;
  return store_.read_document(*version, document, err);
}

bool Api::read_document(uint64_t version, std::string* document, std::string* err) const {
  std::lock_guard<std::mutex> g(store_mu_);
  return store_.read_document(version, document, err);
}

std::vector<VersionInfo> Api::history() const {
  std::lock_guard<std::mutex> g(store_mu_);
  return store_.history();
}

// ---- the current blob, recompiled after an upgrade ----

std::string Api::policy_error() const {
  std::lock_guard<std::mutex> g(error_mu_);
  return policy_error_;
}

void Api::set_policy_error(const std::string& why) {
  std::lock_guard<std::mutex> g(error_mu_);
  policy_error_ = why;
}

bool Api::current_blob(uint64_t* version, std::string* blob, std::string* err) {
  std::lock_guard<std::mutex> g(mutation_mu_);
  return current_blob_locked(version, blob, err);
}

// Caller holds mutation_mu_: no commit runs in between.
bool Api::current_blob_locked(uint64_t* version, std::string* blob, std::string* err) {
  std::string problem, document;
  VersionInfo info;
  {
    std::lock_guard<std::mutex> g(store_mu_);
    *version = store_.current_version();
    if (*version == 0) return true;
    if (!store_.read_blob(*version, blob, err)) {
      *err = "cannot read the stored blob of version " + std::to_string(*version) + ": " + *err;
      set_policy_error(*err);
      blob->clear();
      return false;
    }
    problem = blob_problem(*blob, *version);
    if (problem.empty()) {
      set_policy_error("");
      return true;
    }
    store_.info(*version, &info);
    if (!store_.read_document(*version, &document, err)) {
      *err = "the stored blob of version " + std::to_string(*version) +
             " is not one this build publishes: " + problem +
             "; and its document cannot be read: " + *err;
      set_policy_error(*err);
      blob->clear();
      return false;
    }
  }
  const std::string what = "the stored blob of version " + std::to_string(*version) +
                           " is not one this build publishes: " + problem;
  AuditRecord rec;
  rec.method = "RECOMPILE";
  rec.path = "/v1/policy";
  rec.sha256_before = rec.sha256_after = info.sha256;
  rec.version = *version;
  auto audit_event = [&](int status, const std::string& detail) {
    rec.status = status;
    rec.detail = detail;
    std::string aerr;
    std::lock_guard<std::mutex> g(audit_mu_);
    if (!audit_.append(rec, &aerr)) fprintf(stderr, "egw-mgmt: %s\n", aerr.c_str());
  };

  CompileResult cr = compile_document(document, *version);
  if (!cr.errors.empty()) {
    *err = what + "; and its document no longer compiles with this build: " + first_error(cr) +
           "; not published (a connected dataplane keeps its policy): commit a corrected "
           "policy";
    audit_event(500, *err);
    set_policy_error(*err);
    blob->clear();
    return false;
  }
  std::string werr;
  bool stored;
  {
    std::lock_guard<std::mutex> g(store_mu_);
    stored = store_.replace_current_blob(cr.blob, &werr);
  }
  *blob = std::move(cr.blob);
  if (!stored) {
    // Published all the same: the dataplane gets the right policy; the disk is the problem.
    const std::string why = what + "; recompiled, but the stored blob cannot be replaced (" + werr +
                            "): a dataplane booted from current.egwp would refuse it";
    fprintf(stderr, "egw-mgmt: %s\n", why.c_str());
    audit_event(500, why);
    set_policy_error(why);
    return true;
  }
  const std::string done = what + "; recompiled from its document (same version, " +
                           std::to_string(blob->size()) + " bytes) and replaced current.egwp";
  fprintf(stderr, "egw-mgmt: %s\n", done.c_str());
  audit_event(200, done);
  set_policy_error("");
  return true;
}

// ---- republisher ----

void Api::start_republisher() {
  {
    std::lock_guard<std::mutex> g(repub_mu_);
    repub_wanted_ = true;  // checks (and recompiles) the stored blob at start
  }
  repub_thread_ = std::thread([this] { republish_loop(); });
}

void Api::request_republish() {
  {
    std::lock_guard<std::mutex> g(repub_mu_);
    repub_wanted_ = true;
  }
  repub_cv_.notify_one();
}

void Api::stop_republisher() {
  {
    std::lock_guard<std::mutex> g(repub_mu_);
    repub_stop_ = true;
  }
  repub_cv_.notify_one();
  if (repub_thread_.joinable()) repub_thread_.join();
}

void Api::republish_loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(repub_mu_);
      repub_cv_.wait(lock, [&] { return repub_wanted_ || repub_stop_; });
      if (repub_stop_) return;
      repub_wanted_ = false;
    }
    bool retry = false;
    {
      std::lock_guard<std::mutex> g(mutation_mu_);
      uint64_t v = 0;
      std::string blob, err;
      if (!current_blob_locked(&v, &blob, &err)) {
        fprintf(stderr, "egw-mgmt: not republishing: %s\n", err.c_str());
        v = 0;
      }
      if (v != 0 && publisher_.connected()) {
        Publisher::Result r = publish(v, blob);
        if (r.active)
          fprintf(stderr, "egw-mgmt: published version %llu to the dataplane (%.3f ms)\n",
                  static_cast<unsigned long long>(v), r.activation_ms);
        else if (r.busy)
          retry = true;
        else if (publisher_.connected())
          fprintf(stderr, "egw-mgmt: the dataplane did not activate version %llu: %s\n",
                  static_cast<unsigned long long>(v), r.error.c_str());
      }
    }
    if (retry) {
      std::unique_lock<std::mutex> lock(repub_mu_);
      repub_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return repub_stop_; });
      repub_wanted_ = true;
    }
  }
}

}  // namespace egw::mgmt
