// libFuzzer target for dataplane/l7/http.cc: parse_http_request over arbitrary bytes must
// never read out of bounds, and what it reports must be consistent with its input.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/l7/l7.h"

using egw::l7::Error;
using egw::l7::HttpRequest;
using egw::l7::Status;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  HttpRequest r;
  Error err;
  size_t consumed = 0;
  const Status s = egw::l7::parse_http_request(data, size, &r, &err, &consumed);
  if (s == Status::bad) {
    if (err == Error::none || consumed != 0 || r.has_name) __builtin_trap();
    return 0;
  }
  if (err != Error::none) __builtin_trap();
  if (s == Status::need_more) {
    if (consumed != 0 || size >= egw::l7::kMaxHttpHead) __builtin_trap();
    return 0;
  }
  if (s != Status::ok) __builtin_trap();
  if (consumed == 0 || consumed > size || consumed > egw::l7::kMaxHttpHead) __builtin_trap();
  if (r.method_len == 0 || r.method_len > 15 || r.method[r.method_len] != '\0') __builtin_trap();
  if (r.has_name && r.ip_literal) __builtin_trap();
  if (r.has_name) {  // a valid, already normalised name: normalising again is the identity
    egw::l7::Name again;
    if (!egw::l7::normalize_name(reinterpret_cast<const uint8_t*>(r.name.buf), r.name.len,
                                 &again) ||
        again.len != r.name.len || std::memcmp(again.buf, r.name.buf, r.name.len) != 0) {
      __builtin_trap();
    }
  }
  if (r.ip_literal && (r.ip[0] == '\0' || std::memchr(r.ip, '\0', sizeof(r.ip)) == nullptr))
    __builtin_trap();
  // The head alone gives the same request; every strict prefix of it is undecided.
  HttpRequest h;
  size_t hc = 0;
  if (egw::l7::parse_http_request(data, consumed, &h, &err, &hc) != Status::ok || hc != consumed ||
      h.has_name != r.has_name || h.name.len != r.name.len ||
      std::memcmp(h.name.buf, r.name.buf, r.name.len) != 0 || h.connect != r.connect ||
      h.upgrade != r.upgrade) {
    __builtin_trap();
  }
  if (egw::l7::parse_http_request(data, consumed - 1, &h, &err, &hc) != Status::need_more)
    __builtin_trap();
  return 0;
}
