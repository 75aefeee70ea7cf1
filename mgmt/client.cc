// egwctl's REST client for egw-mgmt (see client.h): configuration lookup, one call over
// cpp-httplib (HTTP or HTTPS), the contract's error format. Management side, egwctl.
#include "mgmt/client.h"

#include <httplib.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace egw::mgmt {
namespace {

constexpr size_t kMaxSettingFile = 64 * 1024;  // token and server files are one line

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Reads a small settings file. exists=false (and true returned) when it is absent and
// optional; false with *err on any other failure.
bool read_setting_file(const std::string& path, bool optional, std::string* out, bool* exists,
                       std::string* err) {
  *exists = false;
  FILE* f = fopen(path.c_str(), "re");
  if (!f) {
    if (optional && errno == ENOENT) return true;
    *err = "cannot read " + path + ": " + strerror(errno);
    return false;
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0 && text.size() <= kMaxSettingFile)
    text.append(buf, n);
  bool failed = ferror(f);
  fclose(f);
  if (failed) {
    *err = "cannot read " + path;
    return false;
  }
  if (text.size() > kMaxSettingFile) {
    *err = path + " is larger than 64 KiB: not a token or server file";
    return false;
  }
  *exists = true;
  *out = text;
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

// What a transport failure means for an operator.
std::string transport_error_text(httplib::Error e, int timeout_s) {
  switch (e) {
    case httplib::Error::Connection:
      return "connection failed (is egw-mgmt running and listening there?)";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "no complete answer (read failed or took over " + std::to_string(timeout_s) +
             " s; see --timeout)";
    case httplib::Error::Write:
      return "the request could not be sent (connection closed)";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed (is the server speaking HTTPS? a client certificate needed?)";
    case httplib::Error::SSLLoadingCerts:
      return "cannot load the CA file or client certificate";
    case httplib::Error::SSLServerVerification:
      return "the server's certificate is not trusted for this name (give --cacert)";
    case httplib::Error::BindIPAddress:
      return "cannot bind a local address";
    case httplib::Error::Canceled:
      return "canceled";
    default:
      return "HTTP client error: " + httplib::to_string(e);
  }
}

}  // namespace

ClientEnv ClientEnv::from_process() {
  ClientEnv env;
  if (const char* s = getenv("EGW_SERVER")) env.egw_server = s;
  if (const char* t = getenv("EGW_TOKEN")) env.egw_token = t;
  const char* xdg = getenv("XDG_CONFIG_HOME");
  const char* home = getenv("HOME");
  if (xdg && *xdg)
    env.config_dir = std::string(xdg) + "/egw";
  else if (home && *home)
    env.config_dir = std::string(home) + "/.config/egw";
  return env;
}

std::string token_from_file_text(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t end = 0;
    while (end < t.size() && !isspace(static_cast<unsigned char>(t[end]))) ++end;
    return t.substr(0, end);
  }
  return "";
}

bool parse_server_url(const std::string& url, ServerUrl* out, std::string* err) {
  *out = ServerUrl{};
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out->tls = true;
    rest = url.substr(8);
  } else {
    *err = "server URL '" + url + "' must start with http:// or https://";
    return false;
  }
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) out->path = rest.substr(slash);
  while (!out->path.empty() && out->path.back() == '/') out->path.pop_back();
  if (out->path.find_first_of("?#") != std::string::npos) {
    *err = "server URL '" + url + "' must not have a query or fragment";
    return false;
  }
  std::string port_text;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos) {
      *err = "server URL '" + url + "': unterminated [IPv6 address]";
      return false;
    }
    out->host = hostport.substr(1, close - 1);
    std::string after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *err = "server URL '" + url + "': expected :PORT after ]";
        return false;
      }
      port_text = after.substr(1);
    }
  } else {
    size_t colon = hostport.rfind(':');
    out->host = hostport.substr(0, colon);
    if (colon != std::string::npos) port_text = hostport.substr(colon + 1);
  }
  if (out->host.empty() || out->host.find_first_of("@ \t") != std::string::npos) {
    *err = "server URL '" + url + "' has no usable host";
    return false;
  }
  if (port_text.empty()) {
    out->port = out->tls ? 443 : 80;
  } else {
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port_text) < 1 || std::stoi(port_text) > 65535) {
      *err = "server URL '" + url + "': bad port '" + port_text + "'";
      return false;
    }
    out->port = std::stoi(port_text);
  }
  return true;
}

