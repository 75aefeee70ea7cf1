// egwctl's REST client for egw-mgmt: where the server and token come from, one call
// over HTTP or HTTPS with a bearer token, and the contract's JSON errors made readable.
// Management side (egwctl, single-threaded).
#pragma once

#include <json/json.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace egw::mgmt {

constexpr const char* kDefaultServer = "http://127.0.0.1:8600";

// What the command line gave (empty = not given).
struct ClientFlags {
  std::string server, token_file, cacert, cert, key;
  int timeout_s = 0;  // 0 = default
};

// Where settings are looked up after the flags, injectable for tests.
struct ClientEnv {
  std::string egw_server, egw_token;  // $EGW_SERVER, $EGW_TOKEN
  std::string config_dir;             // $XDG_CONFIG_HOME/egw or $HOME/.config/egw ("" = none)
  static ClientEnv from_process();
};

struct ClientConfig {
  std::string server;         // base URL, e.g. https://gw1:8600 (no trailing slash)
  std::string server_origin;  // "flag", "EGW_SERVER", the config file's path, or "default"
  std::string token;          // "" = none (only /v1/health works then)
  std::string token_origin;
  std::string cacert, cert, key;  // TLS: CA bundle to trust, client certificate and key
  int connect_timeout_s = 5;
  int timeout_s = 60;  // read/write; apply waits for the dataplane's acknowledgement
};

// Resolves the settings: flags, then the environment, then files in env.config_dir
// (`server`, `token`), then the default server. Returns false with *err when a named
// file cannot be read or the URL is not http(s)://HOST[:PORT].
bool resolve_config(const ClientFlags& flags, const ClientEnv& env, ClientConfig* out,
                    std::string* err);

// A server URL split up; path is a prefix such as "/egw" or "".
struct ServerUrl {
  bool tls = false;
  std::string host;  // without brackets for IPv6 literals
  int port = 0;
  std::string path;
};
bool parse_server_url(const std::string& url, ServerUrl* out, std::string* err);

// The first whitespace-separated word of a token file's first non-empty line.
std::string token_from_file_text(const std::string& text);

struct ApiResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  Json::Value json;                            // parsed body when json_ok
  bool json_ok = false;
  std::string etag_version() const;  // "7" from ETag: "7", "" if none
};

// The contract's error body: {"error":{"code","message","details":[{"path","message"}]}}.
struct ApiError {
  std::string code, message;
  std::vector<std::pair<std::string, std::string>> details;  // path, message
};

// Reads the error of a non-2xx answer; falls back to the status and raw body.
ApiError api_error(const ApiResponse& r);
// "HTTP 412 version_conflict: ..." plus one "  PATH: MESSAGE" line per detail.
std::string format_api_error(const ApiResponse& r);

// Parses JSON strictly (no comments, no duplicate keys). Never throws.
bool parse_json(const std::string& text, Json::Value* out, std::string* err);
std::string to_pretty_json(const Json::Value& v);

class Client {
 public:
  explicit Client(ClientConfig cfg);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One request. Returns false only when no HTTP answer came (connection refused, TLS
  // failure, timeout), with *err saying so; any HTTP status is returned in *out.
  bool call(const std::string& method, const std::string& path, const std::string& body,
            const std::map<std::string, std::string>& headers, ApiResponse* out, std::string* err);

  const ClientConfig& config() const { return cfg_; }

 private:
  struct Impl;
  ClientConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

// s with control characters (terminal escapes) replaced by '?', for printing what a
// server sent.
std::string printable(const std::string& s);

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string url_encode(const std::string& s);

}  // namespace egw::mgmt
