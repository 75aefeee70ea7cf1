// The HTTP(S) server of mgmt/http.h over cpp-httplib: our own routing, body limits
// enforced before and while reading, a bounded connection pool, TLS set up by hand.
// Runs on the accept thread and the pool threads.
#include "mgmt/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace egw::mgmt::http {

namespace {

bool iequals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  for (;;) {
    size_t j = path.find('/', i);
    out.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

// Worker pool with a bounded queue: when every thread is busy and the queue is full,
// the accept loop waits, and further clients wait in the kernel's listen backlog.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t queue) : max_queue_(queue) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return jobs_.size() < max_queue_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;  // shut down and drained
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        space_.notify_one();
      }
      fn();
    }
  }
  size_t max_queue_;
  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool shutdown_ = false;
};

// One connection's byte stream (plain or TLS) for httplib, with our own limits: a
// bounded request head (request line + headers, which cpp-httplib 0.11 does not
// bound), and per-read / per-write timeouts.
class ConnStream : public httplib::Stream {
 public:
  ConnStream(int fd, SSL* ssl, const Limits& l) : fd_(fd), ssl_(ssl), limits_(l) {}

  void start_request() {
    in_head_ = true;
    head_bytes_ = 0;
    nl_state_ = 0;
  }
  bool buffered() const { return pos_ < len_ || (ssl_ && SSL_pending(ssl_) > 0); }
  bool wait_readable(int timeout_s) const { return buffered() || poll_fd(POLLIN, timeout_s); }

  bool is_readable() const override { return wait_readable(limits_.read_timeout_s); }
  bool is_writable() const override { return poll_fd(POLLOUT, limits_.write_timeout_s); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == len_ && !fill()) return -1;
    size_t n = std::min(size, len_ - pos_);
    if (in_head_) {
      // Hand out the head byte by byte until its blank line, counting it.
      size_t i = 0;
      for (; i < n && in_head_; ++i) {
        char c = buf_[pos_ + i];
        nl_state_ = c == '\n' ? (nl_state_ == 2 ? 3 : 1) : (c == '\r' && nl_state_ == 1 ? 2 : 0);
        if (nl_state_ == 3) in_head_ = false;
        if (++head_bytes_ > kMaxHead) return -1;
      }
      n = i;
    }
    memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      if (!is_writable()) return -1;
      ssize_t n;
      if (ssl_) {
        int r = SSL_write(ssl_, ptr + done, static_cast<int>(std::min<size_t>(size - done, 1 << 20)));
        if (r <= 0) {
          int e = SSL_get_error(ssl_, r);
          if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) continue;
          return -1;
        }
        n = r;
      } else {
        n = send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return -1;
      }
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) describe(a, &ip, &port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) describe(a, &ip, &port);
  }
  int socket() const override { return fd_; }

 private:
  static constexpr size_t kMaxHead = 64 * 1024;  // request line and all headers

  static void describe(const sockaddr_storage& a, std::string* ip, int* port) {
    char text[INET6_ADDRSTRLEN] = "";
    if (a.ss_family == AF_INET) {
      auto* s = reinterpret_cast<const sockaddr_in*>(&a);
      inet_ntop(AF_INET, &s->sin_addr, text, sizeof(text));
      *port = ntohs(s->sin_port);
    } else if (a.ss_family == AF_INET6) {
      auto* s = reinterpret_cast<const sockaddr_in6*>(&a);
      inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof(text));
      *port = ntohs(s->sin6_port);
      if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
        inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], text, sizeof(text));
      }
    }
    *ip = text;
  }

  bool poll_fd(short events, int timeout_s) const {
    pollfd p{fd_, events, 0};
    for (;;) {
      int r = poll(&p, 1, timeout_s * 1000);
      if (r < 0 && errno == EINTR) continue;
      return r > 0;
    }
  }

  bool fill() {
    pos_ = len_ = 0;
    for (;;) {
      if (!(ssl_ && SSL_pending(ssl_) > 0) && !poll_fd(POLLIN, limits_.read_timeout_s)) return false;
      ssize_t n;
      if (ssl_) {
        int r = SSL_read(ssl_, buf_, sizeof(buf_));
        if (r <= 0) {
          int e = SSL_get_error(ssl_, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
          return false;
        }
        n = r;
      } else {
        n = recv(fd_, buf_, sizeof(buf_), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return false;
      }
      len_ = static_cast<size_t>(n);
      return true;
    }
  }

  int fd_;
  SSL* ssl_;
  const Limits& limits_;
  char buf_[16384];
  size_t pos_ = 0, len_ = 0;
  bool in_head_ = true;
  size_t head_bytes_ = 0;
  int nl_state_ = 0;  // 1 after \n, 2 after \n\r, 3 after \n\r\n (end of the head)
};

// The keep-alive loop of one connection, shared by the plain and the TLS server.
template <typename ProcessRequest>
bool serve_connection(ConnStream& strm, const Limits& l, const std::atomic<int>& listener,
                      ProcessRequest process) {
  size_t left = l.keep_alive_max;
  bool ret = false;
  bool first = true;
  while (listener != INVALID_SOCKET && left > 0) {
    if (!first && !strm.wait_readable(l.keep_alive_timeout_s)) break;
    first = false;
    strm.start_request();
    bool closed = false;
    ret = process(strm, left == 1, closed);
    if (!ret || closed) break;
    --left;
  }
  return ret;
}

void set_socket_timeouts(int fd, const Limits& l) {
  timeval rt{l.read_timeout_s, 0}, wt{l.write_timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wt, sizeof(wt));
}

class PlainServer : public httplib::Server {
 public:
  explicit PlainServer(const Limits& l) : limits_(l) {}

 private:
  bool process_and_close_socket(socket_t sock) override {
    set_socket_timeouts(sock, limits_);
    ConnStream strm(sock, nullptr, limits_);
    bool ret = serve_connection(strm, limits_, svr_sock_,
                                [this](httplib::Stream& s, bool close, bool& closed) {
                                  return process_request(s, close, closed, nullptr);
                                });
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ret;
  }
  const Limits& limits_;
};

class TlsServer : public httplib::SSLServer {
 public:
  TlsServer(const Limits& l, const std::function<bool(SSL_CTX&)>& setup)
      : httplib::SSLServer(setup), limits_(l) {}

 private:
  bool process_and_close_socket(socket_t sock) override {
    set_socket_timeouts(sock, limits_);  // bounds the blocking handshake too
    bool ret = false;
    SSL* ssl = SSL_new(ssl_context());
    if (ssl && SSL_set_fd(ssl, sock) == 1 && SSL_accept(ssl) == 1) {
      ConnStream strm(sock, ssl, limits_);
      ret = serve_connection(strm, limits_, svr_sock_,
                             [this, ssl](httplib::Stream& s, bool close, bool& closed) {
                               return process_request(s, close, closed,
                                                      [ssl](httplib::Request& r) { r.ssl = ssl; });
                             });
      SSL_shutdown(ssl);
    }
    ERR_clear_error();
    if (ssl) SSL_free(ssl);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ret;
  }
  const Limits& limits_;
};

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

}  // namespace

