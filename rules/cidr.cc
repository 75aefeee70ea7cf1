// CIDR text <-> rules::Cidr (IPv4 and IPv6, strict: host bits must be zero).
// Management side (egw-mgmt, egwctl); pure functions.
#include <arpa/inet.h>

#include <cstring>

#include "rules/policy.h"

namespace egw::rules {

namespace {

// Zeroes the host bits of addr beyond prefix; returns true when some were set.
bool clear_host_bits(std::array<uint8_t, 16>& addr, unsigned bytes, unsigned prefix) {
  bool had = false;
  for (unsigned i = 0; i < bytes; ++i) {
    unsigned bit0 = i * 8;
    uint8_t keep = prefix >= bit0 + 8 ? 0xFF
                   : prefix <= bit0   ? 0x00
                                      : static_cast<uint8_t>(0xFF << (8 - (prefix - bit0)));
    if (addr[i] & ~keep) had = true;
    addr[i] &= keep;
  }
  return had;
}

}  // namespace

std::optional<Cidr> parse_cidr(std::string_view text, std::string* why) {
  std::string tmp_why;
  if (why == nullptr) why = &tmp_why;
  if (text.empty()) {
    *why = "empty CIDR";
    return std::nullopt;
  }
  if (text.size() > 64) {
    *why = "too long to be a CIDR";
    return std::nullopt;
  }
  size_t slash = text.find('/');
  std::string_view addr_text = text.substr(0, slash);
  Cidr c;
  c.family = addr_text.find(':') != std::string_view::npos ? 6 : 4;
  unsigned max_prefix = c.family == 4 ? 32 : 128;
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    bool digits = !p.empty() && p.size() <= 3 && p.find_first_not_of("0123456789") == p.npos;
    if (!digits || (p.size() > 1 && p[0] == '0')) {
      *why = "bad prefix length '" + std::string(p) + "' (expected 0.." +
             std::to_string(max_prefix) + ")";
      return std::nullopt;
    }
    prefix = static_cast<unsigned>(std::stoul(std::string(p)));
    if (prefix > max_prefix) {
      *why = "prefix length /" + std::to_string(prefix) + " is over " + std::to_string(max_prefix) +
             " for an IPv" + std::to_string(c.family) + " address";
      return std::nullopt;
    }
  }
  char buf[65];
  memcpy(buf, addr_text.data(), addr_text.size());
  buf[addr_text.size()] = '\0';
  if (memchr(addr_text.data(), '\0', addr_text.size()) != nullptr ||
      inet_pton(c.family == 4 ? AF_INET : AF_INET6, buf, c.addr.data()) != 1) {
    *why = "'" + std::string(addr_text) + "' is not an IPv" + std::to_string(c.family) + " address";
    return std::nullopt;
  }
  c.prefix = static_cast<uint8_t>(prefix);
  Cidr net = c;
  if (clear_host_bits(net.addr, c.family == 4 ? 4 : 16, prefix)) {
    Cidr host = c;
    host.prefix = static_cast<uint8_t>(max_prefix);
    *why = "host bits set in " + std::string(text) + ": did you mean " + format_cidr(net) +
           " (the network) or " + format_cidr(host) + " (one host)?";
    return std::nullopt;
  }
  return net;
}

std::string format_cidr(const Cidr& c) {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(c.family == 6 ? AF_INET6 : AF_INET, c.addr.data(), buf, sizeof(buf)) == nullptr)
    return "?";
  return std::string(buf) + "/" + std::to_string(c.prefix);
}

}  // namespace egw::rules
