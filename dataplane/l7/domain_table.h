// Literal-domain matcher for `to.domains`: DomainTableBuilder (management side, may
// allocate) compiles exact names, "*.suffix" wildcards and "*" into one flat byte string;
// DomainTable (worker lcores: no allocation, no locks) looks a name up in O(labels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/l7/l7.h"

namespace egw::l7 {

// Serialized layout (all integers little-endian u32 unless said otherwise):
//   header (kDomainHeaderLen bytes): magic, version, header_len, body_len, checksum
//     (FNV-1a 32 of the body), key_count, exact_count, exact_slots, exact_max_probe,
//     wild_slots, wild_max_probe, value_count, names_len, star_off, star_count,
//     wild_label_mask (bit min(labels,32)-1 set when a wildcard suffix has that many
//     labels: match() skips suffix lookups no wildcard can answer)
//   body: keys[key_count] {name_off, name_len, val_off, val_count} (exact keys first,
//         sorted by name, then wildcard suffixes, sorted), exact slots[exact_slots] and
//         wild slots[wild_slots] {tag, key_index + 1 (0: empty)}, values[value_count],
//         name bytes[names_len].
// Slots are open addressing with linear probing over a power-of-two table; a key sits
// at most max_probe - 1 slots after its home slot, so a lookup probes at most max_probe.
constexpr uint32_t kDomainMagic = 0x54444745;  // "EGDT"
constexpr uint32_t kDomainVersion = 1;
constexpr size_t kDomainHeaderLen = 64;
constexpr size_t kDomainMaxKeys = 1u << 22;  // per table; build() and open() enforce it

class DomainTableBuilder {
 public:
  // Adds a pattern: an exact name ("api.stripe.com"), a wildcard "*.stripe.network" (any
  // subdomain at any depth, never the apex) or "*" (any valid name), with a value (a rule
  // index). Case-insensitive, one trailing dot allowed. Returns false with *err set for
  // anything else ('*' elsewhere, "*.", "**.x", empty, invalid characters, too long).
  bool add(std::string_view pattern, uint32_t value, std::string* err);
  // The self-contained table (see the layout above); the same adds in any order give
  // the same bytes.
  std::string build() const;
  // Number of distinct patterns added (an exact name, a wildcard suffix, "*").
  size_t size() const;

 private:
  std::map<std::string, std::vector<uint32_t>> exact_;
  std::map<std::string, std::vector<uint32_t>> wild_;  // key: the suffix after "*."
  std::vector<uint32_t> star_;
};

class DomainTable {
 public:
  // Validates a table produced by build() (header, checksum, every offset, length, slot
  // and probe bound) and keeps a pointer to it: the bytes must outlive this object.
  // Returns false with *err set (management / control thread only: may allocate err).
  bool open(const uint8_t* data, size_t len, std::string* err);
  // Writes into out[] the values of every pattern matching the normalised `name`: the
  // exact entry for the whole name, each wildcard whose suffix is a proper suffix of
  // the name at a label boundary, and "*"; merged, ascending, without duplicates.
  // Returns the count written. When more than `max` values match, the `max` SMALLEST
  // are written (the lowest rule indexes, i.e. the first rules in policy order).
  // Worker lcores: no allocation; returns 0 before a successful open() or for an
  // empty/invalid Name.
  size_t match(const Name& name, uint32_t* out, size_t max) const;

 private:
  struct Probe {
    uint32_t slots = 0;      // a power of two, or 0 for an empty table
    uint32_t max_probe = 0;  // <= slots
    const uint8_t* base = nullptr;
  };
  // Values of the key equal to name[0, len) with hash h in table t; false if absent.
  bool find(const Probe& t, uint64_t h, const char* s, size_t len, const uint8_t** vals,
            uint32_t* count) const;

  const uint8_t* keys_ = nullptr;
  const uint8_t* values_ = nullptr;
  const uint8_t* names_ = nullptr;
  Probe exact_;
  Probe wild_;
  uint32_t star_off_ = 0;
  uint32_t star_count_ = 0;
  uint32_t wild_label_mask_ = 0;
  bool open_ = false;
};

}  // namespace egw::l7
