// Policy store and audit log of egw-mgmt: the on-disk layout of --state-dir (see
// docs/state-dir.md), crash-safe commits and recovery at open. Management threads only.
#include "mgmt/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <json/json.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <memory>
#include <sstream>

namespace egw::mgmt {
namespace {

namespace fs = std::filesystem;

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr size_t kMaxFileBytes = size_t{1} << 31;  // no state file is anywhere near 2 GiB
const char* const kVersionFiles[] = {"policy.json", "policy.egwp", "meta.json"};

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + strerror(errno);
}

// Writes data to path (created 0600 or truncated) and fsyncs it.
bool write_file(const std::string& path, const std::string& data, std::string* err) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode);
  if (fd < 0) {
    *err = sys_error("cannot create", path);
    return false;
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = n < 0 ? sys_error("cannot write", path) : "cannot write " + path + ": wrote nothing";
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    *err = sys_error("cannot fsync", path);
    ::close(fd);
    return false;
  }
  if (::close(fd) != 0) {
    *err = sys_error("cannot close", path);
    return false;
  }
  return true;
}

bool read_file(const std::string& path, std::string* out, std::string* err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = sys_error("cannot open", path);
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *err = sys_error("cannot stat", path);
    ::close(fd);
    return false;
  }
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
    *err = "cannot read " + path + ": not a regular file of a sane size";
    ::close(fd);
    return false;
  }
  out->clear();
  out->reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = sys_error("cannot read", path);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (out->size() + static_cast<size_t>(n) > kMaxFileBytes) {
      *err = "cannot read " + path + ": file too large";
      ::close(fd);
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool fsync_dir(const std::string& path, std::string* err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    *err = sys_error("cannot open directory", path);
    return false;
  }
  if (::fsync(fd) != 0) {
    *err = sys_error("cannot fsync directory", path);
    ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

bool rename_path(const std::string& from, const std::string& to, std::string* err) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    *err = "cannot rename " + from + " to " + to + ": " + strerror(errno);
    return false;
  }
  return true;
}

// Replaces path atomically: path.tmp written and fsynced, renamed over path, dir fsynced.
bool replace_file(const std::string& dir, const std::string& path, const std::string& data,
                  std::string* err) {
  std::string tmp = path + ".tmp";
  return write_file(tmp, data, err) && rename_path(tmp, path, err) && fsync_dir(dir, err);
}

bool make_dir(const std::string& path, std::string* err) {
  if (::mkdir(path.c_str(), kDirMode) == 0 || errno == EEXIST) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return true;
    *err = path + " exists but is not a directory: move it away or choose another --state-dir";
    return false;
  }
  *err = sys_error("cannot create directory", path) +
         " (create it, owned by the user egw-mgmt runs as, mode 0700, or choose another "
         "--state-dir)";
  return false;
}

bool remove_tree(const std::string& path, std::string* err) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    *err = "cannot remove " + path + ": " + ec.message();
    return false;
  }
  return true;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Parses a decimal version number (1-20 digits, no sign, fits in uint64).