std::string Request::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return "";
}

bool Request::has_header(const std::string& name) const {
  for (const auto& kv : headers)
    if (iequals(kv.first, name)) return true;
  return false;
}

std::string Request::query_value(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

bool Request::has_query(const std::string& name) const { return query.count(name) != 0; }

std::string Request::remote() const {
  if (remote_addr.find(':') != std::string::npos)
    return "[" + remote_addr + "]:" + std::to_string(remote_port);
  return remote_addr + ":" + std::to_string(remote_port);
}

void Response::set_header(const std::string& name, const std::string& value) {
  for (auto& kv : headers)
    if (iequals(kv.first, name)) {
      kv.second = value;
      return;
    }
  headers.emplace_back(name, value);
}

bool split_host_port(const std::string& text, std::string* host, int* port) {
  size_t colon;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    *host = text.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    *host = text.substr(0, colon);
    if (host->find(':') != std::string::npos) return false;  // IPv6 needs brackets
  }
  std::string p = text.substr(colon + 1);
  if (host->empty() || p.empty() || p.size() > 5) return false;
  int v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > 65535) return false;
  *port = v;
  return true;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

struct Route {
  std::string method;
  std::vector<std::string> segs;  // ":x" = parameter
  Handler handler;
};

struct Server::Impl {
  Limits limits;
  TlsOptions tls;
  std::vector<Route> routes;
  RefusalHandler refused;
  std::unique_ptr<httplib::Server> svr;

  static Request convert(const httplib::Request& h) {
    Request r;
    r.method = h.method;
    r.path = h.path;
    for (const auto& kv : h.params) r.query.insert(kv);
    for (const auto& kv : h.headers) r.headers.emplace_back(kv.first, kv.second);
    r.remote_addr = h.remote_addr;
    r.remote_port = h.remote_port;
    return r;
  }

