// egwctl: the operator's command line. Offline commands (validate, compile) work on
// files; server commands talk to egw-mgmt. Single-threaded CLI.
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "mgmt/client.h"
#include "mgmt/compiler.h"
#include "mgmt/egwctl_view.h"
#include "mgmt/traffic_report.h"
#include "mgmt/policy_diff.h"

namespace {

constexpr size_t kMaxDocument = 64u << 20;  // refuse policy files over 64 MiB

constexpr const char* kUsage =
    "usage: egwctl [OPTIONS] COMMAND [ARGS]\n"
    "options: --server URL  --token-file F  --cacert F  --cert F --key F  --timeout SECONDS\n"
    "  (server: --server, $EGW_SERVER, ~/.config/egw/server, else http://127.0.0.1:8600;\n"
    "   token: --token-file, $EGW_TOKEN, ~/.config/egw/token)\n"
    "commands:\n"
    "  validate FILE [--offline]   check a policy (on the server when one is configured)\n"
    "  apply FILE [--if-match N] [--comment TEXT]   commit and activate a policy\n"
    "  diff FILE                   rule-level diff against the active policy (exit 0 same,\n"
    "                              1 changed, 2 error)\n"
    "  diff --against-traffic FLOWS.jsonl [--json]   what the report-only rulesets would\n"
    "                              have changed over a flow log (offline; exit 0 nothing,\n"
    "                              1 some verdicts, 2 error)\n"
    "  get [--raw]                 the active policy, pretty or as stored (version on stderr)\n"
    "  history [--limit N]         committed versions, oldest first\n"
    "  rollback N                  commit version N again as a new version\n"
    "  stats                       dataplane counters\n"
    "  flows [--limit N] [--service NAME] [--name TEXT] [--verdict allow|deny|reject]\n"
    "        [--rule ID|default] [--json]\n"
    "                              live flows as a table (or JSON lines), filtered\n"
    "  top [--interval S] [--iterations N]\n"
    "                              live rates per port, rule, destination and drop reason\n"
    "                              (q to quit)\n"
    "  compile FILE -o OUT         compile offline into a blob for egw-dataplane --policy\n"
    "FILE may be - for stdin. Exit: 0 ok, 1 refused/invalid/HTTP error, 2 usage or\n"
    "unreachable server.\n";

int usage_error(const std::string& msg) {
  fprintf(stderr, "egwctl: %s\n%s", msg.c_str(), kUsage);
  return 2;
}

// Reads a whole file (or stdin for "-"), at most kMaxDocument bytes.
bool read_document(const std::string& path, std::string* out, std::string* err) {
  int fd = path == "-" ? STDIN_FILENO : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = "cannot open " + path + ": " + strerror(errno);
    return false;
  }
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = "cannot read " + path + ": " + strerror(errno);
      break;
    }
    if (n == 0) break;
    if (out->size() + static_cast<size_t>(n) > kMaxDocument) {
      *err = path + " is larger than " + std::to_string(kMaxDocument >> 20) + " MiB";
      n = -1;
      break;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  if (fd != STDIN_FILENO) close(fd);
  return err->empty();
}

// Writes data to path atomically: a temporary file beside it, fsync, rename, fsync dir.
bool write_atomic(const std::string& path, std::string_view data, std::string* err) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    *err = "cannot create " + tmp + ": " + strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = "cannot write " + tmp + ": " + strerror(errno);
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err->empty() && fsync(fd) != 0) *err = "fsync " + tmp + ": " + strerror(errno);
  if (close(fd) != 0 && err->empty()) *err = "close " + tmp + ": " + strerror(errno);
  if (err->empty() && rename(tmp.c_str(), path.c_str()) != 0)
    *err = "cannot rename " + tmp + " to " + path + ": " + strerror(errno);
  if (!err->empty()) {
    unlink(tmp.c_str());
    return false;
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return true;
}

void print_errors(const std::string& file, const std::vector<egw::rules::Error>& errors) {
  for (const auto& e : errors)
    fprintf(stderr, "%s: %s\n", e.path.empty() ? "(document)" : e.path.c_str(), e.message.c_str());
  fprintf(stderr, "%s: %zu error%s%s\n", file.c_str(), errors.size(), errors.size() == 1 ? "" : "s",
          errors.size() >= egw::rules::kMaxErrors ? " (stopped at the limit)" : "");
}