bool parse_number(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool sha256_hex(const std::string& data, std::string* out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 || len != 32)
    return false;
  static const char kHex[] = "0123456789abcdef";
  out->clear();
  for (unsigned int i = 0; i < len; ++i) {
    out->push_back(kHex[md[i] >> 4]);
    out->push_back(kHex[md[i] & 15]);
  }
  return true;
}

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Length of the valid UTF-8 sequence at s[i], 0 if invalid.
size_t utf8_len(const std::string& s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  if (n == 3 && c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
  if (n == 3 && c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
  if (n == 4 && c == 0xF0 && b(i + 1) < 0x90) return 0;   // overlong
  if (n == 4 && c == 0xF4 && b(i + 1) >= 0x90) return 0;  // above U+10FFFF
  return n;
}

// A JSON string literal; control characters escaped, invalid UTF-8 replaced by U+FFFD.
std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (size_t n = utf8_len(s, i); n != 0) {
      out.append(s, i, n);
      i += n;
      continue;
    } else {
      out += "\\ufffd";
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string json_string_or_null(const std::string& s) {
  return s.empty() ? "null" : json_quote(s);
}

std::string meta_json(const VersionInfo& v) {
  return "{\n  \"version\": " + std::to_string(v.version) +
         ",\n  \"sha256\": " + json_quote(v.sha256) +
         ",\n  \"created_at\": " + json_quote(v.created_at) +
         ",\n  \"author\": " + json_quote(v.author) + ",\n  \"comment\": " + json_quote(v.comment) +
         "\n}\n";
}

// Parses and checks DIR/versions/N/meta.json.
bool parse_meta(const std::string& path, const std::string& text, uint64_t version,
                VersionInfo* out, std::string* err) {
  Json::CharReaderBuilder b;
  Json::CharReaderBuilder::strictMode(&b.settings_);
  b["rejectDupKeys"] = true;
  std::unique_ptr<Json::CharReader> reader(b.newCharReader());
  Json::Value root;
  std::string perr;
  if (!reader->parse(text.data(), text.data() + text.size(), &root, &perr)) {
    *err = path + " is not valid JSON (" + perr + ")";
    return false;
  }
  auto bad = [&](const char* what) {
    *err = path + ": " + what + " (the version's metadata is corrupt: restore it from a backup)";
    return false;
  };
  if (!root.isObject()) return bad("not a JSON object");
  const Json::Value& ver = root["version"];
  if (!ver.isUInt64() || ver.asUInt64() != version)
    return bad(("\"version\" is not " + std::to_string(version)).c_str());
  for (const char* key : {"sha256", "created_at", "author", "comment"})
    if (!root[key].isString()) return bad((std::string("\"") + key + "\" is not a string").c_str());
  out->version = version;
  out->sha256 = root["sha256"].asString();
  out->created_at = root["created_at"].asString();
  out->author = root["author"].asString();
  out->comment = root["comment"].asString();
  if (!is_sha256_hex(out->sha256)) return bad("\"sha256\" is not 64 lowercase hex digits");
  if (out->created_at.empty()) return bad("\"created_at\" is empty");
  return true;
}

}  // namespace

std::string utc_now_rfc3339(bool micros) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  time_t secs = tv.tv_sec;
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  if (micros) n += snprintf(buf + n, sizeof(buf) - n, ".%06ld", static_cast<long>(tv.tv_usec));
  snprintf(buf + n, sizeof(buf) - n, "Z");
  return buf;
}

void fault_point(const char* name) {
  const char* want = getenv("EGW_MGMT_FAULT");
  if (want == nullptr || name == nullptr || strcmp(want, name) != 0) return;
  kill(getpid(), SIGKILL);
  abort();  // not reached: SIGKILL cannot be caught
}

// ---- PolicyStore ----

static std::string version_dir(const std::string& dir, uint64_t v) {
  return dir + "/versions/" + std::to_string(v);
}

void PolicyStore::close() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
}

