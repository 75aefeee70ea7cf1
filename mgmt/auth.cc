// Bearer tokens: the tokens file, the generated admin token and the constant-time
// check. Loaded on the main thread at start-up; authenticate() runs on request threads.
#include "mgmt/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace egw::mgmt {

namespace {

constexpr size_t kMaxTokensFile = 1u << 20;

bool read_small_file(int fd, const std::string& path, std::string* out, std::string* err) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = "cannot read " + path + ": " + strerror(errno);
      return false;
    }
    if (n == 0) return true;
    if (out->size() + static_cast<size_t>(n) > kMaxTokensFile) {
      *err = path + " is larger than 1 MiB; is it the right file?";
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i >= line.size()) break;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::array<uint8_t, 32> digest_of(const std::string& token) {
  std::array<uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

void warn_if_exposed(int fd, const std::string& path) {
  struct stat st{};
  if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
    fprintf(stderr, "egw-mgmt: warning: %s is readable by group or others; chmod 600 it\n",
            path.c_str());
}

}  // namespace

bool TokenTable::add(const std::string& token, Role role, const std::string& name) {
  auto d = digest_of(token);
  for (const Entry& e : entries_)
    if (CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0) return false;
  entries_.push_back({d, {name, role}});
  return true;
}

bool TokenTable::load_file(const std::string& path, std::string* err) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = "cannot open the tokens file " + path + " (--tokens): " + strerror(errno);
    return false;
  }
  warn_if_exposed(fd, path);
  std::string text;
  bool ok = read_small_file(fd, path, &text, err);
  close(fd);
  if (!ok) return false;
  size_t lineno = 0, pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++lineno;
    std::string where = path + ":" + std::to_string(lineno) + ": ";
    std::vector<std::string> f = fields(line);
    if (f.empty() || f[0][0] == '#') continue;
    if (f.size() != 3) {
      *err = where + "expected `TOKEN ROLE NAME` (3 fields), found " + std::to_string(f.size());
      return false;
    }
    Role role;
    if (f[1] == "admin") role = Role::admin;
    else if (f[1] == "reader") role = Role::reader;
    else {
      *err = where + "role must be admin or reader, not \"" + f[1] + "\"";
      return false;
    }
    for (char c : f[0] + f[2])
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
        *err = where + "tokens and names must be printable ASCII";
        return false;
      }
    if (f[0].size() < 16)
      fprintf(stderr, "egw-mgmt: warning: %stoken of %s is shorter than 16 characters\n",
              where.c_str(), f[2].c_str());
    if (!add(f[0], role, f[2])) {
      *err = where + "this token is already listed on an earlier line";
      return false;
    }
  }
  if (entries_.empty()) {
    *err = "the tokens file " + path + " lists no token; add a `TOKEN admin NAME` line";
    return false;
  }
  return true;
}

bool TokenTable::load_or_create_admin(const std::string& dir, std::string* err) {
  const std::string path = dir + "/admin.token";
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      warn_if_exposed(fd, path);
      std::string text;
      bool ok = read_small_file(fd, path, &text, err);
      close(fd);
      if (!ok) return false;
      std::vector<std::string> f = fields(text.substr(0, text.find('\n')));
      if (f.size() != 1) {
        *err = path + " must hold one token on its first line; delete it to generate a new one";
        return false;
      }
      add(f[0], Role::admin, "admin");
      return true;
    }
    if (errno != ENOENT) {
      *err = "cannot open " + path + ": " + strerror(errno);
      return false;
    }
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
      *err = "cannot generate a random admin token (OpenSSL RAND_bytes failed)";
      return false;
    }
    static const char kHex[] = "0123456789abcdef";
    std::string token;
    for (unsigned char b : raw) {
      token += kHex[b >> 4];
      token += kHex[b & 15];
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) continue;  // another process made it first: read it
    if (fd < 0) {
      *err = "cannot create " + path + ": " + strerror(errno) + "; check --state-dir";
      return false;
    }
    std::string line = token + "\n";
    bool ok = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
              fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok) {
      unlink(path.c_str());
      *err = "cannot write " + path + ": " + strerror(saved);
      return false;
    }
    int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    add(token, Role::admin, "admin");
    fprintf(stderr, "egw-mgmt: generated an admin token in %s\n", path.c_str());
    return true;
  }
  *err = "cannot read or create " + path;
  return false;
}

std::optional<Identity> TokenTable::authenticate(const std::string& authorization) const {
  if (authorization.size() < 7 || strncasecmp(authorization.c_str(), "Bearer ", 7) != 0)
    return std::nullopt;
  size_t i = 7;
  while (i < authorization.size() && authorization[i] == ' ') ++i;
  std::string token = authorization.substr(i);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (token.empty()) return std::nullopt;
  auto d = digest_of(token);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {  // no early exit: every entry costs the same
    bool eq = CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0;
    if (eq) found = &e;
  }
  if (!found) return std::nullopt;
  return found->who;
}

}  // namespace egw::mgmt
