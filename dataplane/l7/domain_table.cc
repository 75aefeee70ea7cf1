// Literal-domain matcher: DomainTableBuilder::build (management side) and
// DomainTable::open (control thread) / match (worker lcores: no allocation, no locks).
#include "dataplane/l7/domain_table.h"

#include <algorithm>
#include <cstring>

namespace egw::l7 {
namespace {

constexpr uint64_t kFnvOffset64 = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime64 = 0x100000001b3ull;
constexpr uint32_t kKeyLen = 16;       // name_off, name_len, val_off, val_count
constexpr uint32_t kSlotLen = 8;       // tag, key_index + 1
constexpr uint32_t kTargetProbe = 16;  // build() grows a table until probes fit this
constexpr uint32_t kMaxSlots = 1u << 26;
constexpr size_t kMaxLists = kMaxName / 2 + 3;  // wildcard suffixes + exact + "*"

// Header field offsets.
enum HeaderField : size_t {
  kMagic = 0,
  kVersion = 4,
  kHeaderLen = 8,
  kBodyLen = 12,
  kChecksum = 16,
  kKeyCount = 20,
  kExactCount = 24,
  kExactSlots = 28,
  kExactMaxProbe = 32,
  kWildSlots = 36,
  kWildMaxProbe = 40,
  kValueCount = 44,
  kNamesLen = 48,
  kStarOff = 52,
  kStarCount = 56,
  kWildLabelMask = 60,
};
static_assert(kWildLabelMask + 4 == kDomainHeaderLen);

inline uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void put32(std::string* s, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[off + i] = static_cast<char>(v >> (8 * i));
}

void append32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}

uint32_t fnv1a32(const uint8_t* p, size_t len) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < len; ++i) h = (h ^ p[i]) * 0x01000193u;
  return h;
}

// One step of the name hash: FNV-1a 64 over the bytes from the LAST to the first, so
// one right-to-left pass over a name yields the hash of every suffix.
inline uint64_t hash_step(uint64_t h, uint8_t c) {
  return (h ^ c) * kFnvPrime64;
}

// Final mix (MurmurHash3 fmix64): low bits pick the home slot, high bits are the tag.
inline uint64_t hash_mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint64_t hash_name(const uint8_t* s, size_t len) {
  uint64_t h = kFnvOffset64;
  for (size_t i = len; i-- > 0;) h = hash_step(h, s[i]);
  return hash_mix(h);
}

inline uint32_t tag_of(uint64_t h) {
  return static_cast<uint32_t>(h >> 32);
}

// Bit of a wildcard suffix's label count in the header's label mask (32+ share bit 31).
inline uint32_t label_bit(size_t labels) {
  return 1u << (labels > 32 ? 31 : labels - 1);
}

uint32_t label_count(const uint8_t* s, size_t len) {
  uint32_t labels = 1;
  for (size_t i = 0; i < len; ++i) labels += s[i] == '.';
  return labels;
}

// Sorted, deduplicated copy.
std::vector<uint32_t> sorted_unique(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// An open-addressing table over keys [first, first + hashes.size()): slot i holds
// {tag, key index + 1}. Grows until every key sits within kTargetProbe of its home.
struct SlotTable {
  uint32_t slots = 0;
  uint32_t max_probe = 0;
  std::vector<uint32_t> words;  // 2 per slot
};

SlotTable build_slots(const std::vector<uint64_t>& hashes, uint32_t first) {
  SlotTable t;
  if (hashes.empty()) return t;
  uint32_t slots = 8;
  while (slots < 2 * hashes.size()) slots *= 2;
  for (;;) {
    t.slots = slots;
    t.max_probe = 0;
    t.words.assign(2 * size_t{slots}, 0);
    const uint32_t mask = slots - 1;
    for (uint32_t k = 0; k < hashes.size(); ++k) {
      uint32_t i = static_cast<uint32_t>(hashes[k]) & mask;
      uint32_t dist = 0;
      while (t.words[2 * i + 1] != 0) i = (i + 1) & mask, ++dist;
      t.words[2 * i] = tag_of(hashes[k]);
      t.words[2 * i + 1] = first + k + 1;
      t.max_probe = std::max(t.max_probe, dist + 1);
    }
    // Load stays <= 1/2; a few doublings bring the longest run under the target.
    if (t.max_probe <= kTargetProbe || slots >= kMaxSlots || slots >= 16 * hashes.size()) return t;
    slots *= 2;
  }
}

}  // namespace

// ---- builder (management side) --------------------------------------------------