  static void emit(const Response& out, httplib::Response& res) {
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k.c_str(), v);
    if (!out.body.empty()) res.set_content(out.body, out.content_type.c_str());
  }

  void refuse(const Request& r, int status, const std::string& msg, Response& out) {
    out.status = status;
    if (refused) {
      refused(r, status, msg, out);
    } else {
      out.body = msg;
      out.content_type = "text/plain";
    }
  }

  void dispatch(Request& r, Response& out) {
    std::vector<std::string> segs = split_path(r.path);
    std::string allow;
    for (const Route& rt : routes) {
      if (rt.segs.size() != segs.size()) continue;
      std::map<std::string, std::string> params;
      bool match = true;
      for (size_t i = 0; i < segs.size() && match; ++i) {
        if (!rt.segs[i].empty() && rt.segs[i][0] == ':') {
          if (segs[i].empty()) match = false;
          else params[rt.segs[i].substr(1)] = segs[i];
        } else if (rt.segs[i] != segs[i]) {
          match = false;
        }
      }
      if (!match) continue;
      if (rt.method == r.method || (r.method == "HEAD" && rt.method == "GET")) {
        r.params = std::move(params);
        rt.handler(r, out);
        return;
      }
      if (allow.find(rt.method) == std::string::npos)
        allow += (allow.empty() ? "" : ", ") + rt.method;
    }
    if (allow.empty()) {
      refuse(r, 404, "no such resource: " + r.path, out);
    } else {
      out.set_header("Allow", allow);
      refuse(r, 405, "method " + r.method + " not allowed on " + r.path + " (allowed: " + allow + ")",
             out);
    }
  }

  // Checks what can be checked from the headers alone, before any body byte is read.
  httplib::Server::HandlerResponse pre_route(const httplib::Request& h, httplib::Response& res) {
    int status = 0;
    std::string msg;
    const std::string& m = h.method;
    bool has_len = h.has_header("Content-Length");
    bool has_te = h.has_header("Transfer-Encoding");
    if (m != "GET" && m != "HEAD" && m != "POST" && m != "PUT" && m != "DELETE") {
      status = 405;
      msg = "method " + m + " is not supported";
    } else if (has_len && has_te) {
      status = 400;
      msg = "both Content-Length and Transfer-Encoding given";
    } else if (has_te && (m == "GET" || m == "HEAD" || m == "DELETE")) {
      status = 400;
      msg = "a " + m + " request with a chunked body is not accepted";
    } else if (h.has_header("Content-Encoding") &&
               !iequals(h.get_header_value("Content-Encoding"), "identity")) {
      status = 415;
      msg = "encoded request bodies (Content-Encoding) are not accepted";
    } else if (h.get_header_value("Content-Type").rfind("multipart/", 0) == 0) {
      status = 415;
      msg = "multipart bodies are not accepted; send the JSON document as the body";
    } else if (has_len) {
      const std::string v = h.get_header_value("Content-Length");
      bool digits = !v.empty() && v.size() <= 19;
      for (char c : v) digits = digits && c >= '0' && c <= '9';
      if (!digits) {
        status = 400;
        msg = "bad Content-Length";
      } else if (std::stoull(v) > limits.max_body) {
        status = 413;
        msg = "body of " + v + " bytes is over the limit of " + std::to_string(limits.max_body) +
              " bytes (--max-body)";
      }
    }
    if (status == 0) return httplib::Server::HandlerResponse::Unhandled;
    Request r = convert(h);
    Response out;
    refuse(r, status, msg, out);
    out.set_header("Connection", "close");  // the unread body must not be parsed as a request
    emit(out, res);
    return httplib::Server::HandlerResponse::Handled;
  }

  void with_body(const httplib::Request& h, httplib::Response& res,
                 const httplib::ContentReader& reader) {
    Request r = convert(h);
    Response out;
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limits.body_deadline_s);
    // HTTP/1.1: a request with neither Content-Length nor Transfer-Encoding has no body.
    const bool has_body = h.has_header("Content-Length") || h.has_header("Transfer-Encoding");
    bool ok = !has_body || reader([&](const char* data, size_t n) {
      if (r.body.size() + n > limits.max_body) {
        status = 413;
        return false;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        status = 408;
        return false;
      }
      r.body.append(data, n);
      return true;
    });
    if (!ok) {
      if (status == 413)
        refuse(r, 413, "body over the limit of " + std::to_string(limits.max_body) +
                           " bytes (--max-body)", out);
      else if (status == 408)
        refuse(r, 408, "body not received within " + std::to_string(limits.body_deadline_s) + " s",
               out);
      else
        refuse(r, 400, "the request body could not be read (truncated or bad chunked encoding)",
               out);
      out.set_header("Connection", "close");
      emit(out, res);
      return;
    }
    dispatch(r, out);
    emit(out, res);
  }

  void without_body(const httplib::Request& h, httplib::Response& res) {
    Request r = convert(h);
    Response out;
    dispatch(r, out);
    if (h.has_header("Content-Length") && h.get_header_value("Content-Length") != "0")
      out.set_header("Connection", "close");  // a GET body is never read
    emit(out, res);
  }
};