bool resolve_config(const ClientFlags& flags, const ClientEnv& env, ClientConfig* out,
                    std::string* err) {
  ClientConfig c;
  bool exists = false;
  std::string text;
  if (!flags.server.empty()) {
    c.server = flags.server;
    c.server_origin = "--server";
  } else if (!env.egw_server.empty()) {
    c.server = env.egw_server;
    c.server_origin = "EGW_SERVER";
  } else if (!env.config_dir.empty()) {
    std::string path = env.config_dir + "/server";
    if (!read_setting_file(path, true, &text, &exists, err)) return false;
    if (exists) {
      c.server = token_from_file_text(text);
      c.server_origin = path;
      if (c.server.empty()) {
        *err = path + " is empty (expected a URL such as " + kDefaultServer + ")";
        return false;
      }
    }
  }
  if (c.server.empty()) {
    c.server = kDefaultServer;
    c.server_origin = "default";
  }
  ServerUrl u;
  if (!parse_server_url(c.server, &u, err)) return false;
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();

  if (!flags.token_file.empty()) {
    if (!read_setting_file(flags.token_file, false, &text, &exists, err)) return false;
    c.token = token_from_file_text(text);
    c.token_origin = flags.token_file;
    if (c.token.empty()) {
      *err = flags.token_file + " holds no token";
      return false;
    }
  } else if (!env.egw_token.empty()) {
    c.token = trim(env.egw_token);
    c.token_origin = "EGW_TOKEN";
  } else if (!env.config_dir.empty()) {
    std::string path = env.config_dir + "/token";
    if (!read_setting_file(path, true, &text, &exists, err)) return false;
    if (exists) {
      c.token = token_from_file_text(text);
      c.token_origin = path;
    }
  }
  for (char ch : c.token)
    if (static_cast<unsigned char>(ch) < 0x21 || static_cast<unsigned char>(ch) > 0x7e) {
      *err = "the token from " + c.token_origin + " has characters a bearer token cannot hold";
      return false;
    }
  c.cacert = flags.cacert;
  c.cert = flags.cert;
  c.key = flags.key;
  if (c.cert.empty() != c.key.empty()) {
    *err = "--cert and --key go together";
    return false;
  }
  if ((!c.cacert.empty() || !c.cert.empty()) && !u.tls) {
    *err = "--cacert/--cert/--key need an https:// server (the server is " + c.server + ")";
    return false;
  }
  if (flags.timeout_s > 0) c.timeout_s = flags.timeout_s;
  *out = c;
  return true;
}