using egw::mgmt::ApiResponse;
using egw::mgmt::Client;
using egw::mgmt::printable;

// What every command gets: the resolved settings, whether a server was named
// explicitly, and the client (created on first use).
struct Context {
  egw::mgmt::ClientFlags flags;
  egw::mgmt::ClientConfig config;
  bool config_ok = false;
  std::string config_error;
  std::unique_ptr<Client> client;
  bool server_configured() const { return config_ok && config.server_origin != "default"; }
};

// Exit codes of the server commands.
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;  // HTTP error, invalid policy, changes found (diff)
constexpr int kExitFailed = 2;   // usage, local file, unreachable server, diff error

int fail(const std::string& msg, int code = kExitFailed) {
  fprintf(stderr, "egwctl: %s\n", msg.c_str());
  return code;
}

// One call; on a transport failure prints it and returns false with *exit_code = 2.
bool call(Context& ctx, const std::string& method, const std::string& path, const std::string& body,
          const std::map<std::string, std::string>& headers, ApiResponse* res, int* exit_code) {
  if (!ctx.config_ok) {
    *exit_code = fail(ctx.config_error);
    return false;
  }
  if (!ctx.client) ctx.client = std::make_unique<Client>(ctx.config);
  std::string err;
  if (!ctx.client->call(method, path, body, headers, res, &err)) {
    *exit_code = fail(err);
    return false;
  }
  return true;
}

bool ok_status(const ApiResponse& r) {
  return r.status >= 200 && r.status < 300;
}

// Prints an HTTP error the contract's way and returns exit_code; adds a hint for the
// statuses an operator can act on.
int http_error(const ApiResponse& r, int exit_code = kExitRefused) {
  fprintf(stderr, "egwctl: %s\n", egw::mgmt::format_api_error(r).c_str());
  if (r.status == 401)
    fprintf(stderr,
            "egwctl: give a valid token (--token-file, EGW_TOKEN or ~/.config/egw/token)\n");
  else if (r.status == 403)
    fprintf(stderr, "egwctl: this token's role may not do that (an admin token is needed)\n");
  else if (r.status == 412 || r.status == 409)
    fprintf(stderr,
            "egwctl: the policy changed meanwhile: run `egwctl diff` and retry with "
            "--if-match set to the new version\n");
  return exit_code;
}

std::string json_number_text(const Json::Value& v) {
  if (v.isUInt64()) return std::to_string(v.asUInt64());
  if (v.isInt64()) return std::to_string(v.asInt64());
  if (v.isDouble()) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.3g", v.asDouble());
    return buf;
  }
  return "";
}

std::string scalar_text(const Json::Value& v) {
  if (v.isString()) return printable(v.asString());
  if (v.isBool()) return v.asBool() ? "true" : "false";
  if (v.isNull()) return "-";
  if (v.isNumeric()) return json_number_text(v);
  Json::StreamWriterBuilder w;
  w["indentation"] = "";
  return printable(Json::writeString(w, v));
}

// A compile's statistics in words, "1 services, 2 service CIDRs, ..., 8128 bytes", from
// the "stats" object of a REST answer (keys the server adds later follow as "key value").
std::string stats_text(const Json::Value& stats) {
  static const std::pair<const char*, const char*> kKnown[] = {
      {"services", "services"},
      {"service_cidrs", "service CIDRs"},
      {"rulesets", "rulesets"},
      {"rules", "rules"},
      {"domains", "domains"},
      {"regexes", "regexes"},
      {"inspect_rules", "inspect rules"},
      {"inspect_patterns", "inspect patterns"},
      {"rate_limited_rules", "rate-limited rules"},
      {"max_flows_rules", "rules with max_flows"},
      {"report_rules", "report rules"},
      {"compiled_bytes", "bytes"}};
  if (!stats.isObject()) return "";
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  for (const auto& [key, words] : kKnown)
    if (stats.isMember(key)) add(scalar_text(stats[key]) + " " + words);
  for (const auto& name : stats.getMemberNames()) {
    bool known = false;
    for (const auto& k : kKnown) known = known || name == k.first;
    if (!known) add(printable(name) + " " + scalar_text(stats[name]));
  }
  return out;
}

