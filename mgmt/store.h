// Policy store: every committed version of the policy in --state-dir, written so that
// a kill -9 or power loss at any point leaves the old or the new version, never a torn
// one. Management side; callers serialize commits (one writer at a time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace egw::mgmt {

struct VersionInfo {
  uint64_t version = 0;
  std::string sha256;      // of the document, hex
  std::string created_at;  // RFC 3339 UTC, e.g. 2026-11-27T17:00:00Z
  std::string author;      // token name
  std::string comment;
};

// Named crash points of a commit, for fault-injection tests: when the environment
// variable EGW_MGMT_FAULT names one, the process kills itself with SIGKILL there.
//   before_write, after_temp_write, after_rename, before_publish, after_publish
void fault_point(const char* name);

// The current time in RFC 3339 UTC: 2026-11-27T17:00:00Z, or with micros
// 2026-11-27T17:00:00.123456Z (the audit log's format).
std::string utc_now_rfc3339(bool micros);

class PolicyStore {
 public:
  // Opens or creates the store; finishes or discards an interrupted commit. On error
  // returns false with a message naming the path and what to fix.
  bool open(const std::string& dir, std::string* err);
  // Releases the state dir (its lock) so another process may open it.
  void close();
  ~PolicyStore() { close(); }

  uint64_t current_version() const { return current_; }  // 0: nothing committed yet
  // The document / compiled blob of a committed version.
  bool read_document(uint64_t version, std::string* out, std::string* err) const;
  bool read_blob(uint64_t version, std::string* out, std::string* err) const;
  bool info(uint64_t version, VersionInfo* out) const;
  std::vector<VersionInfo> history() const;  // oldest first

  // Commits version current+1: the document and its blob (already stamped with that
  // version), durably, then makes it current. Returns the new version, or 0 with *err.
  uint64_t commit(const std::string& document, const std::string& blob, const std::string& author,
                  const std::string& comment, std::string* err);

  // Replaces the current version's compiled blob with `blob` (the same document compiled
  // again, stamped with the same version; after an upgrade that changed the blob ABI):
  // current.egwp, then versions/N/policy.egwp, each atomically. The document and its
  // meta.json stay. On error returns false with *err; a crash or failure in between
  // leaves the old blob in versions/N, which open() copies back to current.egwp.
  bool replace_current_blob(const std::string& blob, std::string* err);

  // The compiled blob of the current version, for `egw-dataplane --policy`.
  std::string current_blob_path() const { return dir_ + "/current.egwp"; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int lock_fd_ = -1;  // flock on DIR/.lock: one egw-mgmt per state dir
  uint64_t current_ = 0;
  std::vector<VersionInfo> history_;
};

// The audit log (DIR/audit.jsonl): one JSON object a line per mutation, failed ones
// too. append() writes and fsyncs; a failure to write fails the mutation.
struct AuditRecord {
  std::string time;            // RFC 3339 UTC with microseconds; empty: now
  std::string token;           // token name, empty = null (no or bad token)
  std::string remote;          // peer address:port
  std::string method, path;
  int status = 0;
  std::string sha256_before, sha256_after;  // of the active document, empty = null
  uint64_t version = 0;                     // version after the call, 0 = null
  // What egw-mgmt did on its own (entries without a request); empty = no such field.
  std::string detail;
};

class AuditLog {
 public:
  AuditLog() = default;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  bool open(const std::string& path, std::string* err);
  bool append(const AuditRecord& r, std::string* err);
  ~AuditLog();

 private:
  int fd_ = -1;
};

}  // namespace egw::mgmt
