// Test-only: builds DNS messages (header, names in wire format, questions, queries, the
// 2-byte DNS-over-TCP framing); lengths are not checked, so bad messages can be built too.
// Header-only; used by the L7, worker and synth unit tests (any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace egw::test {

using DnsBytes = std::vector<uint8_t>;

constexpr uint16_t kDnsQueryFlags = 0x0100;     // QR 0, opcode QUERY, RD
constexpr uint16_t kDnsResponseFlags = 0x8180;  // QR 1, RD, RA, NOERROR
constexpr uint16_t kDnsId = 0x1234;

// The parts one after the other.
inline DnsBytes dns_cat(std::initializer_list<DnsBytes> parts) {
  DnsBytes out;
  for (const DnsBytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// v in network order.
inline DnsBytes dns_u16(uint16_t v) {
  return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

// A dotted name in wire format: each label behind its length byte, then the root label
// ("" is the root name alone; a trailing dot adds nothing).
inline DnsBytes dns_name(const std::string& dotted) {
  DnsBytes b;
  size_t start = 0;
  while (start < dotted.size()) {
    size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), dotted.begin() + static_cast<long>(start),
             dotted.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  b.push_back(0);
  return b;
}

// The 12-byte header: id, flags, then the question, answer, authority and additional counts.
inline DnsBytes dns_header(uint16_t flags = kDnsQueryFlags, uint16_t qd = 1, uint16_t an = 0,
                           uint16_t ns = 0, uint16_t ar = 0, uint16_t id = kDnsId) {
  DnsBytes b;
  for (uint16_t v : {id, flags, qd, an, ns, ar}) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  }
  return b;
}

// One question: the name, qtype, qclass.
inline DnsBytes dns_question(const std::string& name, uint16_t qtype = 1, uint16_t qclass = 1) {
  return dns_cat({dns_name(name), dns_u16(qtype), dns_u16(qclass)});
}

// A query for one name as a stub resolver sends it: one question, RD set, nothing else.
inline DnsBytes dns_query(const std::string& name, uint16_t qtype = 1, uint16_t id = kDnsId) {
  return dns_cat({dns_header(kDnsQueryFlags, 1, 0, 0, 0, id), dns_question(name, qtype)});
}

// DNS over TCP (RFC 1035 4.2.2): the message behind its 2-byte length.
inline DnsBytes dns_tcp_framed(const DnsBytes& msg) {
  return dns_cat({dns_u16(static_cast<uint16_t>(msg.size())), msg});
}

}  // namespace egw::test
