// libFuzzer target for dataplane/l7/flight.cc: parse_tcp_flight over arbitrary client
// bytes fed in growing chunks decides exactly like one call over all of them, never reads
// past the length it is given, and reports consistent results.
// Input: byte 0 picks the remote port (odd: 53, DNS over TCP; even: 443), the rest is
// the client's stream; the chunk sizes come from the stream's own bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/l7/l7.h"

namespace {

using egw::l7::Error;
using egw::l7::FlightState;
using egw::l7::FlowName;
using egw::l7::Status;

struct Run {
  Status status = Status::need_more;
  Error err = Error::none;
  FlightState st;
  FlowName name;
};

// One call over an exact-size heap copy of data[0, len), so ASan flags a read past len.
void call(const uint8_t* data, size_t len, uint16_t port, Run* r) {
  std::vector<uint8_t> copy(data, data + len);
  copy.shrink_to_fit();
  r->status = egw::l7::parse_tcp_flight(copy.data(), len, port, &r->st, &r->name, &r->err);
}

bool same(const Run& a, const Run& b) {
  return a.status == b.status && a.err == b.err && a.st.done == b.st.done &&
         a.st.decided == b.st.decided && a.name.app == b.name.app &&
         a.name.has_name == b.name.has_name && a.name.ip_literal == b.name.ip_literal &&
         a.name.ech == b.name.ech && a.name.name.len == b.name.name.len &&
         std::memcmp(a.name.name.buf, b.name.name.buf, a.name.name.len) == 0 &&
         a.name.alpn_len == b.name.alpn_len &&
         std::memcmp(a.name.alpn, b.name.alpn, a.name.alpn_len) == 0;
}

// The invariants of every result.
void check(const Run& r, size_t len) {
  switch (r.status) {
    case Status::need_more:
      if (r.err != Error::none || r.st.decided || r.st.done || r.st.want <= len) __builtin_trap();
      return;
    case Status::bad:
      if (r.err == Error::none || r.st.error != r.err || !r.st.done) __builtin_trap();
      return;
    case Status::ok:
      break;
    default:
      __builtin_trap();
  }
  if (r.err != Error::none || !r.st.decided) __builtin_trap();
  if (!r.st.done && r.st.want <= len) __builtin_trap();
  const FlowName& n = r.name;
  if (n.has_name && n.ip_literal) __builtin_trap();
  if (n.name.len > egw::l7::kMaxName || n.name.buf[n.name.len] != '\0') __builtin_trap();
  if (n.has_name) {  // a valid name is already normal: normalising it again gives itself
    egw::l7::Name again;
    if (!egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(n.name.buf), n.name.len,
                                 &again) ||
        again.len != n.name.len || std::memcmp(again.buf, n.name.buf, n.name.len) != 0) {
      __builtin_trap();
    }
  }
  if (!n.has_name && !n.ip_literal && n.name.len != 0) __builtin_trap();
  if (n.alpn_len > 32 || n.alpn[n.alpn_len] != '\0') __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint16_t port = (data[0] & 1) != 0 ? 53 : 443;
  const uint8_t* s = data + 1;
  const size_t n = size - 1;

  Run whole;
  call(s, n, port, &whole);
  check(whole, n);

  // Growing chunks of 1..64 bytes, sizes read from the stream itself; called only once
  // len >= want (as the worker does), and once at the end.
  Run parts;
  size_t len = 0, k = 0;
  while (len < n && parts.status != Status::bad) {
    len += 1 + (n == 0 ? 0 : s[k++ % n] % 64);
    if (len > n) len = n;
    if (len < parts.st.want) continue;
    call(s, len, port, &parts);
    check(parts, len);
  }
  if (parts.status != Status::bad) {
    call(s, n, port, &parts);
    check(parts, n);
  }
  if (!same(whole, parts)) __builtin_trap();

  // One call at every byte, ignoring want: the same verdict (small inputs: O(n^2) copies).
  if (n <= 2048) {
    Run each;
    for (size_t i = 0; i <= n && each.status != Status::bad; ++i) {
      call(s, i, port, &each);
      check(each, i);
    }
    if (!same(whole, each)) __builtin_trap();
  }
  return 0;
}