// "committed version 7: ..." from the answer of PUT /v1/policy or a rollback.
void print_commit(const Json::Value& j, const char* verb) {
  std::string version = j["version"].isNumeric() ? json_number_text(j["version"]) : "?";
  const std::string stats = stats_text(j["stats"]);
  const std::string tail = stats.empty() ? "" : " (" + stats + ")";
  if (j["active"].isBool() && j["active"].asBool()) {
    std::string ms = j["activation_ms"].isNumeric() ? json_number_text(j["activation_ms"]) : "?";
    printf("%s version %s: active in %s ms%s\n", verb, version.c_str(), ms.c_str(), tail.c_str());
  } else {
    printf(
        "committed version %s%s: no dataplane connected, it will be published when one "
        "connects\n",
        version.c_str(), tail.c_str());
  }
}

int read_file_arg(const std::string& path, std::string* doc) {
  std::string err;
  if (!read_document(path, doc, &err)) return fail(err);
  return kExitOk;
}

int cmd_validate_offline(const std::string& file) {
  std::string doc;
  if (int rc = read_file_arg(file, &doc)) return rc;
  egw::mgmt::CompileResult res = egw::mgmt::compile_document(doc, 0);
  if (!res.errors.empty()) {
    print_errors(file == "-" ? "<stdin>" : file, res.errors);
    return kExitRefused;
  }
  printf("valid: %s\n", stats_text(compile_stats_json(res)).c_str());
  return kExitOk;
}

int cmd_validate(Context& ctx, const std::vector<std::string>& args) {
  std::string file;
  bool offline = false;
  for (const auto& a : args) {
    if (a == "--offline")
      offline = true;
    else if (file.empty())
      file = a;
    else
      return usage_error("validate takes one FILE (unexpected '" + a + "')");
  }
  if (file.empty()) return usage_error("validate needs a FILE");
  if (!offline && !ctx.config_ok) return fail(ctx.config_error + " (or use validate --offline)");
  if (offline || !ctx.server_configured()) return cmd_validate_offline(file);
  std::string doc;
  if (int rc = read_file_arg(file, &doc)) return rc;
  ApiResponse r;
  int rc = kExitOk;
  if (!call(ctx, "POST", "/v1/policy/validate", doc, {}, &r, &rc)) return rc;
  if (r.status == 400) {
    egw::mgmt::ApiError e = egw::mgmt::api_error(r);
    for (const auto& [path, msg] : e.details)
      fprintf(stderr, "%s: %s\n", path.empty() ? "(document)" : printable(path).c_str(),
              printable(msg).c_str());
    if (e.details.empty()) fprintf(stderr, "%s\n", egw::mgmt::format_api_error(r).c_str());
    fprintf(stderr, "%s: invalid (%zu error%s, checked by %s)\n", file.c_str(), e.details.size(),
            e.details.size() == 1 ? "" : "s", ctx.config.server.c_str());
    return kExitRefused;
  }
  if (!ok_status(r)) return http_error(r);
  const std::string stats = stats_text(r.json["stats"]);
  printf("valid (checked by %s)%s%s\n", ctx.config.server.c_str(), stats.empty() ? "" : ": ",
         stats.c_str());
  return kExitOk;
}

bool parse_uint(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  *out = std::stoull(s);
  return true;
}

int cmd_apply(Context& ctx, const std::vector<std::string>& args) {
  std::string file, comment;
  uint64_t if_match = 0;
  bool has_if_match = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--if-match" || args[i] == "--comment") {
      if (i + 1 == args.size()) return usage_error(args[i] + " needs a value");
      if (args[i] == "--comment") {
        comment = args[++i];
      } else if (!parse_uint(args[++i], &if_match)) {
        return usage_error("--if-match needs a version number");
      } else {
        has_if_match = true;
      }
    } else if (file.empty()) {
      file = args[i];
    } else {
      return usage_error("apply takes one FILE (unexpected '" + args[i] + "')");
    }
  }
  if (file.empty()) return usage_error("apply needs a FILE");
  if (comment.size() > 1024) return usage_error("--comment is limited to 1024 bytes");
  std::string doc;
  if (int rc = read_file_arg(file, &doc)) return rc;
  std::map<std::string, std::string> headers;
  if (has_if_match) headers["If-Match"] = "\"" + std::to_string(if_match) + "\"";
  std::string path = "/v1/policy";
  if (!comment.empty()) path += "?comment=" + egw::mgmt::url_encode(comment);
  ApiResponse r;
  int rc = kExitOk;
  if (!call(ctx, "PUT", path, doc, headers, &r, &rc)) return rc;
  if (!ok_status(r)) return http_error(r);
  print_commit(r.json, "applied");
  return kExitOk;
}

