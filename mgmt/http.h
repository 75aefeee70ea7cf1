// A thin HTTP(S) server interface of egw's own, so the library underneath (cpp-httplib
// today) can be replaced. Handlers run on the server's pool threads, several at once.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace egw::mgmt::http {

struct Request {
  std::string method;  // GET, HEAD, POST, PUT, DELETE
  std::string path;    // decoded, without the query
  std::map<std::string, std::string> params;  // path parameters (":name" segments)
  std::multimap<std::string, std::string> query;
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;
  std::string remote_addr;
  int remote_port = 0;

  // First value of a header (case-insensitive name), "" when absent.
  std::string header(const std::string& name) const;
  bool has_header(const std::string& name) const;
  // First value of a query parameter, "" when absent.
  std::string query_value(const std::string& name) const;
  bool has_query(const std::string& name) const;
  // "addr:port", with brackets around IPv6 addresses.
  std::string remote() const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;

  void set_header(const std::string& name, const std::string& value);
};

using Handler = std::function<void(const Request&, Response&)>;

// Called for requests the server refuses before any route runs: status is 404 (no
// route), 405 (method), 408 (body too slow), 413 (body too large), 415 (encoded body)
// or 400 (unreadable body). req carries everything but the body. The handler formats
// the answer (and may change its status, e.g. to 401).
using RefusalHandler = std::function<void(const Request&, int status, const std::string& message,
                                          Response&)>;

// The request head (request line + headers) is capped at 64 KiB in mgmt/http.cc.
struct Limits {
  size_t max_body = 16u << 20;   // bytes, checked against Content-Length and while reading
  int read_timeout_s = 5;         // per read
  int write_timeout_s = 5;        // per write
  int body_deadline_s = 30;       // whole body, against slow senders
  size_t threads = 8;             // connections served at once
  size_t queue = 32;              // accepted connections waiting for a thread
  size_t keep_alive_max = 100;    // requests per connection
  int keep_alive_timeout_s = 5;   // idle time before a kept-alive connection is closed
};

struct TlsOptions {
  std::string cert_file, key_file;  // PEM; both set = HTTPS
  std::string client_ca_file;       // PEM; set = clients must present a certificate it signed
};

class Server {
 public:
  Server(const Limits& limits, const TlsOptions& tls);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Pattern: "/v1/rulesets/:name" (one whole segment per parameter). Register before run().
  void route(const std::string& method, const std::string& pattern, Handler h);
  void on_refused(RefusalHandler h);

  // Loads the TLS material and binds; on error returns false with a message naming
  // what to fix.
  bool bind(const std::string& host, int port, std::string* err);
  // Serves until stop(); returns false if the listener failed.
  bool run();
  void stop();  // from any thread, signal handlers excluded

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Splits "ADDR:PORT" / "[V6]:PORT"; false on a bad port or empty address.
bool split_host_port(const std::string& text, std::string* host, int* port);
// True for 127.0.0.0/8, ::1, localhost.
bool is_loopback_host(const std::string& host);

}  // namespace egw::mgmt::http
