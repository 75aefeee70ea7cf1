// REST resource /v1/rulesets/NAME: one named ruleset of the active policy, read,
// replaced or removed; each change is a new version through Api::commit_document.
// Runs on the HTTP pool threads.
#include "mgmt/api.h"
#include "mgmt/compiler.h"

namespace egw::mgmt {

namespace {

std::string pretty(const Json::Value& v) {
  Json::StreamWriterBuilder b;
  b["indentation"] = "  ";
  b["emitUTF8"] = true;
  return Json::writeString(b, v) + "\n";
}

// The current document, parsed. False with res filled when there is none (absent_status).
bool load_current(Api& api, Json::Value* doc, uint64_t* version, int absent_status,
                  http::Response& res) {
  std::string text, err;
  if (!api.read_current(&text, version, &err)) {
    error_response(res, 500, "internal", "cannot read the current policy: " + err);
    return false;
  }
  if (*version == 0) {
    if (absent_status == 409)
      error_response(res, 409, "no_policy",
                     "no policy committed yet: PUT /v1/policy a whole document first");
    else
      error_response(res, 404, "not_found", "no policy committed yet");
    return false;
  }
  if (!parse_json_strict(text, doc, &err) || !doc->isObject()) {
    error_response(res, 500, "internal", "the stored policy does not parse: " + err);
    return false;
  }
  return true;
}

// Index of the ruleset called name in doc["rulesets"], or -1.
int find_ruleset(const Json::Value& doc, const std::string& name) {
  const Json::Value& rs = doc["rulesets"];
  if (!rs.isArray()) return -1;
  for (Json::ArrayIndex i = 0; i < rs.size(); ++i)
    if (rs[i].isObject() && rs[i]["name"].isString() && rs[i]["name"].asString() == name)
      return static_cast<int>(i);
  return -1;
}

// Validates doc; on errors answers 400 with every error, naming for those inside the
// ruleset at index idx the path in the request body too.
bool validate_with_body_paths(const std::string& text, int idx, http::Response& res) {
  CompileResult cr = compile_document(text, 0);
  if (cr.errors.empty()) return true;
  const std::string prefix = "/rulesets/" + std::to_string(idx);
  for (rules::Error& e : cr.errors) {
    if (idx < 0 || e.path.compare(0, prefix.size(), prefix) != 0) continue;
    if (e.path.size() != prefix.size() && e.path[prefix.size()] != '/') continue;
    std::string body_path = e.path.substr(prefix.size());
    e.message += " (in the request body: " + (body_path.empty() ? "/" : body_path) + ")";
  }
  error_response(res, 400, "invalid_policy",
                 std::to_string(cr.errors.size()) +
                     " error(s) in the policy with this ruleset; paths are in the whole document",
                 cr.errors);
  return false;
}

void get_ruleset(Api& api, const http::Request& req, http::Response& res) {
  Identity who;
  if (!api.authorize(req, Role::reader, &who, res)) return;
  Json::Value doc;
  uint64_t v = 0;
  if (!load_current(api, &doc, &v, 404, res)) return;
  const std::string& name = req.params.at("name");
  int i = find_ruleset(doc, name);
  if (i < 0) {
    error_response(res, 404, "not_found", "no ruleset named \"" + name + "\" in version " +
                                              std::to_string(v));
    return;
  }
  json_response(res, 200, doc["rulesets"][i]);
  res.set_header("ETag", "\"" + std::to_string(v) + "\"");
}

// GET /v1/rulesets: the names of the rulesets, in evaluation order.
void list_rulesets(Api& api, const http::Request& req, http::Response& res) {
  Identity who;
  if (!api.authorize(req, Role::reader, &who, res)) return;
  Json::Value doc;
  uint64_t v = 0;
  if (!load_current(api, &doc, &v, 404, res)) return;
  Json::Value out(Json::arrayValue);
  const Json::Value& rs = doc["rulesets"];
  if (rs.isArray())
    for (const Json::Value& r : rs) {
      Json::Value one(Json::objectValue);
      one["name"] = r["name"];
      one["rules"] = r["rules"].isArray() ? r["rules"].size() : 0;
      out.append(one);
    }
  json_response(res, 200, out);
  res.set_header("ETag", "\"" + std::to_string(v) + "\"");
}

void put_ruleset(Api& api, const http::Request& req, http::Response& res) {
  api.mutation(req, res, [&](const Identity& who, http::Response& out) {
    const std::string& name = req.params.at("name");
    Json::Value body;
    std::string err;
    if (!parse_json_strict(req.body, &body, &err)) {
      error_response(out, 400, "bad_request", err, {{"", err}});
      return;
    }
    if (!body.isObject()) {
      error_response(out, 400, "bad_request", "the body must be an object {\"rules\":[...]}",
                     {{"", "expected an object"}});
      return;
    }
    if (body.isMember("name") && (!body["name"].isString() || body["name"].asString() != name)) {
      error_response(out, 400, "bad_request",
                     "the body's name must equal the ruleset name in the URL (\"" + name + "\")",
                     {{"/name", "must be \"" + name + "\" or absent"}});
      return;
    }
    if (!api.check_if_match(req, out)) return;
    Json::Value doc;
    uint64_t v = 0;
    if (!load_current(api, &doc, &v, 409, out)) return;
    body["name"] = name;
    if (!doc["rulesets"].isArray()) doc["rulesets"] = Json::Value(Json::arrayValue);
    int i = find_ruleset(doc, name);
    bool added = i < 0;
    if (added) {
      i = static_cast<int>(doc["rulesets"].size());
      doc["rulesets"].append(body);
    } else {
      doc["rulesets"][i] = body;
    }
    const std::string text = pretty(doc);
    if (!validate_with_body_paths(text, i, out)) return;
    api.commit_document(text, who, req,
                        (added ? "add ruleset " : "replace ruleset ") + name, out);
  });
}

void delete_ruleset(Api& api, const http::Request& req, http::Response& res) {
  api.mutation(req, res, [&](const Identity& who, http::Response& out) {
    const std::string& name = req.params.at("name");
    if (!api.check_if_match(req, out)) return;
    Json::Value doc;
    uint64_t v = 0;
    if (!load_current(api, &doc, &v, 404, out)) return;
    int i = find_ruleset(doc, name);
    if (i < 0) {
      error_response(out, 404, "not_found", "no ruleset named \"" + name + "\" in version " +
                                                std::to_string(v));
      return;
    }
    Json::Value removed;
    doc["rulesets"].removeIndex(static_cast<Json::ArrayIndex>(i), &removed);
    const std::string text = pretty(doc);
    if (!validate_with_body_paths(text, -1, out)) return;
    api.commit_document(text, who, req, "delete ruleset " + name, out);
  });
}

}  // namespace

void add_ruleset_routes(Api& api, http::Server& server) {
  server.route("GET", "/v1/rulesets",
               [&api](const http::Request& q, http::Response& r) { list_rulesets(api, q, r); });
  server.route("GET", "/v1/rulesets/:name",
               [&api](const http::Request& q, http::Response& r) { get_ruleset(api, q, r); });
  server.route("PUT", "/v1/rulesets/:name",
               [&api](const http::Request& q, http::Response& r) { put_ruleset(api, q, r); });
  server.route("DELETE", "/v1/rulesets/:name",
               [&api](const http::Request& q, http::Response& r) { delete_ruleset(api, q, r); });
}

}  // namespace egw::mgmt