// Reads and validates the local document of `diff`; prints its errors.
bool load_policy(const std::string& file, egw::rules::Policy* out) {
  std::string doc, err;
  if (!read_document(file, &doc, &err)) {
    fail(err);
    return false;
  }
  egw::rules::ParseResult p = egw::rules::parse_policy(doc);
  if (!p.policy) {
    print_errors(file == "-" ? "<stdin>" : file, p.errors);
    return false;
  }
  *out = std::move(*p.policy);
  return true;
}

// diff --against-traffic FLOWS [--json]: what the report-only rulesets would have changed
// over a flow log (offline: no server). Exit 0 nothing, 1 some verdicts, 2 an error.
int cmd_diff_traffic(const std::vector<std::string>& args) {
  std::string file;
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (file.empty()) {
      file = args[i];
    } else {
      return usage_error("diff --against-traffic takes one flow log (flows.jsonl) and --json");
    }
  }
  if (file.empty()) return usage_error("diff --against-traffic needs a flow log (flows.jsonl)");
  std::ifstream f;
  if (file != "-") {
    f.open(file);
    if (!f) return fail("cannot read " + file + ": " + strerror(errno));
  }
  const egw::mgmt::TrafficReport r = egw::mgmt::summarize_traffic(file == "-" ? std::cin : f);
  if (r.records == 0)
    return fail(file + ": no flow records" +
                (r.bad_lines ? " (line " + std::to_string(r.first_bad_line) + " is not one)" : ""));
  const std::string text = json ? egw::mgmt::traffic_report_json(r) : egw::mgmt::render_traffic_report(r);
  fwrite(text.data(), 1, text.size(), stdout);
  return egw::mgmt::traffic_report_changes(r) ? kExitRefused : kExitOk;
}

int cmd_diff(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "--against-traffic") return cmd_diff_traffic(args);
  if (args.size() != 1) return usage_error("diff needs exactly one FILE");
  egw::rules::Policy candidate;
  if (!load_policy(args[0], &candidate)) return kExitFailed;
  ApiResponse r;
  int rc = kExitOk;
  if (!call(ctx, "GET", "/v1/policy", "", {}, &r, &rc)) return rc;
  egw::rules::Policy active;
  std::string version = r.etag_version();
  if (r.status == 404 && r.json_ok) {
    version = "none";
    fprintf(stderr, "egwctl: no policy committed yet: everything in %s is new\n", args[0].c_str());
  } else if (!ok_status(r)) {
    return http_error(r, kExitFailed);
  } else {
    egw::rules::ParseResult p = egw::rules::parse_policy(r.body);
    if (!p.policy) {
      fprintf(stderr,
              "egwctl: the active policy from %s does not parse here (egwctl older "
              "than egw-mgmt?):\n",
              ctx.config.server.c_str());
      print_errors("active policy", p.errors);
      return kExitFailed;
    }
    active = std::move(*p.policy);
  }
  std::vector<egw::mgmt::DiffLine> lines = egw::mgmt::diff_policies(active, candidate);
  if (lines.empty()) {
    printf("no change: %s is the active policy (version %s)\n", args[0].c_str(),
           version.empty() ? "?" : version.c_str());
    return kExitOk;
  }
  bool color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
  printf("--- active (version %s, %s)\n+++ %s\n", version.empty() ? "?" : version.c_str(),
         ctx.config.server.c_str(), args[0].c_str());
  for (const auto& l : lines) {
    const char* on = !color          ? ""
                     : l.kind == '+' ? "\033[32m"
                     : l.kind == '-' ? "\033[31m"
                                     : "\033[33m";
    printf("%s%s%s\n", on, egw::mgmt::format_diff_line(l).c_str(), color ? "\033[0m" : "");
  }
  printf("%zu change%s\n", lines.size(), lines.size() == 1 ? "" : "s");
  return kExitRefused;
}

