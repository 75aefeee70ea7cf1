// egw-mgmt: the management process. Parses flags, opens the policy store, the audit
// log and the tokens, serves the REST API (mgmt/handlers_*.cc) and publishes policies
// to egw-dataplane (mgmt/publisher.h). Main thread: start-up, then the HTTP accept loop.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "mgmt/api.h"
#include "mgmt/flow_drain.h"
#include "mgmt/auth.h"
#include "mgmt/http.h"
#include "mgmt/publisher.h"
#include "mgmt/store.h"

namespace {

using namespace egw::mgmt;

constexpr const char* kUsage =
    "usage: egw-mgmt --instance NAME --listen ADDR:PORT --state-dir DIR\n"
    "                [--tls-cert FILE --tls-key FILE [--client-ca FILE]] [--tokens FILE]\n"
    "                [--max-body BYTES] [--insecure-listen] [--metrics-listen ADDR:PORT]\n"
    "                [--activation-timeout-ms N] [--flow-log FILE|-|none]\n"
    "                [--flow-log-max-bytes BYTES] [--flow-log-rotate N]\n"
    "  --flow-log          where the dataplane's flow records go (default DIR/flows.jsonl;\n"
    "                      - standard output; none: left in the dataplane's rings)\n"
    "  --flow-log-max-bytes  rotate the flow log before it passes this size (default 100 MiB)\n"
    "  --flow-log-rotate N rotated flow logs kept, FILE.1 the newest (default 5; 0: never rotate)\n";

struct Options {
  std::string instance, listen, state_dir, tls_cert, tls_key, client_ca, tokens, metrics_listen;
  size_t max_body = 16u << 20;
  bool insecure_listen = false;
  long activation_timeout_ms = 5000;
  std::string flow_log;  // "": DIR/flows.jsonl
  uint64_t flow_log_max_bytes = 100ull << 20;
  uint64_t flow_log_rotate = 5;
};

int usage_error(const std::string& msg) {
  fprintf(stderr, "egw-mgmt: %s\n%s", msg.c_str(), kUsage);
  return 2;
}

bool parse_u64(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

// Returns 0 when parsed, else the exit code after printing the problem.
int parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      exit(0);
    }
    if (a == "--insecure-listen") {
      o->insecure_listen = true;
      continue;
    }
    size_t eq = a.find('=');
    bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    std::string* target = nullptr;
    if (a == "--instance") target = &o->instance;
    else if (a == "--listen") target = &o->listen;
    else if (a == "--state-dir") target = &o->state_dir;
    else if (a == "--tls-cert") target = &o->tls_cert;
    else if (a == "--tls-key") target = &o->tls_key;
    else if (a == "--client-ca") target = &o->client_ca;
    else if (a == "--tokens") target = &o->tokens;
    else if (a == "--metrics-listen") target = &o->metrics_listen;
    else if (a == "--flow-log") target = &o->flow_log;
    else if (a != "--max-body" && a != "--activation-timeout-ms" && a != "--flow-log-max-bytes" &&
             a != "--flow-log-rotate")
      return usage_error("unknown option " + a);
    if (!inline_value) {
      if (i + 1 >= argc) return usage_error(a + " needs a value");
      value = argv[++i];
    }
    if (value.empty()) return usage_error(a + " needs a non-empty value");
    if (target) {
      *target = value;
    } else if (a == "--max-body") {
      uint64_t v;
      if (!parse_u64(value, 1ull << 30, &v) || v == 0)
        return usage_error("--max-body must be a number of bytes between 1 and 1073741824");
      o->max_body = v;
    } else if (a == "--flow-log-max-bytes") {
      if (!parse_u64(value, 1ull << 50, &o->flow_log_max_bytes) || o->flow_log_max_bytes < 4096)
        return usage_error("--flow-log-max-bytes must be a number of bytes, at least 4096");
    } else if (a == "--flow-log-rotate") {
      if (!parse_u64(value, 1000, &o->flow_log_rotate))
        return usage_error("--flow-log-rotate must be a number from 0 to 1000");
    } else {
      uint64_t v;
      if (!parse_u64(value, 600000, &v) || v == 0)
        return usage_error("--activation-timeout-ms must be between 1 and 600000");
      o->activation_timeout_ms = static_cast<long>(v);
    }
  }
  if (o->instance.empty()) return usage_error("--instance NAME is required");
  if (o->listen.empty()) return usage_error("--listen ADDR:PORT is required");
  if (o->state_dir.empty()) return usage_error("--state-dir DIR is required");
  if (o->instance.size() > 32) return usage_error("--instance: at most 32 characters");
  for (char c : o->instance)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      return usage_error("--instance: letters, digits, - and _ only");
  if (o->tls_cert.empty() != o->tls_key.empty())
    return usage_error("--tls-cert and --tls-key go together");
  if (!o->client_ca.empty() && o->tls_cert.empty())
    return usage_error("--client-ca needs --tls-cert and --tls-key (mutual TLS is on top of HTTPS)");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (int rc = parse_args(argc, argv, &o); rc != 0) return rc;

  std::string host, metrics_host;
  int port = 0, metrics_port = 0;
  if (!egw::mgmt::http::split_host_port(o.listen, &host, &port))
    return usage_error("--listen " + o.listen + ": expected ADDR:PORT, e.g. 127.0.0.1:8443 or [::1]:8443");
  if (o.tls_cert.empty() && !o.insecure_listen && !egw::mgmt::http::is_loopback_host(host)) {
    fprintf(stderr,
            "egw-mgmt: refusing to serve plain HTTP on %s, which is not a loopback address: "
            "tokens would cross the network in clear. Give --tls-cert and --tls-key, listen on "
            "127.0.0.1, or pass --insecure-listen if something else encrypts the path.\n",
            o.listen.c_str());
    return 2;
  }
  if (!o.metrics_listen.empty() &&
      !egw::mgmt::http::split_host_port(o.metrics_listen, &metrics_host, &metrics_port))
    return usage_error("--metrics-listen " + o.metrics_listen + ": expected ADDR:PORT");

  // Signals are taken by one thread with sigwait; every other thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string err;
  PolicyStore store;
  if (!store.open(o.state_dir, &err)) {
    fprintf(stderr, "egw-mgmt: %s\n", err.c_str());
    return 1;
  }
  AuditLog audit;
  if (!audit.open(o.state_dir + "/audit.jsonl", &err)) {
    fprintf(stderr, "egw-mgmt: %s\n", err.c_str());
    return 1;
  }
  TokenTable tokens;
  bool tokens_ok = o.tokens.empty() ? tokens.load_or_create_admin(o.state_dir, &err)
                                    : tokens.load_file(o.tokens, &err);
  if (!tokens_ok) {
    fprintf(stderr, "egw-mgmt: %s\n", err.c_str());
    return 1;
  }

  Publisher publisher(o.instance);
  FlowLogOptions flog;
  flog.path = o.flow_log.empty() ? o.state_dir + "/flows.jsonl" : o.flow_log == "none" ? "" : o.flow_log;
  flog.max_bytes = o.flow_log_max_bytes;
  flog.keep = static_cast<unsigned>(o.flow_log_rotate);
  FlowDrain drain(publisher, flog);
  if (!drain.open(&err)) {
    fprintf(stderr, "egw-mgmt: %s\n", err.c_str());
    return 1;
  }
  ApiConfig cfg;
  cfg.activation_timeout = std::chrono::milliseconds(o.activation_timeout_ms);
  Api api(store, audit, publisher, tokens, cfg);
  api.set_flow_drain(&drain);

  egw::mgmt::http::Limits limits;
  limits.max_body = o.max_body;
  egw::mgmt::http::TlsOptions tls{o.tls_cert, o.tls_key, o.client_ca};
  egw::mgmt::http::Server server(limits, tls);
  add_status_routes(api, server);
  add_policy_routes(api, server);
  add_ruleset_routes(api, server);
  server.on_refused([&api](const egw::mgmt::http::Request& q, int status, const std::string& m,
                           egw::mgmt::http::Response& r) { api.refused(q, status, m, r); });
  if (!server.bind(host, port, &err)) {
    fprintf(stderr, "egw-mgmt: %s\n", err.c_str());
    return 1;
  }
  egw::mgmt::http::Limits mlimits;
  mlimits.max_body = 0;
  mlimits.threads = 2;
  mlimits.queue = 8;
  egw::mgmt::http::Server metrics_server(mlimits, {});
  if (!o.metrics_listen.empty()) {
    add_open_metrics_route(api, metrics_server);
    if (!metrics_server.bind(metrics_host, metrics_port, &err)) {
      fprintf(stderr, "egw-mgmt: --metrics-listen: %s\n", err.c_str());
      return 1;
    }
  }

  api.start_republisher();
  publisher.start([&api] { api.request_republish(); });
  drain.start();

  std::atomic<bool> done{false};
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    // Stop until the accept loops have really ended (a stop before they start is lost).
    while (!done.load()) {
      server.stop();
      metrics_server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::thread metrics_thread;
  if (!o.metrics_listen.empty()) metrics_thread = std::thread([&] { metrics_server.run(); });

  printf("egw-mgmt: listening on %s (instance %s, state dir %s, policy version %llu)\n",
         o.listen.c_str(), o.instance.c_str(), o.state_dir.c_str(),
         static_cast<unsigned long long>(api.current_version()));
  fflush(stdout);
  bool ok = server.run();
  metrics_server.stop();
  if (metrics_thread.joinable()) metrics_thread.join();
  done.store(true);
  kill(getpid(), SIGTERM);  // wakes the signal thread if no signal came (listener failure)
  signals.join();
  drain.stop();
  publisher.stop();
  api.stop_republisher();
  if (!ok) {
    fprintf(stderr, "egw-mgmt: the listener on %s failed\n", o.listen.c_str());
    return 1;
  }
  fprintf(stderr, "egw-mgmt: stopped\n");
  return 0;
}
