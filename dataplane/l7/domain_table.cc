// Literal-domain matcher: DomainTableBuilder::build (management side) and
// DomainTable::open (control thread) / match (worker lcores: no allocation, no locks).
#include "dataplane/l7/domain_table.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <unordered_map>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace egw::l7 {
namespace {

constexpr uint32_t kSlotLen = 32;
constexpr uint32_t kBucketLen = 2 * kSlotLen;  // one cache line
constexpr uint32_t kInlineLabel = 16;          // longer labels live in the label bytes
constexpr uint32_t kMaxLabel = 63;
constexpr uint32_t kMaxBuckets = 1u << 25;
constexpr uint32_t kMaxKicks = 500;  // cuckoo moves per insertion before build() grows
constexpr uint32_t kNoKey = UINT32_MAX;
constexpr size_t kMaxLevels = (kMaxName + 1) / 2;  // labels of a name: 127
constexpr size_t kMaxLists = kMaxLevels + 1;       // one per level, and "*"
constexpr size_t kSectionAlign = 64;               // slots start on a cache line

// Slot field offsets.
enum SlotField : size_t {
  kParent = 0,
  kExactWord = 4,
  kWildWord = 8,
  kLabelLen = 12,
  kKinds = 13,
  kZero14 = 14,
  kTag = 15,
  kLabel = 16,
};
// Value kinds (2 bits each in the kinds byte: exact at bit 0, wildcard at bit 2).
enum Kind : uint8_t { kNone = 0, kOne = 1, kList = 2 };
constexpr unsigned kExactShift = 0, kWildShift = 2;

// Header field offsets.
enum HeaderField : size_t {
  kMagic = 0,
  kVersion = 4,
  kHeaderLen = 8,
  kBodyLen = 12,
  kChecksum = 16,
  kZero20 = 20,
  kNodeCount = 24,
  kZero28 = 28,
  kBuckets = 32,
  kZero36 = 36,
  kListWords = 40,
  kValueCount = 44,
  kLabelsLen = 48,
  kStarList = 52,
  kZero56 = 56,
  kZero60 = 60,
};
static_assert(kZero60 + 4 == kDomainHeaderLen);

inline uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

inline uint64_t get64(const uint8_t* p) {
  return uint64_t{get32(p)} | uint64_t{get32(p + 4)} << 32;
}

void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

void put32(std::string* s, size_t off, uint32_t v) {
  put32(reinterpret_cast<uint8_t*>(s->data()) + off, v);
}

uint32_t fnv1a32(const uint8_t* p, size_t len) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < len; ++i) h = (h ^ p[i]) * 0x01000193u;
  return h;
}

constexpr size_t align_up(size_t n, size_t a) {
  return (n + a - 1) / a * a;
}

// ---- hashing: one multiply per label of up to 16 bytes ---------------------------

constexpr uint64_t kRootHash = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kK0 = 0xa0761d6478bd642full, kK1 = 0xe7037ed1a0b428dbull,
                   kK2 = 0x8ebc6af09c88c6e3ull;

// 64x64 -> 128-bit multiply folded to 64 bits (wyhash's mum).
inline uint64_t mum(uint64_t a, uint64_t b) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// The low n bytes of a little-endian word (n >= 1; 8 or more: all of it).
inline uint64_t low_bytes(uint64_t w, size_t n) {
  return w & (~uint64_t{0} >> (8 * (8 - std::min<size_t>(n, 8))));
}

// Hash of the suffix "label.parent" from its parent's (kRootHash for a top-level
// label): one multiply per 16 bytes of the label. a, b: a 16-byte block as little-endian
// words, zero past the label's end; h starts as the parent's hash ^ kK0 ^ length.
inline uint64_t suffix_step(uint64_t h, uint64_t a, uint64_t b) {
  return mum(a ^ h ^ kK1, b ^ kK2);
}

// p must be readable for len rounded up to 16 bytes.
inline uint64_t suffix_hash(uint64_t parent_h, const uint8_t* p, size_t len) {
  uint64_t h = parent_h ^ kK0 ^ len;
  for (size_t i = 0; i < len; i += 16) {
    const size_t n = len - i;
    h = suffix_step(h, low_bytes(get64(p + i), n), n > 8 ? low_bytes(get64(p + i + 8), n - 8) : 0);
  }
  return h;
}