int cmd_get(Context& ctx, const std::vector<std::string>& args) {
  bool raw = args.size() == 1 && args[0] == "--raw";
  if (!args.empty() && !raw) return usage_error("get takes only --raw");
  ApiResponse r;
  int rc = kExitOk;
  if (!call(ctx, "GET", "/v1/policy", "", {}, &r, &rc)) return rc;
  if (!ok_status(r)) return http_error(r);
  if (r.json_ok && !raw)
    printf("%s\n", egw::mgmt::to_pretty_json(r.json).c_str());
  else
    fwrite(r.body.data(), 1, r.body.size(), stdout);
  std::string v = r.etag_version();
  fprintf(stderr, "version %s\n", v.empty() ? "? (no ETag)" : printable(v).c_str());
  return kExitOk;
}

int cmd_history(Context& ctx, const std::vector<std::string>& args) {
  uint64_t limit = 0;
  if (!args.empty() && (args.size() != 2 || args[0] != "--limit" || !parse_uint(args[1], &limit)))
    return usage_error("history takes only --limit N (the newest N versions)");
  ApiResponse r;
  int rc = kExitOk;
  std::string path = "/v1/policy/history" + (limit ? "?limit=" + std::to_string(limit) : "");
  if (!call(ctx, "GET", path, "", {}, &r, &rc)) return rc;
  if (!ok_status(r)) return http_error(r);
  const Json::Value& list = r.json.isObject() ? r.json["versions"] : r.json;
  if (!r.json_ok || !list.isArray())
    return fail("unexpected history answer: " + printable(r.body.substr(0, 200)));
  std::vector<std::vector<std::string>> rows = {
      {"VERSION", "CREATED_AT", "AUTHOR", "SHA256", "COMMENT"}};
  for (const Json::Value& v : list) {
    if (!v.isObject()) continue;
    std::string sha = scalar_text(v["sha256"]);
    rows.push_back({scalar_text(v["version"]), scalar_text(v["created_at"]),
                    scalar_text(v["author"]), sha.substr(0, 12),
                    v["comment"].isString() ? printable(v["comment"].asString()) : ""});
  }
  std::vector<size_t> width(5, 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < 4; ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < 4; ++c) line += row[c] + std::string(width[c] - row[c].size() + 2, ' ');
    printf("%s%s\n", line.c_str(), row[4].c_str());
  }
  if (rows.size() == 1) printf("(no version committed yet)\n");
  return kExitOk;
}

int cmd_rollback(Context& ctx, const std::vector<std::string>& args) {
  uint64_t version = 0;
  if (args.size() != 1 || !parse_uint(args[0], &version) || version == 0)
    return usage_error("rollback needs one version number (see egwctl history)");
  Json::Value body;
  body["version"] = Json::UInt64(version);
  ApiResponse r;
  int rc = kExitOk;
  if (!call(ctx, "POST", "/v1/policy/rollback",
            Json::writeString(Json::StreamWriterBuilder(), body), {}, &r, &rc))
    return rc;
  if (!ok_status(r)) return http_error(r);
  std::string verb = "rolled back to version " + std::to_string(version) + " as";
  print_commit(r.json, verb.c_str());
  return kExitOk;
}

// Prints a JSON tree as "a.b.c: value" lines, skipping what the caller already showed.
void print_flat(const Json::Value& v, const std::string& prefix) {
  if (v.isObject()) {
    for (const auto& name : v.getMemberNames())
      print_flat(v[name], prefix.empty() ? printable(name) : prefix + "." + printable(name));
  } else if (v.isArray()) {
    for (Json::ArrayIndex i = 0; i < v.size(); ++i)
      print_flat(v[i], prefix + "[" + std::to_string(i) + "]");
  } else {
    printf("  %s: %s\n", prefix.c_str(), scalar_text(v).c_str());
  }
}