std::string ApiResponse::etag_version() const {
  auto it = headers.find("etag");
  if (it == headers.end()) return "";
  std::string v = it->second;
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

ApiError api_error(const ApiResponse& r) {
  ApiError e;
  if (r.json_ok && r.json.isObject() && r.json["error"].isObject()) {
    const Json::Value& j = r.json["error"];
    if (j["code"].isString()) e.code = j["code"].asString();
    if (j["message"].isString()) e.message = j["message"].asString();
    if (j["details"].isArray())
      for (const Json::Value& d : j["details"]) {
        if (!d.isObject()) continue;
        std::string path = d["path"].isString() ? d["path"].asString() : "";
        std::string msg = d["message"].isString() ? d["message"].asString() : "";
        e.details.emplace_back(path, msg);
      }
  }
  if (e.code.empty() && e.message.empty()) {
    std::string body = trim(r.body);
    if (body.size() > 500) body = body.substr(0, 500) + "...";
    e.message = body.empty() ? "(no error body)" : body;
  }
  return e;
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += (c < 0x20 && c != '\t') || c == 0x7f ? '?' : static_cast<char>(c);
  return out;
}

std::string format_api_error(const ApiResponse& r) {
  ApiError e = api_error(r);
  e.code = printable(e.code);
  e.message = printable(e.message);
  for (auto& d : e.details) {
    d.first = printable(d.first);
    d.second = printable(d.second);
  }
  std::string s = "HTTP " + std::to_string(r.status);
  if (!e.code.empty()) s += " " + e.code;
  if (!e.message.empty()) s += ": " + e.message;
  for (const auto& [path, msg] : e.details)
    s += "\n  " + (path.empty() ? std::string("(document)") : path) + ": " + msg;
  return s;
}

bool parse_json(const std::string& text, Json::Value* out, std::string* err) {
  Json::CharReaderBuilder b;
  Json::CharReaderBuilder::strictMode(&b.settings_);
  b["stackLimit"] = 256;
  std::unique_ptr<Json::CharReader> reader(b.newCharReader());
  std::string errs;
  try {
    if (reader->parse(text.data(), text.data() + text.size(), out, &errs)) return true;
  } catch (const std::exception& e) {
    errs = e.what();
  }
  *err = "malformed JSON: " + trim(errs);
  return false;
}

std::string to_pretty_json(const Json::Value& v) {
  Json::StreamWriterBuilder w;
  w["indentation"] = "  ";
  w["emitUTF8"] = true;
  return Json::writeString(w, v);
}

std::string url_encode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct Client::Impl {
  ServerUrl url;
  std::unique_ptr<httplib::ClientImpl> http;
};

Client::Client(ClientConfig cfg) : cfg_(std::move(cfg)), impl_(std::make_unique<Impl>()) {}
Client::~Client() = default;

bool Client::call(const std::string& method, const std::string& path, const std::string& body,
                  const std::map<std::string, std::string>& headers, ApiResponse* out,
                  std::string* err) {
  const std::string where = "cannot reach egw-mgmt at " + cfg_.server + ": ";
  if (!impl_->http) {
    std::string why;
    if (!parse_server_url(cfg_.server, &impl_->url, &why)) {
      *err = why;
      return false;
    }
    const ServerUrl& u = impl_->url;
    if (u.tls) {
      auto ssl = std::make_unique<httplib::SSLClient>(u.host, u.port, cfg_.cert, cfg_.key);
      if (!ssl->is_valid()) {
        *err = where + "cannot set up TLS" +
               (cfg_.cert.empty() ? "" : " with " + cfg_.cert + " and " + cfg_.key);
        return false;
      }
      if (!cfg_.cacert.empty()) ssl->set_ca_cert_path(cfg_.cacert.c_str());
      ssl->enable_server_certificate_verification(true);
      impl_->http = std::move(ssl);
    } else {
      impl_->http = std::make_unique<httplib::ClientImpl>(u.host, u.port);
    }
    impl_->http->set_connection_timeout(cfg_.connect_timeout_s, 0);
    impl_->http->set_read_timeout(cfg_.timeout_s, 0);
    impl_->http->set_write_timeout(cfg_.timeout_s, 0);
    impl_->http->set_keep_alive(true);
    if (!cfg_.token.empty()) impl_->http->set_bearer_token_auth(cfg_.token.c_str());
  }
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  const std::string full = impl_->url.path + path;
  const std::string type = "application/json";
  httplib::Result res = method == "GET"    ? impl_->http->Get(full.c_str(), h)
                        : method == "PUT"  ? impl_->http->Put(full.c_str(), h, body, type.c_str())
                        : method == "POST" ? impl_->http->Post(full.c_str(), h, body, type.c_str())
                        : method == "DELETE" ? impl_->http->Delete(full.c_str(), h)
                                             : httplib::Result(nullptr, httplib::Error::Unknown);
  if (!res) {
    *err = where + transport_error_text(res.error(), cfg_.timeout_s);
    return false;
  }
  *out = ApiResponse{};
  out->status = res->status;
  out->body = res->body;
  for (const auto& [k, v] : res->headers) out->headers[lower(k)] = v;
  std::string jerr;
  out->json_ok = !out->body.empty() && parse_json(out->body, &out->json, &jerr);
  return true;
}

}  // namespace egw::mgmt