// suffix_hash of a label that may not be followed by 15 readable bytes.
uint64_t suffix_hash_copy(uint64_t parent_h, const uint8_t* p, size_t len) {
  uint8_t buf[align_up(kMaxLabel, 16)] = {};
  std::memcpy(buf, p, len);
  return suffix_hash(parent_h, buf, len);
}

// A node's two buckets: each half of the hash scaled to the bucket count (any count).
// The tag is the low byte, which the scaling barely uses.
inline uint32_t bucket1(uint64_t h, uint32_t buckets) {
  return static_cast<uint32_t>((uint64_t{static_cast<uint32_t>(h)} * buckets) >> 32);
}

inline uint32_t bucket2(uint64_t h, uint32_t buckets) {
  return static_cast<uint32_t>(((h >> 32) * buckets) >> 32);
}

inline uint8_t tag_of(uint64_t h) {
  return static_cast<uint8_t>(h);
}

bool label_char(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Sorted, deduplicated copy.
std::vector<uint32_t> sorted_unique(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

uint32_t label_count(std::string_view s) {
  return 1 + static_cast<uint32_t>(std::count(s.begin(), s.end(), '.'));
}

// Cuckoo placement of hashes (in this order) in buckets of two slots: pos[k] is key k's
// slot. False when a key found no slot within kMaxKicks moves.
bool place(const std::vector<uint64_t>& hashes, uint32_t buckets, std::vector<uint32_t>* pos) {
  std::vector<uint32_t> owner(2 * size_t{buckets}, kNoKey);
  uint32_t rng = 1;  // fixed seed: the same keys always land in the same slots
  for (uint32_t k = 0; k < hashes.size(); ++k) {
    for (uint32_t key = k, kicks = 0;; ++kicks) {
      const uint32_t b[2] = {bucket1(hashes[key], buckets), bucket2(hashes[key], buckets)};
      uint32_t free = kNoKey;
      for (uint32_t i : {2 * b[0], 2 * b[0] + 1, 2 * b[1], 2 * b[1] + 1})
        if (free == kNoKey && owner[i] == kNoKey) free = i;
      if (free != kNoKey) {
        owner[free] = key;
        break;
      }
      if (kicks == kMaxKicks) return false;
      // Evict a pseudo-random slot of its buckets; the evicted key moves on.
      rng = rng * 1103515245u + 12345u;
      std::swap(key, owner[2 * b[(rng >> 16) & 1] + ((rng >> 17) & 1)]);
    }
  }
  pos->assign(hashes.size(), 0);
  for (uint32_t i = 0; i < owner.size(); ++i)
    if (owner[i] != kNoKey) (*pos)[owner[i]] = i;
  return true;
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
  auto [it, inserted] = (wildcard ? wild_ : exact_).try_emplace(std::string(n.buf, n.len));
  if (inserted) {
    const size_t labels = label_count(it->first);
    if (label_sum_ + labels > kDomainMaxNodes) {
      (wildcard ? wild_ : exact_).erase(it);
      return fail("too many domain labels in one table");
    }
    label_sum_ += labels;
  }
  it->second.push_back(value);
  return true;
}

size_t DomainTableBuilder::size() const {
  return exact_.size() + wild_.size() + (star_.empty() ? 0 : 1);
}

std::string DomainTableBuilder::build() const {
  // Nodes: every suffix of every pattern at a label boundary, each after its parent (the
  // suffix one label shorter), in the order of the sorted patterns: the same adds always
  // give the same nodes in the same order, so the same bytes.
  struct Node {
    std::string_view label;
    uint32_t parent = 0;  // node index + 1; 0: a top-level label
    const std::vector<uint32_t>* exact = nullptr;
    const std::vector<uint32_t>* wild = nullptr;
    uint64_t hash = 0;
    uint32_t slot = 0;
  };
  std::vector<Node> nodes;
  std::unordered_map<std::string_view, uint32_t> node_of;  // suffix -> node index
  node_of.reserve(label_sum_);
  std::vector<std::vector<uint32_t>> values;  // sorted_unique of each pattern's values
  values.reserve(exact_.size() + wild_.size());
  for (const auto* m : {&exact_, &wild_})
    for (const auto& [name, vals] : *m) {
      const std::string_view n = name;
      uint32_t node = 0;
      for (size_t start = n.size(); start-- > 0;) {
        if (start != 0 && n[start - 1] != '.') continue;
        const std::string_view suffix = n.substr(start);
        auto [it, inserted] = node_of.try_emplace(suffix, static_cast<uint32_t>(nodes.size()));
        if (inserted) {
          const std::string_view label = suffix.substr(0, suffix.find('.'));
          const uint64_t parent_hash = node == 0 ? kRootHash : nodes[node - 1].hash;
          nodes.push_back(
              {label, node, nullptr, nullptr,
               suffix_hash_copy(parent_hash, reinterpret_cast<const uint8_t*>(label.data()),
                                label.size()),
               0});
        }
        node = it->second + 1;
      }
      values.push_back(sorted_unique(vals));
      (m == &exact_ ? nodes[node - 1].exact : nodes[node - 1].wild) = &values.back();
    }
  std::vector<uint64_t> hashes;
  for (const Node& n : nodes) hashes.push_back(n.hash);
  // 5/6 of the slots used. Placement only keeps failing if five nodes share both buckets
  // at every size, i.e. have equal 64-bit hashes.
  const uint32_t node_count = static_cast<uint32_t>(nodes.size());
  uint32_t buckets = node_count == 0 ? 0 : node_count * 3 / 5 + 1;
  std::vector<uint32_t> pos;
  while (node_count != 0 && !place(hashes, buckets, &pos)) buckets += buckets / 8 + 1;
  const uint32_t slots = 2 * buckets;
  for (uint32_t k = 0; k < node_count; ++k) nodes[k].slot = pos[k];

  // Value set, lists (values of a pattern with more than one) and long labels.
  std::set<uint32_t> value_set(star_.begin(), star_.end());
  std::vector<uint32_t> lists;
  auto add_list = [&](const std::vector<uint32_t>& values) {
    const uint32_t off = static_cast<uint32_t>(lists.size());
    lists.push_back(static_cast<uint32_t>(values.size()));
    lists.insert(lists.end(), values.begin(), values.end());
    value_set.insert(values.begin(), values.end());
    return off;
  };
  std::string labels;
  std::map<std::string_view, uint32_t> label_off;
  std::vector<uint8_t> slot_bytes(size_t{slots} * kSlotLen, 0);
  for (const Node& n : nodes) {
    uint8_t* slot = slot_bytes.data() + size_t{n.slot} * kSlotLen;
    const std::string_view label = n.label;
    put32(slot + kParent, n.parent == 0 ? 0 : nodes[n.parent - 1].slot + 1);
    uint8_t kinds = 0;
    for (const auto& [vals, word, shift] : {std::tuple{n.exact, kExactWord, kExactShift},
                                            std::tuple{n.wild, kWildWord, kWildShift}}) {
      if (vals == nullptr) continue;
      if (vals->size() == 1) {
        put32(slot + word, vals->front());
        value_set.insert(vals->front());
        kinds |= kOne << shift;
      } else {
        put32(slot + word, add_list(*vals));
        kinds |= kList << shift;
      }
    }
    slot[kLabelLen] = static_cast<uint8_t>(label.size());
    slot[kKinds] = kinds;
    slot[kTag] = tag_of(n.hash);
    if (label.size() <= kInlineLabel) {
      std::memcpy(slot + kLabel, label.data(), label.size());
    } else {
      auto [it, inserted] = label_off.emplace(label, static_cast<uint32_t>(labels.size()));
      if (inserted) labels += label;
      put32(slot + kLabel, it->second);
    }
  }
  const std::vector<uint32_t> star = sorted_unique(star_);
  const uint32_t star_list = star.empty() ? 0 : add_list(star) + 1;

  std::string out(kDomainHeaderLen, '\0');
  for (uint32_t v : value_set) out.append(4, '\0'), put32(&out, out.size() - 4, v);
  out.resize(align_up(out.size(), kSectionAlign), '\0');
  out.append(slot_bytes.begin(), slot_bytes.end());
  for (uint32_t w : lists) out.append(4, '\0'), put32(&out, out.size() - 4, w);
  out += labels;

  const uint8_t* body = reinterpret_cast<const uint8_t*>(out.data()) + kDomainHeaderLen;
  const size_t body_len = out.size() - kDomainHeaderLen;
  put32(&out, kMagic, kDomainMagic);
  put32(&out, kVersion, kDomainVersion);
  put32(&out, kHeaderLen, kDomainHeaderLen);
  put32(&out, kBodyLen, static_cast<uint32_t>(body_len));
  put32(&out, kChecksum, fnv1a32(body, body_len));
  put32(&out, kNodeCount, node_count);
  put32(&out, kBuckets, buckets);
  put32(&out, kValueCount, static_cast<uint32_t>(value_set.size()));
  put32(&out, kListWords, static_cast<uint32_t>(lists.size()));
  put32(&out, kLabelsLen, static_cast<uint32_t>(labels.size()));
  put32(&out, kStarList, star_list);
  return out;
}

// ---- table (control thread: open; worker lcores: match) -------------------------

bool DomainTable::open(const uint8_t* data, size_t len, std::string* err) {
  open_ = false;
  mem_.reset();
  if (data == nullptr || len < kDomainHeaderLen) {
    if (err) *err = "domain table: shorter than its header";
    return false;
  }
  std::unique_ptr<uint8_t, Free> mem(
      static_cast<uint8_t*>(std::aligned_alloc(kSectionAlign, align_up(len, kSectionAlign))));
  if (!mem) {
    if (err) *err = "domain table: out of memory";
    return false;
  }
  std::memcpy(mem.get(), data, len);
  mem_ = std::move(mem);
  if (!validate(mem_.get(), len, err)) {
    mem_.reset();
    return false;
  }
  open_ = true;
  return true;
}

bool DomainTable::validate(const uint8_t* data, size_t len, std::string* err) {
  auto fail = [&](const std::string& why) {
    if (err) *err = "domain table: " + why;
    return false;
  };
  auto slot_fail = [&](uint32_t i, const char* why) {
    return fail("slot " + std::to_string(i) + ": " + why);
  };
  auto field = [&](size_t off) { return get32(data + off); };
  if (field(kMagic) != kDomainMagic) return fail("bad magic");
  if (field(kVersion) != kDomainVersion) return fail("unsupported version");
  if (field(kHeaderLen) != kDomainHeaderLen) return fail("bad header length");
  const uint64_t body_len = field(kBodyLen);
  if (body_len != len - kDomainHeaderLen) return fail("body length does not match the size");
  if (fnv1a32(data + kDomainHeaderLen, body_len) != field(kChecksum))
    return fail("checksum mismatch");
  for (size_t f : {kZero20, kZero28, kZero36, kZero56, kZero60})
    if (field(f) != 0) return fail("reserved header field not zero");

  const uint32_t node_count = field(kNodeCount), buckets = field(kBuckets);
  const uint32_t value_count = field(kValueCount), list_words = field(kListWords);
  const uint32_t labels_len = field(kLabelsLen), star_list = field(kStarList);
  if (buckets > kMaxBuckets || node_count > 2 * buckets || (node_count == 0) != (buckets == 0))
    return fail("bad slot table geometry");
  const uint32_t slots = 2 * buckets;
  // Sections in order; 64-bit sums cannot overflow with 32-bit counts.
  const uint64_t values_off = kDomainHeaderLen;
  const uint64_t slots_off = align_up(values_off + uint64_t{value_count} * 4, kSectionAlign);
  const uint64_t lists_off = slots_off + uint64_t{slots} * kSlotLen;
  const uint64_t labels_off = lists_off + uint64_t{list_words} * 4;
  if (labels_off + labels_len != len) return fail("section sizes do not add up to the body length");
  const uint8_t* values = data + values_off;
  const uint8_t* slot0 = data + slots_off;
  const uint8_t* lists = data + lists_off;
  const uint8_t* labels = data + labels_off;
  for (uint64_t i = values_off + uint64_t{value_count} * 4; i < slots_off; ++i)
    if (data[i] != 0) return fail("padding not zero");

  // The value set: ascending, and every value of a slot or list is in it, every one used.
  for (uint32_t i = 1; i < value_count; ++i)
    if (get32(values + 4 * (i - 1)) >= get32(values + 4 * i))
      return fail("value set not ascending");
  std::vector<uint8_t> used(value_count, 0);
  auto use = [&](uint32_t v) {
    uint32_t lo = 0, hi = value_count;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (get32(values + 4 * mid) < v)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == value_count || get32(values + 4 * lo) != v) return false;
    used[lo] = 1;
    return true;
  };
  auto list_ok = [&](uint32_t off) {
    if (off >= list_words) return false;
    const uint32_t count = get32(lists + 4 * uint64_t{off});
    if (count == 0 || count > list_words - off - 1) return false;
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t v = get32(lists + 4 * (uint64_t{off} + 1 + i));
      if (!use(v) || (i > 0 && get32(lists + 4 * (uint64_t{off} + i)) >= v)) return false;
    }
    return true;
  };
  if (star_list != 0 && !list_ok(star_list - 1)) return fail("bad \"*\" value list");

  // Each slot on its own: empty (all zero) or a well-formed node.
  static constexpr uint8_t kZeros[kSlotLen] = {};
  std::vector<const uint8_t*> label_of(slots, nullptr);
  uint32_t occupied = 0;
  for (uint32_t i = 0; i < slots; ++i) {
    const uint8_t* s = slot0 + uint64_t{i} * kSlotLen;
    const uint32_t llen = s[kLabelLen];
    if (llen == 0) {
      if (std::memcmp(s, kZeros, kSlotLen) != 0) return slot_fail(i, "empty but not zero");
      continue;
    }
    ++occupied;
    const uint32_t parent = get32(s + kParent);
    if (llen > kMaxLabel) return slot_fail(i, "label too long");
    if (parent > slots || (parent != 0 && slot0[uint64_t{parent - 1} * kSlotLen + kLabelLen] == 0))
      return slot_fail(i, "parent is no node");
    if (s[kKinds] >> 4 != 0 || s[kZero14] != 0) return slot_fail(i, "bad value kinds");
    for (const auto& [word, shift] :
         {std::pair{kExactWord, kExactShift}, std::pair{kWildWord, kWildShift}}) {
      const uint8_t kind = (s[kKinds] >> shift) & 3;
      const uint32_t w = get32(s + word);
      if (kind == kNone ? w != 0 : kind == kOne ? !use(w) : kind == kList ? !list_ok(w) : true)
        return slot_fail(i, "bad value list");
    }
    const uint8_t* label = s + kLabel;
    size_t pad = kInlineLabel;
    if (llen > kInlineLabel) {
      const uint32_t off = get32(s + kLabel);
      if (uint64_t{off} + llen > labels_len) return slot_fail(i, "label out of range");
      label = labels + off;
      pad = kInlineLabel - 4;
    } else {
      pad = kInlineLabel - llen;
    }
    if (std::memcmp(s + kSlotLen - pad, kZeros, pad) != 0) return slot_fail(i, "padding not zero");
    for (uint32_t c = 0; c < llen; ++c)
      if (!label_char(label[c])) return slot_fail(i, "bad label byte");
    label_of[i] = label;
  }
  if (occupied != node_count) return fail("node count mismatch");
  if (std::count(used.begin(), used.end(), 1) != static_cast<ptrdiff_t>(value_count))
    return fail("a value of the set is in no list");

  // Hashes and suffix lengths over the parent links, which must end at the top level
  // (no cycle) within a name's length.
  enum : uint8_t { kNew, kOnPath, kDone };
  std::vector<uint8_t> state(slots, kNew);
  std::vector<uint64_t> hash(slots, 0);
  std::vector<uint16_t> suffix_len(slots, 0);
  std::vector<uint32_t> path;
  for (uint32_t i = 0; i < slots; ++i) {
    if (label_of[i] == nullptr || state[i] == kDone) continue;
    for (uint32_t j = i;;) {  // up to the first known ancestor
      if (state[j] == kOnPath) return slot_fail(j, "parent cycle");
      state[j] = kOnPath;
      path.push_back(j);
      const uint32_t parent = get32(slot0 + uint64_t{j} * kSlotLen + kParent);
      if (parent == 0 || state[parent - 1] == kDone) break;
      j = parent - 1;
    }
    for (; !path.empty(); path.pop_back()) {  // back down, parents first
      const uint32_t j = path.back();
      const uint8_t* s = slot0 + uint64_t{j} * kSlotLen;
      const uint32_t parent = get32(s + kParent);
      const size_t slen = s[kLabelLen] + (parent == 0 ? 0 : 1 + suffix_len[parent - 1]);
      if (slen > kMaxName) return slot_fail(j, "name too long");
      suffix_len[j] = static_cast<uint16_t>(slen);
      hash[j] =
          suffix_hash_copy(parent == 0 ? kRootHash : hash[parent - 1], label_of[j], s[kLabelLen]);
      state[j] = kDone;
    }
  }
  // Each node in one of its hash's buckets, and no other node there for the same suffix
  // (equal suffixes have equal hashes, so a duplicate would share the buckets).
  for (uint32_t i = 0; i < slots; ++i) {
    if (label_of[i] == nullptr) continue;
    const uint8_t* s = slot0 + uint64_t{i} * kSlotLen;
    const uint32_t b[2] = {bucket1(hash[i], buckets), bucket2(hash[i], buckets)};
    if (s[kTag] != tag_of(hash[i]) || (i / 2 != b[0] && i / 2 != b[1]))
      return slot_fail(i, "node not where its hash puts it");
    for (const uint32_t j : {2 * b[0], 2 * b[0] + 1, 2 * b[1], 2 * b[1] + 1}) {
      const uint8_t* o = slot0 + uint64_t{j} * kSlotLen;
      if (j != i && label_of[j] != nullptr && get32(o + kParent) == get32(s + kParent) &&
          o[kLabelLen] == s[kLabelLen] && std::memcmp(label_of[j], label_of[i], s[kLabelLen]) == 0)
        return slot_fail(i, "duplicate node");
    }
  }

  slots_ = slot0;
  lists_ = lists;
  labels_ = labels;
  buckets_ = buckets;
  star_list_ = star_list;
  return true;
}