Server::Server(const Limits& limits, const TlsOptions& tls) : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->tls = tls;
}

Server::~Server() = default;

void Server::route(const std::string& method, const std::string& pattern, Handler h) {
  impl_->routes.push_back({method, split_path(pattern), std::move(h)});
}

void Server::on_refused(RefusalHandler h) { impl_->refused = std::move(h); }

bool Server::bind(const std::string& host, int port, std::string* err) {
  Impl& im = *impl_;
  if (!im.tls.cert_file.empty()) {
    std::string tls_err;
    const TlsOptions tls = im.tls;
    auto setup = [&tls_err, tls](SSL_CTX& ctx) -> bool {
      ERR_clear_error();
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
      if (SSL_CTX_use_certificate_chain_file(&ctx, tls.cert_file.c_str()) != 1) {
        tls_err = "cannot load the certificate " + tls.cert_file + " (--tls-cert, PEM): " +
                  openssl_error();
        return false;
      }
      if (SSL_CTX_use_PrivateKey_file(&ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        tls_err = "cannot load the private key " + tls.key_file + " (--tls-key, PEM): " +
                  openssl_error();
        return false;
      }
      if (SSL_CTX_check_private_key(&ctx) != 1) {
        tls_err = "the private key " + tls.key_file + " does not match the certificate " +
                  tls.cert_file + ": " + openssl_error();
        return false;
      }
      if (!tls.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(&ctx, tls.client_ca_file.c_str(), nullptr) != 1) {
          tls_err = "cannot load the client CA " + tls.client_ca_file + " (--client-ca, PEM): " +
                    openssl_error();
          return false;
        }
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
        if (names) SSL_CTX_set_client_CA_list(&ctx, names);
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      }
      return true;
    };
    auto s = std::make_unique<TlsServer>(im.limits, setup);
    if (!s->is_valid()) {
      *err = tls_err.empty() ? "cannot set up TLS: " + openssl_error() : tls_err;
      return false;
    }
    im.svr = std::move(s);
  } else {
    im.svr = std::make_unique<PlainServer>(im.limits);
  }
  httplib::Server& s = *im.svr;
  const Limits& l = im.limits;
  s.set_read_timeout(l.read_timeout_s, 0);
  s.set_write_timeout(l.write_timeout_s, 0);
  s.set_keep_alive_max_count(l.keep_alive_max);
  s.set_keep_alive_timeout(l.keep_alive_timeout_s);
  s.set_payload_max_length(l.max_body);
  s.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second instance share the port.
  s.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  size_t threads = l.threads, queue = l.queue;
  s.new_task_queue = [threads, queue] { return new BoundedPool(threads, queue); };
  s.set_pre_routing_handler(
      [&im](const httplib::Request& h, httplib::Response& res) { return im.pre_route(h, res); });
  auto body = [&im](const httplib::Request& h, httplib::Response& res,
                    const httplib::ContentReader& reader) { im.with_body(h, res, reader); };
  auto plain = [&im](const httplib::Request& h, httplib::Response& res) { im.without_body(h, res); };
  s.Get(".*", plain);
  s.Post(".*", body);
  s.Put(".*", body);
  s.Delete(".*", body);
  // Errors httplib answers itself (bad request line, URI too long): a JSON body too.
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string msg = res.status == 414 ? "request target too long"
                          : res.status == 413 ? "request body too large"
                                              : "malformed HTTP request";
        res.set_content("{\"error\":{\"code\":\"bad_request\",\"message\":\"" + msg + "\"}}",
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}",
                    "application/json");
  });
  if (!s.bind_to_port(host, port)) {
    // Find out why with a plain socket, for a message that says what to fix.
    std::string why = "cannot bind";
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (gai != 0) {
      why = std::string("cannot resolve the address: ") + gai_strerror(gai);
    } else {
      int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int yes = 1;
      if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0)
        why = strerror(errno);
      if (fd >= 0) close(fd);
      freeaddrinfo(res);
    }
    *err = "cannot listen on " + host + ":" + std::to_string(port) + ": " + why;
    return false;
  }
  return true;
}

bool Server::run() { return impl_->svr && impl_->svr->listen_after_bind(); }

void Server::stop() {
  if (impl_->svr) impl_->svr->stop();
}

}  // namespace egw::mgmt::http
