// Name normalisation shared by the L7 parsers. Worker lcores: no allocation.
#include "dataplane/l7/l7.h"

namespace egw::l7 {

bool normalize_name(const uint8_t* raw, size_t len, Name* out) {
  out->len = 0;
  out->buf[0] = '\0';
  if (len > 0 && raw[len - 1] == '.') --len;  // one trailing dot: the absolute form
  if (len == 0 || len > kMaxName) return false;
  size_t label = 0;
  for (size_t i = 0; i < len; ++i) {
    uint8_t c = raw[i];
    if (c == '.') {
      if (label == 0) return false;  // empty label: "..", leading dot
      label = 0;
    } else {
      if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok || ++label > 63) return false;
    }
    out->buf[i] = static_cast<char>(c);
  }
  if (label == 0) return false;  // ended with an empty label
  out->len = static_cast<uint8_t>(len);
  out->buf[len] = '\0';
  return true;
}

}  // namespace egw::l7