size_t DomainTable::match(const Name& name, uint32_t* out, size_t max) const {
  if (!open_ || max == 0 || name.len == 0 || name.len > kMaxName) return 0;
  const uint8_t* q = reinterpret_cast<const uint8_t*>(name.buf);
  const size_t len = name.len;
  struct List {
    const uint8_t* p;
    uint32_t left;
  };
  List lists[kMaxLists];
  size_t n = 0;

  if (buckets_ != 0) {
    // Bit i of dots: q[i] is a dot.
    uint64_t dots[4] = {0, 0, 0, 0};
    size_t c = 0;
#if defined(__SSE2__)
    const __m128i dot = _mm_set1_epi8('.');
    for (; c < len && c + 16 <= sizeof(name.buf); c += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + c));
      dots[c / 64] |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, dot)))}
                      << (c % 64);
    }
#endif
    for (; c < len; ++c) dots[c / 64] |= uint64_t{q[c] == '.'} << (c % 64);
    if (len % 64 != 0) dots[len / 64] &= (uint64_t{1} << (len % 64)) - 1;  // bytes past len
    uint8_t starts[kMaxName + 2];  // of each label, left to right, and len + 1
    size_t labels = 1;
    starts[0] = 0;
    for (size_t w = 0; w < (len + 63) / 64; ++w)
      for (uint64_t m = dots[w]; m != 0; m &= m - 1)
        starts[labels++] = static_cast<uint8_t>(64 * w + __builtin_ctzll(m) + 1);
    starts[labels] = static_cast<uint8_t>(len + 1);

    // Levels, right to left: level j is the suffix made of the name's last j + 1 labels.
    // Hash each and prefetch both its buckets before probing any.
    struct Level {
      uint64_t a, b;  // the label's first 16 bytes, zero past its end
      const uint8_t* bucket[2];
      uint32_t key;  // slot word 12 without the kinds: label length and tag
      uint8_t start, len;
    };
    Level levels[kMaxLevels];
    size_t nlevels = 0;
    uint64_t h = kRootHash;
    for (size_t l = labels; l-- > 0 && nlevels < kMaxLevels;) {
      const size_t start = starts[l], llen = starts[l + 1] - 1 - start;
      if (llen == 0 || llen > kMaxLabel) break;  // no node has such a label
      const uint8_t* p = q + start;
      uint8_t copy[align_up(kMaxLabel, 16)];
      if (start + align_up(llen, 16) > sizeof(name.buf)) {  // near the end of the buffer
        std::memset(copy, 0, sizeof(copy));
        std::memcpy(copy, p, llen);
        p = copy;
      }
      Level& lv = levels[nlevels++];
      lv.start = static_cast<uint8_t>(start);
      lv.len = static_cast<uint8_t>(llen);
      if (llen <= kInlineLabel) {
        lv.a = low_bytes(get64(p), llen);
        lv.b = llen > 8 ? low_bytes(get64(p + 8), llen - 8) : 0;
        h = suffix_step(h ^ kK0 ^ llen, lv.a, lv.b);
      } else {
        lv.a = lv.b = 0;
        h = suffix_hash(h, p, llen);
      }
      lv.key = static_cast<uint32_t>(llen) | uint32_t{tag_of(h)} << 24;
      lv.bucket[0] = slots_ + size_t{bucket1(h, buckets_)} * kBucketLen;
      lv.bucket[1] = slots_ + size_t{bucket2(h, buckets_)} * kBucketLen;
      __builtin_prefetch(lv.bucket[0]);
      __builtin_prefetch(lv.bucket[1]);
    }
    const size_t whole = nlevels == labels ? nlevels - 1 : kMaxLevels;  // the whole name

    // Walk down: a level exists if a slot of its two buckets has its tag, its label and
    // the previous level's slot as parent. Each found level contributes one ascending list.
    uint32_t parent = 0;
    for (size_t j = 0; j < nlevels; ++j) {
      const Level& lv = levels[j];
      const uint32_t key = lv.key;
      const uint8_t* const* b = lv.bucket;
      // Tags first: usually one slot has the level's, so the branch that follows is
      // predictable, where comparing the slots in turn would not be.
      const uint8_t tag = static_cast<uint8_t>(key >> 24);
      unsigned candidates =
          unsigned{b[0][kTag] == tag} | unsigned{b[0][kSlotLen + kTag] == tag} << 1 |
          unsigned{b[1][kTag] == tag} << 2 | unsigned{b[1][kSlotLen + kTag] == tag} << 3;
      const uint8_t* found = nullptr;
      for (; candidates != 0; candidates &= candidates - 1) {
        const unsigned k = __builtin_ctz(candidates);
        const uint8_t* s = b[k / 2] + (k % 2) * kSlotLen;
        const uint64_t diff =
            (get32(s + kParent) ^ parent) | ((get32(s + kLabelLen) & 0xffff00ffu) ^ key);
        if (lv.len <= kInlineLabel
                ? (diff | (get64(s + kLabel) ^ lv.a) | (get64(s + kLabel + 8) ^ lv.b)) == 0
                : diff == 0 &&
                      std::memcmp(labels_ + get32(s + kLabel), q + lv.start, lv.len) == 0) {
          found = s;
          break;
        }
      }
      if (found == nullptr) break;
      const bool exact = j == whole;
      const uint8_t kind = (found[kKinds] >> (exact ? kExactShift : kWildShift)) & 3;
      const uint8_t* word = found + (exact ? kExactWord : kWildWord);
      lists[n] = {word, 1};
      n += kind == kOne;
      if (kind == kList) {
        const uint8_t* l = lists_ + size_t{get32(word)} * 4;
        lists[n++] = {l + 4, get32(l)};
      }
      parent = static_cast<uint32_t>((found - slots_) / kSlotLen) + 1;
    }
  }
  if (star_list_ != 0) {
    const uint8_t* l = lists_ + size_t{star_list_ - 1} * 4;
    lists[n++] = {l + 4, get32(l)};
  }

  if (n == 1) {  // the common case: one list, already ascending and distinct
    const size_t count = std::min<size_t>(lists[0].left, max);
    for (size_t k = 0; k < count; ++k) out[k] = get32(lists[0].p + 4 * k);
    return count;
  }
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
