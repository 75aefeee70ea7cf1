// libFuzzer target for dataplane/l7/dns.cc: parse_dns_query and dns_tcp_frame over
// arbitrary bytes never read out of bounds, and what they accept is well formed.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/l7/l7.h"

namespace {

using egw::l7::DnsQuery;
using egw::l7::Error;
using egw::l7::Name;
using egw::l7::Status;

// Invariants of one parse_dns_query run over data[0, size).
void check_query(const uint8_t* data, size_t size) {
  DnsQuery q;
  Error err = Error::none;
  const Status st = egw::l7::parse_dns_query(data, size, &q, &err);
  if (st == Status::need_more) __builtin_trap();  // a message is complete or bad
  if ((st == Status::ok) != (err == Error::none)) __builtin_trap();
  if (st != Status::ok) return;
  // ok => a valid normalised name: non-empty, NUL-terminated, a fixed point of
  // normalize_name, and the header fields as on the wire.
  if (q.name.len == 0 || q.name.len > egw::l7::kMaxName) __builtin_trap();
  if (q.name.buf[q.name.len] != '\0') __builtin_trap();
  Name again;
  if (!egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(q.name.buf), q.name.len, &again) ||
      again.len != q.name.len || std::memcmp(again.buf, q.name.buf, q.name.len) != 0) {
    __builtin_trap();
  }
  if (size < 12 || (data[2] & 0x80) != 0 || data[4] != 0 || data[5] != 1) __builtin_trap();
  if (q.id != ((data[0] << 8) | data[1])) __builtin_trap();
  // A proper prefix of an accepted query is never accepted (lengths end it exactly).
  DnsQuery shorter;
  if (egw::l7::parse_dns_query(data, size - 1, &shorter, &err) == Status::ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_query(data, size);
  // The same bytes as a DNS-over-TCP stream: frame and parse each message in turn.
  size_t pos = 0;
  while (pos < size) {
    size_t off = 0, len = 0;
    const Status st = egw::l7::dns_tcp_frame(data + pos, size - pos, &off, &len);
    if (st != Status::ok) break;
    if (off != 2 || len == 0 || len > size - pos - off) __builtin_trap();
    check_query(data + pos + off, len);
    pos += off + len;
  }
  return 0;
}
