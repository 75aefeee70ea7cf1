// Bearer tokens of egw-mgmt: the tokens file (or the generated admin token) and the
// constant-time check of a request's token. Loaded at start-up; read-only afterwards,
// so request threads share it without locks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace egw::mgmt {

enum class Role { reader, admin };

struct Identity {
  std::string name;  // the token's name, for the audit log and history authors
  Role role = Role::reader;
};

class TokenTable {
 public:
  // Reads a tokens file: one `TOKEN ROLE NAME` per line, # comments and blank lines
  // allowed. On error returns false with a message naming the file and line.
  bool load_file(const std::string& path, std::string* err);
  // Uses DIR/admin.token, creating it (32 random bytes, hex, mode 0600) if absent.
  bool load_or_create_admin(const std::string& dir, std::string* err);

  // Checks an Authorization header value ("Bearer TOKEN"), in constant time over the
  // SHA-256 digests of every known token.
  std::optional<Identity> authenticate(const std::string& authorization) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::array<uint8_t, 32> digest;
    Identity who;
  };
  bool add(const std::string& token, Role role, const std::string& name);
  std::vector<Entry> entries_;
};

}  // namespace egw::mgmt
