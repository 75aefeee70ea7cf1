// REST resource /v1/policy: the active document, validate, history and rollback.
// Runs on the HTTP pool threads; mutations go through Api::mutation.
#include <cstdio>

#include "mgmt/api.h"
#include "mgmt/compiler.h"

namespace egw::mgmt {

namespace {

// GET /v1/policy: the active document as committed, ETag "N".
void get_policy(Api& api, const http::Request& req, http::Response& res) {
  Identity who;
  if (!api.authorize(req, Role::reader, &who, res)) return;
  std::string doc, err;
  uint64_t v = 0;
  if (!api.read_current(&doc, &v, &err)) {
    error_response(res, 500, "internal", "cannot read the current policy: " + err);
    return;
  }
  if (v == 0) {
    error_response(res, 404, "not_found", "no policy committed yet; PUT /v1/policy first");
    return;
  }
  const std::string etag = "\"" + std::to_string(v) + "\"";
  res.set_header("ETag", etag);
  if (req.header("If-None-Match") == etag) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.content_type = "application/json";
  res.body = doc;
  if (res.body.empty() || res.body.back() != '\n') res.body += '\n';
}

// PUT /v1/policy: a whole new document.
void put_policy(Api& api, const http::Request& req, http::Response& res) {
  api.mutation(req, res, [&](const Identity& who, http::Response& out) {
    if (!api.check_if_match(req, out)) return;
    api.commit_document(req.body, who, req, "", out);
  });
}

// POST /v1/policy/validate: compiles without committing. Readers may validate.
void validate_policy(Api& api, const http::Request& req, http::Response& res) {
  api.mutation(
      req, res,
      [&](const Identity&, http::Response& out) {
        CompileResult cr = compile_document(req.body, api.current_version() + 1);
        if (!cr.errors.empty()) {
          error_response(out, 400, "invalid_policy",
                         std::to_string(cr.errors.size()) + " error(s) in the policy document",
                         cr.errors);
          return;
        }
        Json::Value body(Json::objectValue);
        body["valid"] = true;
        body["stats"] = compile_stats_json(cr);
        json_response(out, 200, body);
      },
      Role::reader);
}

Json::Value version_json(const VersionInfo& i) {
  Json::Value v(Json::objectValue);
  v["version"] = Json::UInt64(i.version);
  v["sha256"] = i.sha256;
  v["created_at"] = i.created_at;
  v["author"] = i.author;
  v["comment"] = i.comment;
  return v;
}

// GET /v1/policy/history[?limit=N]: oldest first; limit keeps the newest N.
void get_history(Api& api, const http::Request& req, http::Response& res) {
  Identity who;
  if (!api.authorize(req, Role::reader, &who, res)) return;
  std::vector<VersionInfo> h = api.history();
  size_t first = 0;
  if (req.has_query("limit")) {
    const std::string l = req.query_value("limit");
    bool digits = !l.empty() && l.size() <= 9;
    for (char c : l) digits = digits && c >= '0' && c <= '9';
    if (!digits) {
      error_response(res, 400, "bad_request", "limit must be a number of versions");
      return;
    }
    size_t n = std::stoul(l);
    if (n < h.size()) first = h.size() - n;
  }
  Json::Value arr(Json::arrayValue);
  for (size_t i = first; i < h.size(); ++i) arr.append(version_json(h[i]));
  json_response(res, 200, arr);
}

// POST /v1/policy/rollback {"version":K}: commits a new version equal to K.
void rollback(Api& api, const http::Request& req, http::Response& res) {
  api.mutation(req, res, [&](const Identity& who, http::Response& out) {
    Json::Value body;
    std::string err;
    if (!parse_json_strict(req.body, &body, &err)) {
      error_response(out, 400, "bad_request", err, {{"", err}});
      return;
    }
    std::vector<rules::Error> errors;
    if (!body.isObject()) {
      errors.push_back({"", "expected an object {\"version\": K}"});
    } else {
      for (const std::string& k : body.getMemberNames())
        if (k != "version") errors.push_back({"/" + k, "unknown field; only \"version\" is allowed"});
      if (!body.isMember("version"))
        errors.push_back({"/version", "missing: the version to roll back to"});
      else if (!body["version"].isUInt64() || body["version"].type() == Json::realValue ||
               body["version"].asUInt64() == 0)
        errors.push_back({"/version", "must be a positive integer version"});
    }
    if (!errors.empty()) {
      error_response(out, 400, "bad_request", "bad rollback request", errors);
      return;
    }
    const uint64_t k = body["version"].asUInt64();
    bool known = false;
    for (const VersionInfo& i : api.history()) known = known || i.version == k;
    if (!known) {
      error_response(out, 404, "not_found", "no committed version " + std::to_string(k));
      return;
    }
    if (!api.check_if_match(req, out)) return;
    std::string doc;
    if (!api.read_document(k, &doc, &err)) {
      error_response(out, 500, "internal", "cannot read version " + std::to_string(k) + ": " + err);
      return;
    }
    api.commit_document(doc, who, req, "rollback to version " + std::to_string(k), out);
  });
}

}  // namespace

void add_policy_routes(Api& api, http::Server& server) {
  server.route("GET", "/v1/policy",
               [&api](const http::Request& q, http::Response& r) { get_policy(api, q, r); });
  server.route("PUT", "/v1/policy",
               [&api](const http::Request& q, http::Response& r) { put_policy(api, q, r); });
  server.route("POST", "/v1/policy/validate",
               [&api](const http::Request& q, http::Response& r) { validate_policy(api, q, r); });
  server.route("GET", "/v1/policy/history",
               [&api](const http::Request& q, http::Response& r) { get_history(api, q, r); });
  server.route("POST", "/v1/policy/rollback",
               [&api](const http::Request& q, http::Response& r) { rollback(api, q, r); });
}

}  // namespace egw::mgmt