uint64_t as_count(const Json::Value& v) {
  if (v.isUInt64()) return v.asUInt64();
  if (v.isInt64() && v.asInt64() > 0) return static_cast<uint64_t>(v.asInt64());
  if (v.isDouble() && v.asDouble() > 0) return static_cast<uint64_t>(v.asDouble());
  return 0;
}

std::string port_name(const Json::Value& p, Json::ArrayIndex i) {
  if (p["port"].isNumeric()) return json_number_text(p["port"]);
  if (p["name"].isString()) return printable(p["name"].asString());
  return std::to_string(i);
}

int cmd_stats(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty()) return usage_error("stats takes no arguments");
  ApiResponse r;
  int rc = kExitOk;
  if (!call(ctx, "GET", "/v1/stats", "", {}, &r, &rc)) return rc;
  if (!ok_status(r)) return http_error(r);
  if (!r.json_ok || !r.json.isObject())
    return fail("unexpected stats answer: " + printable(r.body.substr(0, 200)));
  Json::Value rest = r.json;
  const Json::Value& ports = r.json["ports"];
  if (ports.isArray()) {
    printf("%-6s %14s %14s %16s %16s %12s\n", "PORT", "RX_PACKETS", "TX_PACKETS", "RX_BYTES",
           "TX_BYTES", "RX_MISSED");
    for (Json::ArrayIndex i = 0; i < ports.size(); ++i) {
      const Json::Value& p = ports[i];
      printf("%-6s %14s %14s %16s %16s %12s\n", port_name(p, i).c_str(),
             scalar_text(p["rx_packets"]).c_str(), scalar_text(p["tx_packets"]).c_str(),
             scalar_text(p["rx_bytes"]).c_str(), scalar_text(p["tx_bytes"]).c_str(),
             scalar_text(p["rx_missed"]).c_str());
    }
    rest.removeMember("ports");
  }
  const Json::Value& drops = r.json["drops"];
  if (drops.isObject()) {
    std::vector<std::pair<uint64_t, std::string>> sorted;
    for (const auto& name : drops.getMemberNames())
      sorted.emplace_back(as_count(drops[name]), name);
    std::sort(sorted.rbegin(), sorted.rend());
    printf("drops:%s\n", sorted.empty() || sorted[0].first == 0 ? " none" : "");
    for (const auto& [n, name] : sorted)
      if (n) printf("  %-22s %llu\n", printable(name).c_str(), static_cast<unsigned long long>(n));
    rest.removeMember("drops");
  }
  if (!rest.empty()) {
    printf("other:\n");
    print_flat(rest, "");
  }
  return kExitOk;
}

// The policy's services, for naming flows by their inside address; none when no
// policy is committed yet (404). False with *rc set when the server refused.
bool fetch_services(Context& ctx, egw::mgmt::view::ServiceMap* out, int* rc) {
  ApiResponse r;
  if (!call(ctx, "GET", "/v1/policy", "", {}, &r, rc)) return false;
  if (r.status == 404) {
    *out = {};
    return true;
  }
  if (!ok_status(r)) {
    *rc = http_error(r);
    return false;
  }
  if (!r.json_ok) {
    *rc = fail("unexpected policy answer: " + printable(r.body.substr(0, 200)));
    return false;
  }
  *out = egw::mgmt::view::ServiceMap::from_policy(r.json);
  return true;
}