bool PolicyStore::open(const std::string& dir, std::string* err) {
  dir_.clear();
  current_ = 0;
  history_.clear();
  if (dir.empty()) {
    *err = "no state directory given: pass --state-dir DIR";
    return false;
  }
  const std::string versions = dir + "/versions";
  if (!make_dir(dir, err) || !make_dir(versions, err)) return false;
  // One writer per state dir: a second egw-mgmt on the same dir would interleave commits.
  if (lock_fd_ < 0) {
    const std::string lock = dir + "/.lock";
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) {
      *err = "cannot open " + lock + ": " + strerror(errno);
      return false;
    }
    if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      *err = dir + " is in use by another egw-mgmt (" + lock +
             " is locked): give each instance its own --state-dir";
      ::close(lock_fd_);
      lock_fd_ = -1;
      return false;
    }
  }

  // 1. The commit point: DIR/current.
  uint64_t current = 0;
  const std::string current_path = dir + "/current";
  if (exists(current_path)) {
    std::string text;
    if (!read_file(current_path, &text, err)) return false;
    std::string_view num(text);
    if (!num.empty() && num.back() == '\n') num.remove_suffix(1);
    if (!parse_number(num, &current)) {
      *err = current_path + " does not hold a version number (it holds " +
             json_quote(text.substr(0, 40)) +
             "): write the number of the last good version in DIR/versions/ into it";
      return false;
    }
  }

  // 2. Leftovers of interrupted commits: temp files, versions/N.tmp, and versions/current+1
  //    (renamed into place but never made current). Anything else unexpected is an error.
  bool cleaned = false;
  for (const char* tmp : {"current.tmp", "current.egwp.tmp"}) {
    std::string p = dir + "/" + tmp;
    if (exists(p)) {
      if (::unlink(p.c_str()) != 0) {
        *err = sys_error("cannot remove leftover", p);
        return false;
      }
      cleaned = true;
    }
  }
  std::error_code ec;
  std::vector<uint64_t> present;
  for (fs::directory_iterator it(versions, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string full = versions + "/" + name;
    uint64_t v = 0;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      if (!remove_tree(full, err)) return false;
      cleaned = true;
    } else if (parse_number(name, &v) && v > 0 && std::to_string(v) == name) {
      if (v == current + 1) {
        if (!remove_tree(full, err)) return false;
        cleaned = true;
      } else if (v > current) {
        *err = full + " is newer than the current version " + std::to_string(current) + " (" +
               current_path + "): the state directory was edited by hand or restored " +
               "partially; fix " + current_path + " or move that version away";
        return false;
      } else {
        present.push_back(v);
      }
    }
  }
  if (ec) {
    *err = "cannot list " + versions + ": " + ec.message();
    return false;
  }
  // A blob replacement (replace_current_blob) stopped before its rename.
  if (current != 0) {
    const std::string blob_tmp = version_dir(dir, current) + "/policy.egwp.tmp";
    if (exists(blob_tmp)) {
      if (::unlink(blob_tmp.c_str()) != 0) {
        *err = sys_error("cannot remove leftover", blob_tmp);
        return false;
      }
      if (!fsync_dir(version_dir(dir, current), err)) return false;
    }
  }
  if (cleaned && !(fsync_dir(versions, err) && fsync_dir(dir, err))) return false;

  // 3. The current version must be whole; its document must match its recorded sha256.
  if (current != 0) {
    std::string vdir = version_dir(dir, current);
    for (const char* f : kVersionFiles) {
      struct stat st;
      std::string p = vdir + "/" + f;
      errno = 0;
      if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        *err = current_path + " names version " + std::to_string(current) + " but " + p +
               " is missing or unreadable" +
               (errno ? std::string(" (") + strerror(errno) + ")" : "") +
               ": restore that version or write the last good version number into " + current_path;
        return false;
      }
    }
  }

  // 4. History: meta.json of every version present, oldest first.
  std::sort(present.begin(), present.end());
  for (uint64_t v : present) {
    std::string vdir = version_dir(dir, v), text;
    for (const char* f : kVersionFiles) {
      if (!exists(vdir + "/" + f)) {
        *err = vdir + "/" + f + " is missing: version " + std::to_string(v) +
               " is damaged; restore it from a backup or move " + vdir + " away";
        return false;
      }
    }
    VersionInfo info;
    if (!read_file(vdir + "/meta.json", &text, err) ||
        !parse_meta(vdir + "/meta.json", text, v, &info, err))
      return false;
    history_.push_back(std::move(info));
  }
  if (current != 0) {
    std::string doc, sha;
    std::string doc_path = version_dir(dir, current) + "/policy.json";
    if (!read_file(doc_path, &doc, err)) return false;
    if (!sha256_hex(doc, &sha)) {
      *err = "SHA-256 of " + doc_path + " failed (OpenSSL)";
      return false;
    }
    if (history_.empty() || history_.back().version != current || history_.back().sha256 != sha) {
      *err = doc_path + " does not match the sha256 in its meta.json: the current version is " +
             "damaged; restore it from a backup or write the last good version into " +
             current_path;
      return false;
    }
  }

  // 5. DIR/current.egwp must be the current version's blob (a crash may have left the
  //    next version's blob there, or none).
  const std::string egwp = dir + "/current.egwp";
  if (current == 0) {
    if (exists(egwp) && (::unlink(egwp.c_str()) != 0 || !fsync_dir(dir, err))) {
      if (err->empty()) *err = sys_error("cannot remove uncommitted", egwp);
      return false;
    }
  } else {
    std::string want, have, ignored;
    if (!read_file(version_dir(dir, current) + "/policy.egwp", &want, err)) return false;
    if (!exists(egwp) || !read_file(egwp, &have, &ignored) || have != want) {
      if (!replace_file(dir, egwp, want, err)) return false;
    }
  }

  dir_ = dir;
  current_ = current;
  return true;
}

