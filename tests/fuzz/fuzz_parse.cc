// libFuzzer target for dataplane/parse.cc: parse_frame over arbitrary bytes must never
// read out of bounds, what it reports as parsed must lie inside the frame, and its fast
// path must agree with the general parser (verdict, drop reason, every field), with and
// without the NIC's checksum verdict.
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "dataplane/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (bool csum_good : {false, true}) {
    egw::ParsedPacket a, b;
    const egw::ParseResult x = egw::parse_frame(data, size, &a, csum_good);
    const egw::ParseResult y = egw::parse_frame_general(data, size, &b, csum_good);
    if (x.status != y.status) __builtin_trap();
    if (x.status == egw::ParseStatus::drop ? x.reason != y.reason : !egw::same_parse(a, b))
      __builtin_trap();
  }
  egw::ParsedPacket p;
  const egw::ParseResult r = egw::parse_frame(data, size, &p);
  if (r.status == egw::ParseStatus::drop) {
    if (static_cast<unsigned>(r.reason) >= egw::kDropReasonCount) __builtin_trap();
    return 0;
  }
  if (p.kind != egw::FrameKind::ip && p.kind != egw::FrameKind::arp &&
      p.kind != egw::FrameKind::ndp) {
    __builtin_trap();
  }
  if (p.l3_offset > size) __builtin_trap();
  if (p.kind == egw::FrameKind::arp) return 0;
  const size_t l3_end = size_t{p.l3_offset} + p.l3_len;
  if (l3_end > size || (p.l34.family != 4 && p.l34.family != 6)) __builtin_trap();
  if (p.l4_offset != 0 && (p.l4_offset <= p.l3_offset || p.l4_offset > l3_end)) __builtin_trap();
  if (p.payload_len != 0 && size_t{p.payload_offset} + p.payload_len > l3_end) __builtin_trap();
  if (p.l4_offset == 0 && (p.l34.sport != 0 || p.l34.dport != 0)) __builtin_trap();
  if (p.icmp_is_error && p.inner.family != p.l34.family) __builtin_trap();
  // Parsing is a pure function: a second run gives the same verdict.
  egw::ParsedPacket q;
  if (egw::parse_frame(data, size, &q).status != r.status) __builtin_trap();
  return 0;
}
