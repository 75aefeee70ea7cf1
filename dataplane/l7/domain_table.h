// Literal-domain matcher for `to.domains`: DomainTableBuilder (management side, may
// allocate) compiles exact names, "*.suffix" wildcards and "*" into one flat byte string;
// DomainTable (worker lcores: no allocation, no locks) looks a name up in O(labels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/l7/l7.h"

namespace egw::l7 {

// The table is a label trie kept in one hash table: a node is a suffix of a pattern at a
// label boundary ("com", "stripe.com", "api.stripe.com") and holds its first label and
// the slot of its parent (the suffix one label shorter). A node is found by the hash of
// its whole suffix, so match() hashes every suffix of the name and prefetches all their
// buckets first; then, right to left, a level is the node with the name's label and the
// previous level's slot as parent, which proves the whole suffix equal. A look-up waits
// for one round of parallel cache misses, not for a chain of them.
//
// Serialized layout (all integers little-endian u32 unless said otherwise):
//   header (kDomainHeaderLen bytes): magic, version, header_len, body_len, checksum
//     (FNV-1a 32 of the body), 0, node_count, 0, buckets, 0, list_words, value_count,
//     labels_len, star_list (list offset + 1; 0: no "*"), 0, 0.
//     The zeros at 20, 28 and 36 leave the value set where version 1 had its values
//     (header + 16 * [20] + 8 * ([28] + [36])), which is where dataplane/policy.cc's
//     check_domain_values reads them.
//   body: values[value_count] (every value in the table, ascending, once), zeros up to
//         a multiple of 64 bytes from the table start, buckets[buckets] (64 bytes: two
//         32-byte slots), lists[list_words], label bytes[labels_len].
//   slot: parent (slot index + 1; 0: a top-level label), exact word, wildcard word,
//         u8 label_len (0: an empty slot, all 32 bytes zero), u8 kinds (bits 0-1 exact,
//         2-3 wildcard: 0 none, 1 the word is the one value, 2 the word is a list
//         offset), u8 0, u8 tag (the hash's low byte), then the label zero-padded to 16
//         bytes or, when longer, its u32 offset in the label bytes and 12 zeros.
//   list: count (>= 1), then count values, ascending.
// Bucketized cuckoo hashing: a node sits in one of two buckets, picked by the two halves
// of its 64-bit hash scaled to the bucket count, so a look-up reads two cache lines.
constexpr uint32_t kDomainMagic = 0x54444745;  // "EGDT"
constexpr uint32_t kDomainVersion = 2;         // 2: label trie in a cuckoo table
constexpr size_t kDomainHeaderLen = 64;
constexpr size_t kDomainMaxKeys = 1u << 22;   // patterns per table; add() enforces it
constexpr size_t kDomainMaxNodes = 1u << 24;  // labels of all patterns; add() too

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
  size_t label_sum_ = 0;  // labels of the distinct patterns: bounds the node count
};

class DomainTable {
 public:
  // Copies a table produced by build() and validates the copy (header, checksum, every
  // offset, length, list and label, each node's parent chain and buckets), so later
  // writes to `data` (shared memory) cannot reach match(). Returns false with *err set
  // (management / control thread only: allocates).
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
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  bool validate(const uint8_t* data, size_t len, std::string* err);

  std::unique_ptr<uint8_t, Free> mem_;  // the copy: 64-byte aligned, so is each slot
  const uint8_t* slots_ = nullptr;
  const uint8_t* lists_ = nullptr;
  const uint8_t* labels_ = nullptr;
  uint32_t buckets_ = 0;
  uint32_t star_list_ = 0;
  bool open_ = false;
};

}  // namespace egw::l7