int cmd_flows(Context& ctx, const std::vector<std::string>& args) {
  namespace view = egw::mgmt::view;
  view::FlowsOptions opt;
  std::string err;
  if (!view::parse_flows_args(args, &opt, &err)) return usage_error(err);
  int rc = kExitOk;
  view::ServiceMap services;
  const bool need_services = !opt.json || !opt.filter.service.empty();
  if (need_services && !fetch_services(ctx, &services, &rc)) return rc;
  if (!opt.filter.service.empty() && !services.has(opt.filter.service)) {
    std::string known;
    for (const auto& n : services.names()) known += (known.empty() ? "" : ", ") + printable(n);
    return usage_error("flows: no service '" + printable(opt.filter.service) +
                       "' in the active policy (services: " + (known.empty() ? "none" : known) +
                       ")");
  }
  ApiResponse r;
  if (!call(ctx, "GET", "/v1/flows?limit=" + std::to_string(opt.limit), "", {}, &r, &rc)) return rc;
  if (!ok_status(r)) return http_error(r);
  const Json::Value& flows = r.json.isObject() ? r.json["flows"] : r.json;
  if (!r.json_ok || !flows.isArray())
    return fail("unexpected flows answer: " + printable(r.body.substr(0, 200)));
  std::vector<Json::Value> match;
  for (const Json::Value& f : flows)
    if (f.isObject() && view::flow_matches(f, opt.filter, services)) match.push_back(f);
  if (opt.json) {
    Json::StreamWriterBuilder w;
    w["indentation"] = "";
    for (const Json::Value& f : match) printf("%s\n", Json::writeString(w, f).c_str());
  } else {
    fputs(view::render_flows_table(match, services).c_str(), stdout);
  }
  fprintf(stderr, "%zu of %u flow%s\n", match.size(), flows.size(), flows.size() == 1 ? "" : "s");
  return kExitOk;
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

// The terminal in non-canonical mode for `top`, restored on scope exit.
class RawTerminal {
 public:
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

// Waits up to ms for a key; true when the user asked to quit (q, Q, Ctrl-C).
bool wait_for_quit(int ms) {
  static bool stdin_done = !isatty(STDIN_FILENO);  // not a terminal, or closed: no keys
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!g_stop) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    end - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    int n = poll(&pfd, stdin_done ? 0 : 1, static_cast<int>(left));
    if (n > 0) {
      char c = 0;
      ssize_t got = read(STDIN_FILENO, &c, 1);
      if (got == 1 && (c == 'q' || c == 'Q' || c == 3)) return true;
      if (got == 0) stdin_done = true;  // stdin closed: keep refreshing until Ctrl-C
    }
  }
  return true;
}

int cmd_top(Context& ctx, const std::vector<std::string>& args) {
  namespace view = egw::mgmt::view;
  uint64_t interval = 1, iterations = 0;  // 0 = until q or Ctrl-C
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--interval" && i + 1 < args.size() && parse_uint(args[i + 1], &interval) &&
        interval >= 1 && interval <= 3600)
      ++i;
    else if (args[i] == "--iterations" && i + 1 < args.size() &&
             parse_uint(args[i + 1], &iterations) && iterations >= 1)
      ++i;
    else
      return usage_error(
          "top takes only --interval SECONDS (1 to 3600) and --iterations N (1 or more)");
  }
  if (!ctx.config_ok) return fail(ctx.config_error);
  if (!ctx.client) ctx.client = std::make_unique<Client>(ctx.config);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  RawTerminal term;
  const bool tty = isatty(STDOUT_FILENO);
  view::ServiceMap services;
  uint64_t services_version = 0;
  bool have_services = false;
  Json::Value prev;
  auto prev_time = std::chrono::steady_clock::now();
  for (uint64_t frame = 1; !g_stop; ++frame) {
    ApiResponse r;
    std::string err;
    bool reached = ctx.client->call("GET", "/v1/stats", "", {}, &r, &err);
    auto now = std::chrono::steady_clock::now();
    if (reached && (r.status == 401 || r.status == 403)) return http_error(r);
    std::string screen = tty ? "\033[H\033[2J" : frame > 1 ? "\n" : "";
    if (!reached) {
      screen += "egw top: " + printable(ctx.config.server) + ": " + printable(err) + "\n";
    } else if (!ok_status(r) || !r.json_ok || !r.json.isObject()) {
      screen +=
          "egw top: " + printable(ctx.config.server) + ": " + egw::mgmt::format_api_error(r) + "\n";
    } else {
      // Service CIDRs follow the committed policy: fetched again when it changes.
      uint64_t committed = 0;
      parse_uint(scalar_text(r.json["policy_version"]), &committed);
      if (!have_services || committed != services_version) {
        ApiResponse pr;
        std::string perr;
        if (ctx.client->call("GET", "/v1/policy", "", {}, &pr, &perr)) {
          if (pr.status == 401 || pr.status == 403) return http_error(pr);
          if (ok_status(pr) && pr.json_ok) {
            services = view::ServiceMap::from_policy(pr.json);
            have_services = true;
            services_version = committed;
          } else if (pr.status == 404) {
            services = {};
            have_services = true;
            services_version = committed;
          }
        }
      }
      view::TopInput in;
      in.server = ctx.config.server;
      in.interval_s = static_cast<double>(interval);
      in.prev = prev;
      in.cur = r.json;
      in.dt = std::chrono::duration<double>(now - prev_time).count();
      in.services = &services;
      ApiResponse fr;
      std::string ferr;
      if (!ctx.client->call("GET", "/v1/flows?limit=2000", "", {}, &fr, &ferr))
        in.flows_error = printable(ferr);
      else if (fr.status == 401 || fr.status == 403)
        return http_error(fr);
      else if (!ok_status(fr) || !fr.json_ok || !fr.json.isObject() || !fr.json["flows"].isArray())
        in.flows_error = egw::mgmt::format_api_error(fr);
      else
        in.flows = fr.json["flows"];
      screen += view::render_top_frame(in);
      prev = r.json;
      prev_time = now;
    }
    fwrite(screen.data(), 1, screen.size(), stdout);
    fflush(stdout);
    if (iterations && frame >= iterations) break;
    if (wait_for_quit(static_cast<int>(interval * 1000))) break;
  }
  return kExitOk;
}