bool DomainTableBuilder::add(std::string_view pattern, uint32_t value, std::string* err) {
  auto fail = [&](const char* why) {
    if (err) *err = "domain \"" + std::string(pattern) + "\": " + why;
    return false;
  };
  if (pattern.empty()) return fail("empty name");
  if (size() >= kDomainMaxKeys) return fail("too many distinct domains in one table");
  if (pattern == "*") {
    star_.push_back(value);
    return true;
  }
  bool wildcard = false;
  std::string_view rest = pattern;
  if (pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.') {
    wildcard = true;
    rest = pattern.substr(2);
    if (rest.empty() || rest == ".") return fail("a wildcard needs a suffix after \"*.\"");
  }
  if (rest.find('*') != std::string_view::npos)
    return fail(
        "'*' is only allowed alone (\"*\") or as the whole first label (\"*.example.com\")");
  Name n;
  if (!normalize_name(reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), &n))
    return fail(
        "not a valid DNS name (labels of 1..63 of [A-Za-z0-9-_], total <= 253, "
        "at most one trailing dot)");
  if (wildcard && n.len > kMaxName - 2)
    return fail("wildcard suffix too long: no name of <= 253 bytes can be under it");
  (wildcard ? wild_ : exact_)[std::string(n.buf, n.len)].push_back(value);
  return true;
}

size_t DomainTableBuilder::size() const {
  return exact_.size() + wild_.size() + (star_.empty() ? 0 : 1);
}

