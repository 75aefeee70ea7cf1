// egwctl: the operator's command line. Offline commands (validate, compile) work on
// files; server commands talk to egw-mgmt. Single-threaded CLI.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "mgmt/compiler.h"

namespace {

constexpr size_t kMaxDocument = 64u << 20;  // refuse policy files over 64 MiB

constexpr const char* kUsage =
    "usage: egwctl [--server URL] [--token-file F] COMMAND [ARGS]\n"
    "offline commands:\n"
    "  validate FILE          check a policy document (FILE or - for stdin); exit 1 if invalid\n"
    "  compile FILE -o OUT    compile a policy document into a blob for egw-dataplane --policy\n"
    "server commands (egw-mgmt):\n"
    "  apply FILE [--if-match N], diff FILE, get, history, rollback N, stats, flows, top\n";

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

int cmd_validate(const std::vector<std::string>& args) {
  if (args.size() != 1) return usage_error("validate needs exactly one FILE");
  std::string doc, err;
  if (!read_document(args[0], &doc, &err)) {
    fprintf(stderr, "egwctl: %s\n", err.c_str());
    return 2;
  }
  egw::mgmt::CompileResult res = egw::mgmt::compile_document(doc, 0);
  if (!res.errors.empty()) {
    print_errors(args[0] == "-" ? "<stdin>" : args[0], res.errors);
    return 1;
  }
  printf("valid: %zu services, %zu rulesets, %zu rules, %zu bytes compiled\n", res.stats.services,
         res.stats.rulesets, res.stats.rules, res.blob.size());
  return 0;
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
  if (!read_document(in, &doc, &err)) {
    fprintf(stderr, "egwctl: %s\n", err.c_str());
    return 2;
  }
  egw::mgmt::CompileResult res = egw::mgmt::compile_document(doc, 0);
  if (!res.errors.empty()) {
    print_errors(in, res.errors);
    return 1;
  }
  if (!write_atomic(out, res.blob, &err)) {
    fprintf(stderr, "egwctl: %s\n", err.c_str());
    return 2;
  }
  printf("compiled %s: %zu services, %zu rules, %zu bytes -> %s\n", in.c_str(), res.stats.services,
         res.stats.rules, res.blob.size(), out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--server" || a == "--token-file") {
      if (i + 1 == args.size()) return usage_error(a + " needs a value");
      ++i;  // used by the server commands
      continue;
    }
    if (a.rfind("--server=", 0) == 0 || a.rfind("--token-file=", 0) == 0) continue;
    if (a.size() > 1 && a[0] == '-') return usage_error("unknown option " + a);
    break;
  }
  if (i == args.size()) return usage_error("no command given");
  std::string cmd = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  if (cmd == "validate") return cmd_validate(rest);
  if (cmd == "compile") return cmd_compile(rest);
  static const char* const kServerCommands[] = {"apply",    "diff",  "get",   "history",
                                                "rollback", "stats", "flows", "top"};
  for (const char* s : kServerCommands) {
    if (cmd == s) {
      fprintf(stderr, "egwctl: %s needs egw-mgmt, which this build does not include yet\n",
              cmd.c_str());
      return 2;
    }
  }
  return usage_error("unknown command '" + cmd + "'");
}