int cmd_compile(const std::vector<std::string>& args) {
  std::string in, out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-o" || args[i] == "--output") {
      if (i + 1 == args.size()) return usage_error(args[i] + " needs a file name");
      out = args[++i];
    } else if (in.empty()) {
      in = args[i];
    } else {
      return usage_error("compile takes one FILE (unexpected '" + args[i] + "')");
    }
  }
  if (in.empty() || out.empty()) return usage_error("compile needs FILE and -o OUT");
  std::string doc, err;
  if (!read_document(in, &doc, &err)) return fail(err);
  egw::mgmt::CompileResult res = egw::mgmt::compile_document(doc, 0);
  if (!res.errors.empty()) {
    print_errors(in, res.errors);
    return kExitRefused;
  }
  if (!write_atomic(out, res.blob, &err)) return fail(err);
  printf("compiled %s: %s -> %s\n", in.c_str(), stats_text(compile_stats_json(res)).c_str(),
         out.c_str());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Context ctx;
  struct Opt {
    const char* name;
    std::string* dest;
  };
  std::string timeout;
  const Opt opts[] = {{"--server", &ctx.flags.server}, {"--token-file", &ctx.flags.token_file},
                      {"--cacert", &ctx.flags.cacert}, {"--cert", &ctx.flags.cert},
                      {"--key", &ctx.flags.key},       {"--timeout", &timeout}};
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (a.size() < 2 || a[0] != '-') break;
    bool known = false;
    for (const Opt& o : opts) {
      std::string eq = std::string(o.name) + "=";
      if (a == o.name) {
        if (i + 1 == args.size()) return usage_error(a + " needs a value");
        *o.dest = args[++i];
        known = true;
      } else if (a.rfind(eq, 0) == 0) {
        *o.dest = a.substr(eq.size());
        known = true;
      }
    }
    if (!known) return usage_error("unknown option " + a);
  }
  if (!timeout.empty()) {
    uint64_t t = 0;
    if (!parse_uint(timeout, &t) || t == 0 || t > 3600)
      return usage_error("--timeout needs 1 to 3600 seconds");
    ctx.flags.timeout_s = static_cast<int>(t);
  }
  if (i == args.size()) return usage_error("no command given");
  std::string cmd = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  if (cmd == "compile") return cmd_compile(rest);
  ctx.config_ok = egw::mgmt::resolve_config(ctx.flags, egw::mgmt::ClientEnv::from_process(),
                                            &ctx.config, &ctx.config_error);
  if (cmd == "validate") return cmd_validate(ctx, rest);
  if (cmd == "apply") return cmd_apply(ctx, rest);
  if (cmd == "diff") return cmd_diff(ctx, rest);
  if (cmd == "get") return cmd_get(ctx, rest);
  if (cmd == "history") return cmd_history(ctx, rest);
  if (cmd == "rollback") return cmd_rollback(ctx, rest);
  if (cmd == "stats") return cmd_stats(ctx, rest);
  if (cmd == "flows") return cmd_flows(ctx, rest);
  if (cmd == "top") return cmd_top(ctx, rest);
  return usage_error("unknown command '" + cmd + "'");
}