std::string DomainTableBuilder::build() const {
  // Keys: exact names (sorted), then wildcard suffixes (sorted): std::map order, so the
  // same adds in any order give the same bytes.
  std::vector<const std::string*> key_names;
  std::vector<std::vector<uint32_t>> key_values;
  for (const auto* m : {&exact_, &wild_})
    for (const auto& [name, values] : *m) {
      key_names.push_back(&name);
      key_values.push_back(sorted_unique(values));
    }
  const uint32_t key_count = static_cast<uint32_t>(key_names.size());
  const uint32_t exact_count = static_cast<uint32_t>(exact_.size());

  // Name bytes, each distinct string once (an exact name and a wildcard suffix share).
  std::string names;
  std::map<std::string_view, uint32_t> name_off;
  std::vector<uint32_t> key_name_off;
  for (const std::string* n : key_names) {
    auto [it, inserted] = name_off.emplace(*n, static_cast<uint32_t>(names.size()));
    if (inserted) names += *n;
    key_name_off.push_back(it->second);
  }

  std::vector<uint64_t> exact_hashes, wild_hashes;
  for (uint32_t k = 0; k < key_count; ++k) {
    uint64_t h =
        hash_name(reinterpret_cast<const uint8_t*>(key_names[k]->data()), key_names[k]->size());
    (k < exact_count ? exact_hashes : wild_hashes).push_back(h);
  }
  uint32_t wild_label_mask = 0;
  for (const auto& [suffix, values] : wild_)
    wild_label_mask |=
        label_bit(label_count(reinterpret_cast<const uint8_t*>(suffix.data()), suffix.size()));
  const SlotTable exact = build_slots(exact_hashes, 0);
  const SlotTable wild = build_slots(wild_hashes, exact_count);

  std::string body;
  std::vector<uint32_t> values;
  for (uint32_t k = 0; k < key_count; ++k) {
    append32(&body, key_name_off[k]);
    append32(&body, static_cast<uint32_t>(key_names[k]->size()));
    append32(&body, static_cast<uint32_t>(values.size()));
    append32(&body, static_cast<uint32_t>(key_values[k].size()));
    values.insert(values.end(), key_values[k].begin(), key_values[k].end());
  }
  const std::vector<uint32_t> star = sorted_unique(star_);
  const uint32_t star_off = static_cast<uint32_t>(values.size());
  values.insert(values.end(), star.begin(), star.end());
  for (uint32_t w : exact.words) append32(&body, w);
  for (uint32_t w : wild.words) append32(&body, w);
  for (uint32_t v : values) append32(&body, v);
  body += names;

  std::string out(kDomainHeaderLen, '\0');
  put32(&out, kMagic, kDomainMagic);
  put32(&out, kVersion, kDomainVersion);
  put32(&out, kHeaderLen, kDomainHeaderLen);
  put32(&out, kBodyLen, static_cast<uint32_t>(body.size()));
  put32(&out, kChecksum, fnv1a32(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
  put32(&out, kKeyCount, key_count);
  put32(&out, kExactCount, exact_count);
  put32(&out, kExactSlots, exact.slots);
  put32(&out, kExactMaxProbe, exact.max_probe);
  put32(&out, kWildSlots, wild.slots);
  put32(&out, kWildMaxProbe, wild.max_probe);
  put32(&out, kValueCount, static_cast<uint32_t>(values.size()));
  put32(&out, kNamesLen, static_cast<uint32_t>(names.size()));
  put32(&out, kStarOff, star_off);
  put32(&out, kStarCount, static_cast<uint32_t>(star.size()));
  put32(&out, kWildLabelMask, wild_label_mask);
  out += body;
  return out;
}

// ---- table (control thread: open; worker lcores: match) -------------------------

bool DomainTable::open(const uint8_t* data, size_t len, std::string* err) {
  open_ = false;
  auto fail = [&](const std::string& why) {
    if (err) *err = "domain table: " + why;
    return false;
  };
  if (data == nullptr || len < kDomainHeaderLen) return fail("shorter than its header");
  auto field = [&](size_t off) { return get32(data + off); };
  if (field(kMagic) != kDomainMagic) return fail("bad magic");
  if (field(kVersion) != kDomainVersion) return fail("unsupported version");
  if (field(kHeaderLen) != kDomainHeaderLen) return fail("bad header length");
  const uint64_t body_len = field(kBodyLen);
  if (body_len != len - kDomainHeaderLen) return fail("body length does not match the size");
  const uint8_t* body = data + kDomainHeaderLen;
  if (fnv1a32(body, body_len) != field(kChecksum)) return fail("checksum mismatch");

  const uint32_t key_count = field(kKeyCount), exact_count = field(kExactCount);
  const uint32_t value_count = field(kValueCount), names_len = field(kNamesLen);
  const uint32_t star_off = field(kStarOff), star_count = field(kStarCount);
  Probe tables[2] = {{field(kExactSlots), field(kExactMaxProbe), nullptr},
                     {field(kWildSlots), field(kWildMaxProbe), nullptr}};
  if (key_count > kDomainMaxKeys || exact_count > key_count) return fail("bad key counts");
  const uint32_t kind_count[2] = {exact_count, key_count - exact_count};
  for (int t = 0; t < 2; ++t) {
    const Probe& p = tables[t];
    if (p.slots > kMaxSlots || (p.slots & (p.slots - 1)) != 0 || p.max_probe > p.slots ||
        (kind_count[t] != 0 && (p.max_probe == 0 || p.slots < kind_count[t])))
      return fail("bad slot table geometry");
  }
  // Sections in order; 64-bit sums cannot overflow with 32-bit counts.
  uint64_t off = 0;
  const uint64_t keys_off = off;
  off += uint64_t{key_count} * kKeyLen;
  const uint64_t exact_off = off;
  off += uint64_t{tables[0].slots} * kSlotLen;
  const uint64_t wild_off = off;
  off += uint64_t{tables[1].slots} * kSlotLen;
  const uint64_t values_off = off;
  off += uint64_t{value_count} * 4;
  const uint64_t names_off = off;
  off += names_len;
  if (off != body_len) return fail("section sizes do not add up to the body length");
  const uint8_t* keys = body + keys_off;
  const uint8_t* values = body + values_off;
  const uint8_t* names = body + names_off;
  tables[0].base = body + exact_off;
  tables[1].base = body + wild_off;

  // A value list: in range and strictly ascending (match() merges sorted lists).
  auto values_ok = [&](uint32_t voff, uint32_t count) {
    if (uint64_t{voff} + count > value_count) return false;
    for (uint32_t i = 1; i < count; ++i)
      if (get32(values + 4 * (uint64_t{voff} + i - 1)) >= get32(values + 4 * (uint64_t{voff} + i)))
        return false;
    return true;
  };
  std::vector<uint64_t> hashes(key_count);
  uint32_t wild_label_mask = 0;
  for (uint32_t k = 0; k < key_count; ++k) {
    const uint8_t* key = keys + uint64_t{k} * kKeyLen;
    const uint32_t noff = get32(key), nlen = get32(key + 4);
    if (nlen == 0 || nlen > kMaxName || uint64_t{noff} + nlen > names_len)
      return fail("key " + std::to_string(k) + ": name out of range");
    if (get32(key + 12) == 0 || !values_ok(get32(key + 8), get32(key + 12)))
      return fail("key " + std::to_string(k) + ": bad value list");
    hashes[k] = hash_name(names + noff, nlen);
    if (k >= exact_count) wild_label_mask |= label_bit(label_count(names + noff, nlen));
  }
  if (wild_label_mask != field(kWildLabelMask)) return fail("wildcard label mask mismatch");
  if (!values_ok(star_off, star_count)) return fail("bad \"*\" value list");

  // Every slot names a key of its kind with the right tag, within max_probe of its home;
  // every key is in exactly one slot.
  std::vector<uint8_t> seen(key_count, 0);
  for (int t = 0; t < 2; ++t) {
    const Probe& p = tables[t];
    const uint32_t lo = t == 0 ? 0 : exact_count, hi = t == 0 ? exact_count : key_count;
    for (uint32_t i = 0; i < p.slots; ++i) {
      const uint8_t* slot = p.base + uint64_t{i} * kSlotLen;
      const uint32_t ref = get32(slot + 4);
      if (ref == 0) continue;
      const uint32_t k = ref - 1;
      if (k < lo || k >= hi || seen[k]) return fail("slot " + std::to_string(i) + ": bad key");
      seen[k] = 1;
      const uint32_t home = static_cast<uint32_t>(hashes[k]) & (p.slots - 1);
      if (get32(slot) != tag_of(hashes[k]) || ((i - home) & (p.slots - 1)) >= p.max_probe)
        return fail("slot " + std::to_string(i) + ": key not where its hash puts it");
    }
  }
  if (std::count(seen.begin(), seen.end(), 1) != static_cast<ptrdiff_t>(key_count))
    return fail("a key is in no slot");

  keys_ = keys;
  values_ = values;
  names_ = names;
  exact_ = tables[0];
  wild_ = tables[1];
  star_off_ = star_off;
  star_count_ = star_count;
  wild_label_mask_ = wild_label_mask;
  open_ = true;
  return true;
}

bool DomainTable::find(const Probe& t, uint64_t h, const char* s, size_t len, const uint8_t** vals,
                       uint32_t* count) const {
  if (t.slots == 0) return false;
  const uint32_t mask = t.slots - 1;
  const uint32_t tag = tag_of(h);
  uint32_t i = static_cast<uint32_t>(h) & mask;
  for (uint32_t n = 0; n < t.max_probe; ++n, i = (i + 1) & mask) {
    const uint8_t* slot = t.base + size_t{i} * kSlotLen;
    const uint32_t ref = get32(slot + 4);
    if (ref == 0) return false;
    if (get32(slot) != tag) continue;
    const uint8_t* key = keys_ + size_t{ref - 1} * kKeyLen;
    if (get32(key + 4) != len || std::memcmp(names_ + get32(key), s, len) != 0) continue;
    *vals = values_ + size_t{get32(key + 8)} * 4;
    *count = get32(key + 12);
    return true;
  }
  return false;
}

size_t DomainTable::match(const Name& name, uint32_t* out, size_t max) const {
  if (!open_ || max == 0 || name.len == 0 || name.len > kMaxName) return 0;
  // Pass 1, right to left: the running hash is the hash of the suffix starting at i.
  // Collect the lookups (the whole name, then each proper suffix at a label boundary
  // whose label count some wildcard has) and prefetch their home slots.
  struct Lookup {
    uint64_t h;
    uint8_t off;
  };
  Lookup lookups[kMaxLists];
  size_t nl = 0;
  uint64_t h = kFnvOffset64;
  size_t labels = 1;
  for (size_t i = name.len; i-- > 0;) {
    h = hash_step(h, static_cast<uint8_t>(name.buf[i]));
    if (i == 0) {
      if (exact_.slots == 0) break;
      lookups[nl] = {hash_mix(h), 0};
      __builtin_prefetch(exact_.base +
                         size_t{static_cast<uint32_t>(lookups[nl].h) & (exact_.slots - 1)} *
                             kSlotLen);
      ++nl;
    } else if (name.buf[i - 1] == '.') {
      if ((wild_label_mask_ & label_bit(labels)) != 0 && nl < kMaxLists - 2) {
        lookups[nl] = {hash_mix(h), static_cast<uint8_t>(i)};
        __builtin_prefetch(wild_.base +
                           size_t{static_cast<uint32_t>(lookups[nl].h) & (wild_.slots - 1)} *
                               kSlotLen);
        ++nl;
      }
      ++labels;
    }
  }
  // Pass 2: probe; each hit contributes one ascending value list.
  struct List {
    const uint8_t* p;
    uint32_t left;
  };
  List lists[kMaxLists];
  size_t n = 0;
  const uint8_t* vals = nullptr;
  uint32_t count = 0;
  for (size_t l = 0; l < nl; ++l) {
    const size_t off = lookups[l].off;
    if (find(off == 0 ? exact_ : wild_, lookups[l].h, name.buf + off, name.len - off, &vals,
             &count))
      lists[n++] = {vals, count};
  }
  if (star_count_ != 0) lists[n++] = {values_ + size_t{star_off_} * 4, star_count_};

  // k-way merge of ascending lists, dropping duplicates, smallest first.
  size_t written = 0;
  while (written < max) {
    bool any = false;
    uint32_t min = 0;
    for (size_t l = 0; l < n; ++l) {
      if (lists[l].left == 0) continue;
      const uint32_t v = get32(lists[l].p);
      if (!any || v < min) min = v, any = true;
    }
    if (!any) break;
    out[written++] = min;
    for (size_t l = 0; l < n; ++l)
      if (lists[l].left != 0 && get32(lists[l].p) == min) lists[l].p += 4, --lists[l].left;
  }
  return written;
}

}  // namespace egw::l7
