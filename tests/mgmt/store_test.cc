// Tests for mgmt/store.cc: commit round trip, recovery at open() from every crash state
// of a commit (built by hand and by real SIGKILLs), corrupt state, the audit log, faults.
#include "tests/support/files.h"
#include "mgmt/store.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <json/json.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>

namespace egw::mgmt {
namespace {

using test::TempDir;

// The state directory a test's store lives in.
std::string state_of(const TempDir& t) { return t.path() + "/state"; }

namespace fs = std::filesystem;

void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  ASSERT_TRUE(out.good()) << path;
}

std::string sha_hex(const std::string& data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    snprintf(buf, sizeof(buf), "%02x", md[i]);
    out += buf;
  }
  return out;
}

mode_t mode_of(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string doc(uint64_t v) {
  return "{\"schema\":1,\"default_action\":\"deny\",\"v\":" + std::to_string(v) + "}";
}
std::string blob(uint64_t v) {
  return std::string("EGWP\0\1", 6) + std::string(100 + v, static_cast<char>(v));
}

// Commits versions 1..n through the store.
void commit_versions(const std::string& dir, uint64_t n) {
  PolicyStore s;
  std::string err;
  ASSERT_TRUE(s.open(dir, &err)) << err;
  for (uint64_t v = s.current_version() + 1; v <= n; ++v)
    ASSERT_EQ(s.commit(doc(v), blob(v), "alice", "c" + std::to_string(v), &err), v) << err;
}

// The store at dir opens, holds version want whole, and takes one more commit.
void expect_whole(const std::string& dir, uint64_t want) {
  PolicyStore s;
  std::string err, d, b;
  ASSERT_TRUE(s.open(dir, &err)) << err;
  ASSERT_EQ(s.current_version(), want);
  ASSERT_EQ(s.history().size(), want);
  EXPECT_EQ(fs::exists(dir + "/versions/" + std::to_string(want + 1)), false);
  EXPECT_EQ(fs::exists(dir + "/versions/" + std::to_string(want + 1) + ".tmp"), false);
  EXPECT_FALSE(fs::exists(dir + "/current.tmp"));
  EXPECT_FALSE(fs::exists(dir + "/current.egwp.tmp"));
  if (want == 0) {
    EXPECT_FALSE(fs::exists(dir + "/current.egwp"));
  } else {
    ASSERT_TRUE(s.read_document(want, &d, &err)) << err;
    ASSERT_TRUE(s.read_blob(want, &b, &err)) << err;
    EXPECT_EQ(d, doc(want));
    EXPECT_EQ(b, blob(want));
    std::string cur = test::file_text(dir + "/current");
    if (!cur.empty() && cur.back() == '\n') cur.pop_back();
    EXPECT_EQ(cur, std::to_string(want));
    EXPECT_EQ(test::file_text(s.current_blob_path()), blob(want));
    EXPECT_FALSE(fs::exists(dir + "/versions/" + std::to_string(want) + "/policy.egwp.tmp"));
  }
  EXPECT_EQ(s.commit(doc(want + 1), blob(want + 1), "bob", "", &err), want + 1) << err;
}

TEST(PolicyStore, CommitReadHistoryRoundTrip) {
  TempDir t;
  std::string err, out;
  PolicyStore s;
  ASSERT_TRUE(s.open(state_of(t), &err)) << err;
  EXPECT_EQ(s.current_version(), 0u);
  EXPECT_TRUE(s.history().empty());
  EXPECT_EQ(mode_of(state_of(t)), 0700u);
  EXPECT_EQ(mode_of(state_of(t) + "/versions"), 0700u);
  EXPECT_FALSE(s.read_document(1, &out, &err));
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;

  struct Case {
    const char* description;
    std::string document, blob, author, comment;
  } cases[] = {
      {"first version", doc(1), blob(1), "alice", "initial"},
      {"empty comment", doc(2), blob(2), "bob", ""},
      {"comment with quotes, newline and non-ASCII", doc(3), blob(3), "ci \"bot\"",
       "line1\nzürich\t✓"},
      {"empty document and blob bytes", "", "", "alice", "x"},
      {"blob with every byte value", doc(5), std::string("\0\xff\x80\n", 4) + blob(5), "a", "b"},
  };
  uint64_t v = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    ++v;
    ASSERT_EQ(s.commit(c.document, c.blob, c.author, c.comment, &err), v) << err;
    EXPECT_EQ(s.current_version(), v);
    std::string vdir = state_of(t) + "/versions/" + std::to_string(v);
    EXPECT_EQ(mode_of(vdir), 0700u);
    for (const char* f : {"policy.json", "policy.egwp", "meta.json"})
      EXPECT_EQ(mode_of(vdir + "/" + f), 0600u) << f;
    EXPECT_EQ(mode_of(state_of(t) + "/current"), 0600u);
    EXPECT_EQ(mode_of(s.current_blob_path()), 0600u);
    EXPECT_EQ(test::file_text(state_of(t) + "/current"), std::to_string(v) + "\n");
    EXPECT_EQ(test::file_text(s.current_blob_path()), c.blob);
    ASSERT_TRUE(s.read_document(v, &out, &err)) << err;
    EXPECT_EQ(out, c.document);
    ASSERT_TRUE(s.read_blob(v, &out, &err)) << err;
    EXPECT_EQ(out, c.blob);
    VersionInfo info;
    ASSERT_TRUE(s.info(v, &info));
    EXPECT_EQ(info.version, v);
    EXPECT_EQ(info.sha256, sha_hex(c.document));
    EXPECT_EQ(info.author, c.author);
    EXPECT_EQ(info.comment, c.comment);
    ASSERT_EQ(info.created_at.size(), 20u) << info.created_at;
    EXPECT_EQ(info.created_at[10], 'T');
    EXPECT_EQ(info.created_at.back(), 'Z');
    // meta.json parses on its own and carries the same facts.
    Json::Value meta;
    std::istringstream in(test::file_text(vdir + "/meta.json"));
    ASSERT_TRUE(Json::parseFromStream(Json::CharReaderBuilder(), in, &meta, &err)) << err;
    EXPECT_EQ(meta["version"].asUInt64(), v);
    EXPECT_EQ(meta["sha256"].asString(), info.sha256);
    EXPECT_EQ(meta["comment"].asString(), c.comment);
  }
  EXPECT_FALSE(s.info(0, nullptr));
  EXPECT_FALSE(s.info(v + 1, nullptr));

  // A restart sees the same history, oldest first.
  const auto h1 = s.history();
  s.close();
  PolicyStore again;
  ASSERT_TRUE(again.open(state_of(t), &err)) << err;
  EXPECT_EQ(again.current_version(), v);
  auto h2 = again.history();
  ASSERT_EQ(h2.size(), v);
  for (size_t i = 0; i < h2.size(); ++i) {
    EXPECT_EQ(h2[i].version, i + 1);
    EXPECT_EQ(h2[i].sha256, h1[i].sha256);
    EXPECT_EQ(h2[i].created_at, h1[i].created_at);
    EXPECT_EQ(h2[i].author, h1[i].author);
    EXPECT_EQ(h2[i].comment, h1[i].comment);
  }
}