bool PolicyStore::read_document(uint64_t version, std::string* out, std::string* err) const {
  if (!info(version, nullptr)) {
    *err = "version " + std::to_string(version) + " does not exist";
    return false;
  }
  return read_file(version_dir(dir_, version) + "/policy.json", out, err);
}

bool PolicyStore::read_blob(uint64_t version, std::string* out, std::string* err) const {
  if (!info(version, nullptr)) {
    *err = "version " + std::to_string(version) + " does not exist";
    return false;
  }
  return read_file(version_dir(dir_, version) + "/policy.egwp", out, err);
}

bool PolicyStore::info(uint64_t version, VersionInfo* out) const {
  auto it = std::lower_bound(history_.begin(), history_.end(), version,
                             [](const VersionInfo& v, uint64_t n) { return v.version < n; });
  if (it == history_.end() || it->version != version) return false;
  if (out != nullptr) *out = *it;
  return true;
}

std::vector<VersionInfo> PolicyStore::history() const {
  return history_;
}

uint64_t PolicyStore::commit(const std::string& document, const std::string& blob,
                             const std::string& author, const std::string& comment,
                             std::string* err) {
  if (dir_.empty()) {
    *err = "the policy store is not open";
    return 0;
  }
  fault_point("before_write");
  VersionInfo info;
  info.version = current_ + 1;
  info.created_at = utc_now_rfc3339(false);
  info.author = author;
  info.comment = comment;
  if (!sha256_hex(document, &info.sha256)) {
    *err = "SHA-256 of the document failed (OpenSSL)";
    return 0;
  }
  const std::string versions = dir_ + "/versions";
  const std::string final_dir = version_dir(dir_, info.version);
  const std::string tmp_dir = final_dir + ".tmp";
  const std::string egwp = current_blob_path();

  // Leftovers of an earlier failed commit in this process.
  if (!remove_tree(tmp_dir, err) || !remove_tree(final_dir, err)) return 0;
  if (::mkdir(tmp_dir.c_str(), kDirMode) != 0) {
    *err = sys_error("cannot create directory", tmp_dir);
    return 0;
  }
  const std::string contents[] = {document, blob, meta_json(info)};
  for (size_t i = 0; i < 3; ++i) {
    if (!write_file(tmp_dir + "/" + kVersionFiles[i], contents[i], err)) {
      std::string ignored;
      remove_tree(tmp_dir, &ignored);
      return 0;
    }
  }
  if (!fsync_dir(tmp_dir, err)) {
    std::string ignored;
    remove_tree(tmp_dir, &ignored);
    return 0;
  }
  fault_point("after_temp_write");

  // Undo what was done if a later step fails, so the previous version stays current.
  bool renamed_version = false, replaced_egwp = false;
  auto fail = [&]() -> uint64_t {
    std::string ignored, old_blob;
    if (replaced_egwp) {
      if (current_ != 0 &&
          read_file(version_dir(dir_, current_) + "/policy.egwp", &old_blob, &ignored))
        replace_file(dir_, egwp, old_blob, &ignored);
      else if (current_ == 0 && ::unlink(egwp.c_str()) == 0)
        fsync_dir(dir_, &ignored);
    }
    remove_tree(renamed_version ? final_dir : tmp_dir, &ignored);
    fsync_dir(versions, &ignored);
    return 0;
  };

  if (!rename_path(tmp_dir, final_dir, err)) return fail();
  renamed_version = true;
  if (!fsync_dir(versions, err)) return fail();
  if (!replace_file(dir_, egwp, blob, err)) {
    replaced_egwp = true;  // the rename may have happened before the fsync failed
    return fail();
  }
  replaced_egwp = true;

  // The commit point: DIR/current names the new version.
  const std::string current_path = dir_ + "/current";
  const std::string current_tmp = current_path + ".tmp";
  if (!write_file(current_tmp, std::to_string(info.version) + "\n", err)) return fail();
  if (!rename_path(current_tmp, current_path, err)) return fail();
  if (!fsync_dir(dir_, err)) {
    // Renamed but not known durable: put the old number back before undoing the rest.
    std::string ignored;
    if (current_ == 0) {
      ::unlink(current_path.c_str());
    } else {
      replace_file(dir_, current_path, std::to_string(current_) + "\n", &ignored);
    }
    return fail();
  }
  fault_point("after_rename");

  current_ = info.version;
  history_.push_back(std::move(info));
  return current_;
}

