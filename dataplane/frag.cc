// Fragment table: 4-way set-associative by a keyed hash of (side, family, src, dst, id[, proto],
// vlan); per datagram the verdict of its first fragment and the byte ranges seen.
// Worker lcores only: no allocation after init, O(ways + pieces) per fragment.
//
// Only an allowed first fragment creates an entry (in decide(), after classification), so a
// flood of denied first fragments holds no slot; later fragments follow the entry's verdict and
// find none (frag_orphan) for a denied datagram. The arrival side is part of the key: a copy
// arriving on the other port is another datagram. Any overlap (an exact
// duplicate too, an empty piece, or one past the last fragment's end) drops the piece and denies
// the rest of the datagram. A datagram split into more than kMaxPieces disjoint runs drops the
// extra pieces as frag_table_full (no room to track them). A completed datagram frees its
// entry; others expire kTimeoutNs after their first fragment.
#include "dataplane/frag.h"

#include <cstdlib>
#include <cstring>

#include "dataplane/siphash.h"

namespace egw {

namespace {
constexpr unsigned kWays = 4;
enum class FragState : uint8_t { allowed, denied };

struct FragKey {
  uint8_t src[16];
  uint8_t dst[16];
  uint32_t id;
  uint32_t vlan;
  uint8_t family;
  uint8_t proto;  // IPv4 only (RFC 791); IPv6 reassembles on (src, dst, id)
  uint8_t side;   // port it arrived on: 0 inside, 1 outside
  uint8_t pad;
};
static_assert(sizeof(FragKey) == 44);

FragKey key_of(const ParsedPacket& p, uint8_t side) {
  FragKey k;
  std::memset(&k, 0, sizeof(k));
  std::memcpy(k.src, p.l34.src, 16);
  std::memcpy(k.dst, p.l34.dst, 16);
  k.id = p.frag_id;
  k.vlan = p.vlan;
  k.family = p.l34.family;
  k.proto = p.l34.family == 4 ? p.l34.proto : 0;
  k.side = side;
  return k;
}
}  // namespace

struct FragTable::Entry {
  uint64_t expires_ns;  // 0: free
  FragKey key;
  FragState state;
  uint8_t pieces;     // ranges in use
  uint32_t last_end;  // end of the datagram once its last fragment (MF=0) was seen; 0 unknown
  uint32_t start[kMaxPieces];
  uint32_t end[kMaxPieces];
};

bool FragTable::init(uint32_t capacity, uint64_t seed) {
  destroy();
  if (capacity == 0 || capacity > (1u << 24)) return false;
  uint32_t n = kWays;
  while (n < capacity) n <<= 1;
  entries_ = static_cast<Entry*>(std::calloc(n, sizeof(Entry)));
  if (entries_ == nullptr) return false;
  mask_ = n / kWays - 1;
  used_ = 0;
  seed_ = seed;
  return true;
}

void FragTable::destroy() {
  std::free(entries_);
  entries_ = nullptr;
  mask_ = 0;
  used_ = 0;
}

// The live entry of p's datagram, or null; *room (when asked) gets a free or expired way of its
// set, or null when the set is full. Expired ways met on the way are reclaimed.
FragTable::Entry* FragTable::find(const ParsedPacket& p, uint8_t side, uint64_t now_ns,
                                  Entry** room) {
  if (room != nullptr) *room = nullptr;
  if (entries_ == nullptr) return nullptr;
  const FragKey k = key_of(p, side);
  const uint64_t sk[2] = {seed_, seed_ ^ 0x6a09e667f3bcc908ull};
  Entry* set = &entries_[(siphash13(&k, sizeof(k), sk) & mask_) * kWays];
  Entry* found = nullptr;
  for (unsigned w = 0; w < kWays; ++w) {
    Entry& e = set[w];
    if (e.expires_ns != 0 && e.expires_ns <= now_ns) {  // expired: reclaim
      e.expires_ns = 0;
      --used_;
    }
    if (e.expires_ns == 0) {
      if (room != nullptr && *room == nullptr) *room = &e;
      continue;
    }
    if (found == nullptr && std::memcmp(&e.key, &k, sizeof(k)) == 0) found = &e;
  }
  return found;
}

namespace {
// Whether [s, e) overlaps a recorded range, or lies past the datagram's known end.
bool overlaps(const uint32_t* start, const uint32_t* end, unsigned n, uint32_t s, uint32_t e) {
  for (unsigned i = 0; i < n; ++i)
    if (s < end[i] && start[i] < e) return true;
  return false;
}
}  // namespace

FragTable::Outcome FragTable::track(const ParsedPacket& p, uint8_t side, uint64_t now_ns,
                                    DropReason* reason) {
  if (!p.is_fragment) return Outcome::first;  // nothing to track
  const uint32_t s = p.frag_offset;
  const uint32_t e = s + p.frag_payload_len;
  const bool first = p.frag_offset == 0;
  if (first && !p.more_fragments) return Outcome::first;  // atomic fragment: a whole datagram

  Entry* en = find(p, side, now_ns, nullptr);
  if (first) {
    if (en == nullptr) return Outcome::first;  // decide() records it if it is allowed
    en->state = FragState::denied;  // a second first fragment: nothing more passes
    *reason = DropReason::frag_overlap;
    return Outcome::drop;
  }
  if (en == nullptr) {
    *reason = DropReason::frag_orphan;
    return Outcome::drop;
  }
  if (en->state == FragState::denied) {
    *reason = DropReason::frag_denied;
    return Outcome::drop;
  }
  // A piece past the known end, a last piece short of a recorded one, or an empty piece
  // (which Linux treats as an invalid datagram) are treated like overlaps.
  const bool past_end = e == s || (en->last_end != 0 && e > en->last_end) ||
                        (!p.more_fragments && en->end[en->pieces - 1] > e);
  if (past_end || overlaps(en->start, en->end, en->pieces, s, e)) {
    en->state = FragState::denied;  // nothing more of this datagram passes
    *reason = DropReason::frag_overlap;
    return Outcome::drop;
  }
  // Record [s, e), merged with the runs it touches (ranges are kept sorted).
  unsigned i = 0;
  while (i < en->pieces && en->end[i] <= s) ++i;  // first run after s
  const bool join_left = i > 0 && en->end[i - 1] == s;
  const bool join_right = i < en->pieces && en->start[i] == e;
  if (join_left && join_right) {
    en->end[i - 1] = en->end[i];
    for (unsigned j = i + 1; j < en->pieces; ++j) {
      en->start[j - 1] = en->start[j];
      en->end[j - 1] = en->end[j];
    }
    --en->pieces;
  } else if (join_left) {
    en->end[i - 1] = e;
  } else if (join_right) {
    en->start[i] = s;
  } else {
    if (en->pieces == kMaxPieces) {
      *reason = DropReason::frag_table_full;
      return Outcome::drop;
    }
    for (unsigned j = en->pieces; j > i; --j) {
      en->start[j] = en->start[j - 1];
      en->end[j] = en->end[j - 1];
    }
    en->start[i] = s;
    en->end[i] = e;
    ++en->pieces;
  }
  if (!p.more_fragments) en->last_end = e;
  if (en->last_end != 0 && en->pieces == 1 && en->start[0] == 0 && en->end[0] == en->last_end) {
    en->expires_ns = 0;  // complete: later copies are orphans
    --used_;
  }
  return Outcome::allowed;
}

bool FragTable::decide(const ParsedPacket& p, uint8_t side, bool allowed, uint64_t now_ns) {
  if (!p.is_fragment || p.frag_offset != 0 || !p.more_fragments) return true;  // no datagram
  Entry* room;
  Entry* en = find(p, side, now_ns, &room);
  if (en != nullptr) {  // another first fragment was recorded meanwhile: deny both
    en->state = FragState::denied;
    return !allowed;
  }
  if (!allowed) return true;  // later fragments find no entry: orphans
  if (room == nullptr) return false;
  std::memset(room, 0, sizeof(*room));
  room->key = key_of(p, side);
  room->expires_ns = now_ns + kTimeoutNs;
  room->state = FragState::allowed;
  room->start[0] = 0;
  room->end[0] = p.frag_payload_len;
  room->pieces = 1;
  ++used_;
  return true;
}

}  // namespace egw