// The current version's blob is replaced in versions/N and current.egwp; nothing else
// changes, and a restart keeps the new blob.
TEST(PolicyStore, ReplaceCurrentBlob) {
  TempDir t;
  commit_versions(state_of(t), 2);
  const std::string fresh = std::string("EGWP\0\2", 6) + "recompiled";
  std::string err, out;
  {
    PolicyStore s;
    ASSERT_TRUE(s.open(state_of(t), &err)) << err;
    const auto before = s.history();
    ASSERT_TRUE(s.replace_current_blob(fresh, &err)) << err;
    EXPECT_EQ(s.current_version(), 2u);
    EXPECT_EQ(test::file_text(s.current_blob_path()), fresh);
    EXPECT_EQ(mode_of(s.current_blob_path()), 0600u);
    ASSERT_TRUE(s.read_blob(2, &out, &err)) << err;
    EXPECT_EQ(out, fresh);
    EXPECT_EQ(mode_of(state_of(t) + "/versions/2/policy.egwp"), 0600u);
    ASSERT_TRUE(s.read_blob(1, &out, &err)) << err;
    EXPECT_EQ(out, blob(1));  // only the current version's
    ASSERT_TRUE(s.read_document(2, &out, &err)) << err;
    EXPECT_EQ(out, doc(2));
    ASSERT_EQ(s.history().size(), before.size());
    EXPECT_EQ(s.history().back().sha256, before.back().sha256);
    EXPECT_FALSE(fs::exists(s.current_blob_path() + ".tmp"));
    EXPECT_FALSE(fs::exists(state_of(t) + "/versions/2/policy.egwp.tmp"));
  }
  PolicyStore again;
  ASSERT_TRUE(again.open(state_of(t), &err)) << err;
  EXPECT_EQ(test::file_text(again.current_blob_path()), fresh);
  ASSERT_TRUE(again.read_blob(2, &out, &err)) << err;
  EXPECT_EQ(out, fresh);

  TempDir empty;
  PolicyStore none;
  EXPECT_FALSE(none.replace_current_blob(fresh, &err));
  EXPECT_NE(err.find("not open"), std::string::npos) << err;
  ASSERT_TRUE(none.open(state_of(empty), &err)) << err;
  EXPECT_FALSE(none.replace_current_blob(fresh, &err));
  EXPECT_NE(err.find("no version is committed"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(none.current_blob_path()));
}

TEST(PolicyStore, CommitWithoutOpenFails) {
  PolicyStore s;
  std::string err;
  EXPECT_EQ(s.commit(doc(1), blob(1), "a", "", &err), 0u);
  EXPECT_NE(err.find("not open"), std::string::npos) << err;
}

// On-disk states a crash can leave (built by hand from a store at version 2), and the
// version open() must recover to.
TEST(PolicyStore, OpenRecoversFromCrashStates) {
  struct Case {
    const char* description;
    uint64_t committed;                             // versions committed first
    std::function<void(const std::string&)> crash;  // then this is done to the directory
    uint64_t want;
  } cases[] = {
      {"clean store", 2, [](const std::string&) {}, 2},
      {"only versions/3.tmp, partly written", 2,
       [](const std::string& d) {
         fs::create_directory(d + "/versions/3.tmp");
         spit(d + "/versions/3.tmp/policy.json", doc(3).substr(0, 5));
       },
       2},
      {"versions/3.tmp complete, not renamed", 2,
       [](const std::string& d) {
         fs::create_directory(d + "/versions/3.tmp");
         spit(d + "/versions/3.tmp/policy.json", doc(3));
         spit(d + "/versions/3.tmp/policy.egwp", blob(3));
         spit(d + "/versions/3.tmp/meta.json", "{\"version\":3}");
       },
       2},
      {"versions/3 renamed, current and current.egwp not updated", 3,
       [](const std::string& d) {
         spit(d + "/current", "2\n");
         spit(d + "/current.egwp", blob(2));
       },
       2},
      {"versions/3 renamed and current.egwp replaced, current not updated", 3,
       [](const std::string& d) { spit(d + "/current", "2\n"); }, 2},
      {"current.egwp.tmp half written, current not updated", 3,
       [](const std::string& d) {
         spit(d + "/current", "2\n");
         spit(d + "/current.egwp", blob(2));
         spit(d + "/current.egwp.tmp", blob(3).substr(0, 7));
       },
       2},
      {"current.tmp written, not renamed", 3,
       [](const std::string& d) {
         spit(d + "/current", "2\n");
         spit(d + "/current.tmp", "3\n");
       },
       2},
      {"current updated, current.egwp stale", 3,
       [](const std::string& d) { spit(d + "/current.egwp", blob(2)); }, 3},
      {"current updated, current.egwp missing", 3,
       [](const std::string& d) { fs::remove(d + "/current.egwp"); }, 3},
      {"current updated, current.egwp truncated", 3,
       [](const std::string& d) { spit(d + "/current.egwp", blob(3).substr(0, 9)); }, 3},
      {"current without trailing newline", 2,
       [](const std::string& d) { spit(d + "/current", "2"); }, 2},
      {"stray temp files everywhere", 2,
       [](const std::string& d) {
         spit(d + "/current.tmp", "");
         spit(d + "/current.egwp.tmp", "x");
         fs::create_directory(d + "/versions/9.tmp");
       },
       2},
      {"first commit crashed before its commit point", 1,
       [](const std::string& d) { fs::remove(d + "/current"); }, 0},
      {"first commit crashed in its temp write", 0,
       [](const std::string& d) {
         fs::create_directories(d + "/versions/1.tmp");
         spit(d + "/versions/1.tmp/policy.egwp", "EG");
       },
       0},
      {"state directory missing: created", 0, [](const std::string& d) { fs::remove_all(d); }, 0},
      // replace_current_blob: current.egwp, then versions/N/policy.egwp.
      {"blob replacement: current.egwp.tmp half written", 2,
       [](const std::string& d) { spit(d + "/current.egwp.tmp", "EGWP-new"); }, 2},
      {"blob replacement: current.egwp replaced, versions/2 not yet", 2,
       [](const std::string& d) { spit(d + "/current.egwp", "EGWP-recompiled"); }, 2},
      {"blob replacement: versions/2/policy.egwp.tmp written, not renamed", 2,
       [](const std::string& d) {
         spit(d + "/current.egwp", "EGWP-recompiled");
         spit(d + "/versions/2/policy.egwp.tmp", "EGWP-recompiled");
       },
       2},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    TempDir t;
    commit_versions(state_of(t), c.committed);
    fs::create_directories(state_of(t) + "/versions");
    c.crash(state_of(t));
    expect_whole(state_of(t), c.want);
  }
}

// State an operator must look at: open() fails and says what and where.
TEST(PolicyStore, OpenRejectsCorruptState) {
  struct Case {
    const char* description;
    std::function<void(const std::string&)> corrupt;
    const char* message;  // part of the error
    const char* file;     // the error names this path (relative to the state dir)
  } cases[] = {
      {"meta.json not JSON",
       [](const std::string& d) { spit(d + "/versions/1/meta.json", "{\"version\":"); },
       "not valid JSON", "versions/1/meta.json"},
      {"meta.json empty", [](const std::string& d) { spit(d + "/versions/2/meta.json", ""); },
       "not valid JSON", "versions/2/meta.json"},
      {"meta.json an array", [](const std::string& d) { spit(d + "/versions/1/meta.json", "[]"); },
       "not a JSON object", "versions/1/meta.json"},
      {"meta.json with the wrong version",
       [](const std::string& d) {
         std::string m = test::file_text(d + "/versions/1/meta.json");
         m.replace(m.find("\"version\": 1"), 12, "\"version\": 7");
         spit(d + "/versions/1/meta.json", m);
       },
       "\"version\" is not 1", "versions/1/meta.json"},
      {"meta.json with a duplicate key",
       [](const std::string& d) {
         std::string m = test::file_text(d + "/versions/2/meta.json");
         m.insert(1, "\"author\":\"mallory\",");
         spit(d + "/versions/2/meta.json", m);
       },
       "not valid JSON", "versions/2/meta.json"},
      {"meta.json sha256 not hex",
       [](const std::string& d) {
         std::string m = test::file_text(d + "/versions/1/meta.json");
         m.replace(m.find("\"sha256\": \"") + 11, 4, "ZZZZ");
         spit(d + "/versions/1/meta.json", m);
       },
       "\"sha256\" is not 64", "versions/1/meta.json"},
      {"meta.json author not a string",
       [](const std::string& d) {
         std::string m = test::file_text(d + "/versions/1/meta.json");
         m.replace(m.find("\"author\": \""), 11, "\"author\": 5, \"x\": \"");
         spit(d + "/versions/1/meta.json", m);
       },
       "\"author\" is not a string", "versions/1/meta.json"},
      {"meta.json missing", [](const std::string& d) { fs::remove(d + "/versions/1/meta.json"); },
       "missing", "versions/1/meta.json"},
      {"old version's blob missing",
       [](const std::string& d) { fs::remove(d + "/versions/1/policy.egwp"); }, "missing",
       "versions/1/policy.egwp"},
      {"current version's document missing",
       [](const std::string& d) { fs::remove(d + "/versions/2/policy.json"); }, "missing",
       "versions/2/policy.json"},
      {"current version's document altered",
       [](const std::string& d) { spit(d + "/versions/2/policy.json", doc(9)); },
       "does not match the sha256", "versions/2/policy.json"},
      {"current holds text", [](const std::string& d) { spit(d + "/current", "two\n"); },
       "version number", "current"},
      {"current empty", [](const std::string& d) { spit(d + "/current", ""); }, "version number",
       "current"},
      {"current negative", [](const std::string& d) { spit(d + "/current", "-1\n"); },
       "version number", "current"},
      {"current overflows",
       [](const std::string& d) { spit(d + "/current", "99999999999999999999999\n"); },
       "version number", "current"},
      {"current with two lines", [](const std::string& d) { spit(d + "/current", "2\n3\n"); },
       "version number", "current"},
      {"current names a missing version", [](const std::string& d) { spit(d + "/current", "5\n"); },
       "missing", "versions/5/"},
      {"current names a version that is a file",
       [](const std::string& d) {
         fs::remove_all(d + "/versions/2");
         spit(d + "/versions/2", "x");
       },
       "missing", "versions/2/"},
      {"a version two past current",
       [](const std::string& d) { fs::create_directory(d + "/versions/4"); },
       "newer than the current version 2", "versions/4"},
      {"versions is a file",
       [](const std::string& d) {
         fs::remove_all(d + "/versions");
         spit(d + "/versions", "");
       },
       "not a directory", "versions"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    TempDir t;
    commit_versions(state_of(t), 2);
    c.corrupt(state_of(t));
    PolicyStore s;
    std::string err;
    EXPECT_FALSE(s.open(state_of(t), &err));
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_NE(err.find(state_of(t) + "/" + c.file), std::string::npos) << err;
    EXPECT_EQ(s.current_version(), 0u);
  }
}

TEST(PolicyStore, OpenFailsOnUnusableDirectory) {
  TempDir t;
  spit(t.path() + "/file", "x");
  struct Case {
    const char* description;
    std::string dir;
    const char* message;
  } cases[] = {
      {"empty path", "", "--state-dir"},
      {"a regular file", t.path() + "/file", "not a directory"},
      {"below a regular file", t.path() + "/file/state", "cannot create directory"},
      {"parent missing", t.path() + "/no/such/state", "cannot create directory"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    PolicyStore s;
    std::string err;
    EXPECT_FALSE(s.open(c.dir, &err));
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_NE(err.find(c.dir), std::string::npos) << err;
  }
}

// A commit that fails part-way (a directory where a file must go: fails even for root)
// returns 0 naming the file, and leaves the previous version current and whole.
TEST(PolicyStore, FailedCommitLeavesPreviousVersion) {
  struct Case {
    const char* description;
    const char* obstacle;  // made a directory
    uint64_t committed;
  } cases[] = {
      {"current.tmp blocked (after the version and blob are in place)", "current.tmp", 2},
      {"current.egwp.tmp blocked", "current.egwp.tmp", 2},
      {"current.tmp blocked on the first commit", "current.tmp", 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    TempDir t;
    commit_versions(state_of(t), c.committed);
    PolicyStore s;
    std::string err;
    ASSERT_TRUE(s.open(state_of(t), &err)) << err;
    fs::create_directories(state_of(t) + "/" + c.obstacle + "/x");
    EXPECT_EQ(s.commit(doc(9), blob(9), "a", "", &err), 0u);
    EXPECT_NE(err.find(state_of(t) + "/" + c.obstacle), std::string::npos) << err;
    EXPECT_EQ(s.current_version(), c.committed);
    EXPECT_EQ(s.history().size(), c.committed);
    EXPECT_FALSE(fs::exists(state_of(t) + "/versions/" + std::to_string(c.committed + 1)));
    if (c.committed == 0)
      EXPECT_FALSE(fs::exists(s.current_blob_path()));
    else
      EXPECT_EQ(test::file_text(s.current_blob_path()), blob(c.committed));
    fs::remove_all(state_of(t) + "/" + c.obstacle);
    // The same store commits once the obstacle is gone; a restart agrees.
    EXPECT_EQ(s.commit(doc(c.committed + 1), blob(c.committed + 1), "a", "", &err), c.committed + 1)
        << err;
    s.close();
    expect_whole(state_of(t), c.committed + 1);
  }
}

// Runs fn in a forked child with EGW_MGMT_FAULT=fault; returns its wait status.
int run_child(const char* fault, const std::function<void()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    if (fault != nullptr)
      setenv("EGW_MGMT_FAULT", fault, 1);
    else
      unsetenv("EGW_MGMT_FAULT");
    fn();
    _exit(0);
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

bool killed_by_sigkill(int status) {
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

TEST(FaultPoint, KillsOnlyWhenNamed) {
  struct Case {
    const char* description;
    const char* env;  // nullptr: unset
    const char* point;
    bool killed;
  } cases[] = {
      {"named point", "after_rename", "after_rename", true},
      {"each name: before_publish", "before_publish", "before_publish", true},
      {"another point", "after_rename", "before_write", false},
      {"unset", nullptr, "before_write", false},
      {"empty value", "", "before_write", false},
      {"prefix only", "after", "after_rename", false},
      {"case differs", "AFTER_RENAME", "after_rename", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    int status = run_child(c.env, [&] { fault_point(c.point); });
    if (c.killed) {
      EXPECT_TRUE(killed_by_sigkill(status)) << status;
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
  }
}

// A real SIGKILL at each crash point of commit(): the restarted store holds the old or the
// new version, whole.
TEST(PolicyStore, SigkillDuringCommitLeavesOldOrNew) {
  struct Case {
    const char* point;
    uint64_t committed;
    uint64_t want;
  } cases[] = {
      {"before_write", 2, 2},     {"after_temp_write", 2, 2}, {"after_rename", 2, 3},
      {"after_temp_write", 0, 0}, {"after_rename", 0, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.point) + " after " + std::to_string(c.committed) + " commits");
    TempDir t;
    commit_versions(state_of(t), c.committed);
    fs::create_directories(state_of(t));
    int status = run_child(c.point, [&] {
      PolicyStore s;
      std::string err;
      if (!s.open(state_of(t), &err)) _exit(2);
      s.commit(doc(c.committed + 1), blob(c.committed + 1), "alice", "", &err);
      _exit(3);
    });
    ASSERT_TRUE(killed_by_sigkill(status)) << status;
    expect_whole(state_of(t), c.want);
  }
}

TEST(AuditLog, LinesHaveTheContractFieldsAndNulls) {
  TempDir t;
  const std::string path = t.path() + "/audit.jsonl";
  AuditLog log;
  std::string err;
  ASSERT_TRUE(log.open(path, &err)) << err;
  EXPECT_EQ(mode_of(path), 0600u);

  struct Case {
    const char* description;
    AuditRecord r;
  } cases[] = {
      {"successful apply",
       {"2026-11-27T17:00:00.123456Z", "ops", "127.0.0.1:5555", "PUT", "/v1/policy", 200,
        std::string(64, 'a'), std::string(64, 'b'), 7}},
      {"no token, nothing committed",
       {"2026-11-27T17:00:01.000000Z", "", "[::1]:40000", "PUT", "/v1/policy", 401, "", "", 0}},
      {"body too large, first policy",
       {"2026-11-27T17:00:02.000000Z", "admin", "10.0.0.1:1", "PUT", "/v1/policy", 413, "", "", 0}},
      {"hostile strings",
       {"2026-11-27T17:00:03.000000Z", "we\"ird\\\n\x01", "1.2.3.4:5", "DELETE",
        "/v1/rulesets/\xff\xfe\xc3(x\xe2\x82", 404, std::string(64, 'c'), "", 3}},
      {"time filled in when empty",
       {"", "ops", "127.0.0.1:1", "POST", "/v1/policy/rollback", 200, std::string(64, 'd'),
        std::string(64, 'e'), 9}},
      {"egw-mgmt's own entry: a detail, last",
       {"2026-11-27T17:00:04.000000Z", "", "", "RECOMPILE", "/v1/policy", 200, std::string(64, 'f'),
        std::string(64, 'f'), 9, "version 9: recompiled \"x\""}},
  };
  for (const auto& c : cases) ASSERT_TRUE(log.append(c.r, &err)) << c.description << ": " << err;

  std::istringstream lines(test::file_text(path));
  std::string line;
  size_t i = 0;
  const std::set<std::string> keys = {"time",   "token",         "remote",       "method", "path",
                                      "status", "sha256_before", "sha256_after", "version"};
  Json::CharReaderBuilder b;
  Json::CharReaderBuilder::strictMode(&b.settings_);
  std::unique_ptr<Json::CharReader> reader(b.newCharReader());
  while (std::getline(lines, line)) {
    ASSERT_LT(i, std::size(cases));
    const auto& c = cases[i++];
    SCOPED_TRACE(c.description);
    Json::Value v;
    ASSERT_TRUE(reader->parse(line.data(), line.data() + line.size(), &v, &err)) << err << "\n"
                                                                                 << line;
    ASSERT_TRUE(v.isObject());
    std::set<std::string> got, want = keys;
    for (const auto& k : v.getMemberNames()) got.insert(k);
    if (!c.r.detail.empty()) {
      want.insert("detail");
      EXPECT_EQ(v["detail"].asString(), c.r.detail);
      EXPECT_EQ(line.substr(line.rfind(",\"detail\":")),
                ",\"detail\":\"version 9: recompiled \\\"x\\\"\"}");
    }
    EXPECT_EQ(got, want);
    auto str_or_null = [&](const char* k, const std::string& want) {
      if (want.empty())
        EXPECT_TRUE(v[k].isNull()) << k;
      else
        EXPECT_EQ(v[k].asString(), want) << k;
    };
    if (c.r.time.empty()) {
      std::string tm = v["time"].asString();
      EXPECT_EQ(tm.size(), 27u) << tm;
      EXPECT_EQ(tm.back(), 'Z');
    } else {
      EXPECT_EQ(v["time"].asString(), c.r.time);
    }
    if (std::string(c.description) == "hostile strings") {
      EXPECT_EQ(v["token"].asString(), "we\"ird\\\n\x01");
      EXPECT_EQ(v["path"].asString().substr(0, 13), "/v1/rulesets/");
    } else {
      str_or_null("token", c.r.token);
      EXPECT_EQ(v["path"].asString(), c.r.path);
    }
    EXPECT_EQ(v["remote"].asString(), c.r.remote);
    EXPECT_EQ(v["method"].asString(), c.r.method);
    EXPECT_EQ(v["status"].asInt(), c.r.status);
    str_or_null("sha256_before", c.r.sha256_before);
    str_or_null("sha256_after", c.r.sha256_after);
    if (c.r.version == 0)
      EXPECT_TRUE(v["version"].isNull());
    else
      EXPECT_EQ(v["version"].asUInt64(), c.r.version);
  }
  EXPECT_EQ(i, std::size(cases));

  // A second open appends; the file keeps its lines.
  AuditLog again;
  ASSERT_TRUE(again.open(path, &err)) << err;
  ASSERT_TRUE(again.append(cases[0].r, &err)) << err;
  std::string all = test::file_text(path);
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), static_cast<long>(std::size(cases) + 1));
}

TEST(AuditLog, FailuresAreReported) {
  TempDir t;
  std::string err;
  AuditLog closed;
  EXPECT_FALSE(closed.append(AuditRecord{}, &err));
  EXPECT_NE(err.find("not open"), std::string::npos) << err;

  AuditLog bad;
  std::string path = t.path() + "/missing/audit.jsonl";
  EXPECT_FALSE(bad.open(path, &err));
  EXPECT_NE(err.find(path), std::string::npos) << err;

  // A full disk, simulated with RLIMIT_FSIZE in a child: append fails with a message,
  // never silently.
  std::string full = t.path() + "/full.jsonl";
  int status = run_child(nullptr, [&] {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {300, 300};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(4);
    AuditLog log;
    std::string e;
    if (!log.open(full, &e)) _exit(5);
    AuditRecord r{
        "2026-11-27T17:00:00.000000Z", "ops", "127.0.0.1:1", "PUT", "/v1/policy", 200, "", "", 1};
    for (int i = 0; i < 10; ++i) {
      if (!log.append(r, &e)) _exit(e.find("audit log") != std::string::npos ? 0 : 6);
    }
    _exit(7);
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Whatever reached the file is whole lines only, or a prefix cut by the limit.
  EXPECT_LE(test::file_text(full).size(), 300u);
}

}  // namespace
}  // namespace egw::mgmt

namespace egw::mgmt {
namespace {

// Two egw-mgmt on one state dir would interleave commits: the second is refused.
TEST(PolicyStore, OneWriterPerStateDir) {
  TempDir t;
  PolicyStore first, second;
  std::string err;
  ASSERT_TRUE(first.open(state_of(t), &err)) << err;
  EXPECT_FALSE(second.open(state_of(t), &err));
  EXPECT_NE(err.find("in use by another egw-mgmt"), std::string::npos) << err;
  first.close();
  EXPECT_TRUE(second.open(state_of(t), &err)) << err;
}

}  // namespace
}  // namespace egw::mgmt