bool PolicyStore::replace_current_blob(const std::string& blob, std::string* err) {
  if (dir_.empty() || current_ == 0) {
    *err = dir_.empty() ? "the policy store is not open" : "no version is committed yet";
    return false;
  }
  // current.egwp first: whatever stops us before the second rename, versions/N keeps the
  // old blob, open() puts it back into current.egwp and the next republish retries.
  const std::string vdir = version_dir(dir_, current_);
  const std::string egwp = current_blob_path();
  if (!replace_file(dir_, egwp, blob, err)) {
    ::unlink((egwp + ".tmp").c_str());
    return false;
  }
  if (!replace_file(vdir, vdir + "/policy.egwp", blob, err)) {
    ::unlink((vdir + "/policy.egwp.tmp").c_str());
    return false;
  }
  return true;
}

// ---- AuditLog ----

bool AuditLog::open(const std::string& path, std::string* err) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kFileMode);
  if (fd_ < 0) {
    *err = sys_error("cannot open audit log", path) +
           " (the state directory must be writable by the user egw-mgmt runs as)";
    return false;
  }
  return true;
}

bool AuditLog::append(const AuditRecord& r, std::string* err) {
  if (fd_ < 0) {
    *err = "the audit log is not open";
    return false;
  }
  std::string line = "{\"time\":" + json_quote(r.time.empty() ? utc_now_rfc3339(true) : r.time) +
                     ",\"token\":" + json_string_or_null(r.token) +
                     ",\"remote\":" + json_quote(r.remote) + ",\"method\":" + json_quote(r.method) +
                     ",\"path\":" + json_quote(r.path) + ",\"status\":" + std::to_string(r.status) +
                     ",\"sha256_before\":" + json_string_or_null(r.sha256_before) +
                     ",\"sha256_after\":" + json_string_or_null(r.sha256_after) + ",\"version\":" +
                     (r.version == 0 ? std::string("null") : std::to_string(r.version)) +
                     (r.detail.empty() ? "" : ",\"detail\":" + json_quote(r.detail)) + "}\n";
  ssize_t n;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    *err = std::string("cannot write the audit log: ") + strerror(errno);
    return false;
  }
  if (static_cast<size_t>(n) != line.size()) {
    *err = "short write to the audit log (" + std::to_string(n) + " of " +
           std::to_string(line.size()) + " bytes): is the disk full?";
    return false;
  }
  if (::fdatasync(fd_) != 0) {
    *err = std::string("cannot fdatasync the audit log: ") + strerror(errno);
    return false;
  }
  return true;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace egw::mgmt
