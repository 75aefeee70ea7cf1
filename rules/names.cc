// Shape checks for the strings of a policy document: UTF-8, DNS names, identifiers.
// Management side (egw-mgmt, egwctl); pure functions, no state.
#include "rules/names.h"

#include <arpa/inet.h>
#include <hs.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace egw::rules {

bool valid_utf8(std::string_view s, size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      *bad_offset = i;
      return false;
    }
    if (n - i < len) {
      *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

namespace {

bool is_ldh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool looks_like_ip(std::string_view s) {
  char buf[64];
  if (s.size() >= sizeof(buf)) return false;
  memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  unsigned char out[16];
  return inet_pton(AF_INET, buf, out) == 1 || inet_pton(AF_INET6, buf, out) == 1;
}

// Checks the labels of a name without wildcard; s has no trailing dot.
bool check_labels(std::string_view s, std::string* why) {
  if (s.empty()) {
    *why = "empty name";
    return false;
  }
  size_t start = 0;
  bool last_all_digits = false;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) {
      *why = "empty label (a leading dot or two dots in a row)";
      return false;
    }
    if (label.size() > 63) {
      *why = "label longer than 63 characters";
      return false;
    }
    if (label.front() == '-' || label.back() == '-') {
      *why = "label '" + std::string(label) + "' starts or ends with '-'";
      return false;
    }
    last_all_digits = label.find_first_not_of("0123456789") == std::string_view::npos;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (last_all_digits) {
    *why = "the last label is all digits (not a DNS name; use to.cidrs for addresses)";
    return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> normalize_domain(std::string_view s, std::string* why) {
  if (s.empty()) {
    *why = "empty domain name";
    return std::nullopt;
  }
  if (s == "*") return std::string("*");
  if (looks_like_ip(s)) {
    *why = "an IP address is not a name: use to.cidrs for addresses";
    return std::nullopt;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (strchr("^$+?()[]{}|\\", c) != nullptr && c != '\0') {
      *why = std::string("regex metacharacter '") + c +
             "' in a literal name: domains entries are literals, use domain_regex for patterns";
      return std::nullopt;
    }
    if (c == '*') {
      if (i != 0 || s.size() < 3 || s[1] != '.') {
        *why = "'*' is only allowed as the whole first label (\"*.example.com\") or alone (\"*\")";
        return std::nullopt;
      }
      continue;
    }
    if (static_cast<unsigned char>(c) >= 0x80) {
      *why = "non-ASCII character: write internationalized names in their xn-- (punycode) form";
      return std::nullopt;
    }
    if (c != '.' && !is_ldh(c)) {
      char buf[48];
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        snprintf(buf, sizeof(buf), "control character 0x%02x", static_cast<unsigned char>(c));
      else
        snprintf(buf, sizeof(buf), "character '%c'", c);
      *why = std::string("invalid ") + buf + " (allowed: letters, digits, '-', '_', '.')";
      return std::nullopt;
    }
  }
  std::string_view body = s;
  if (body.size() > 1 && body.back() == '.') body.remove_suffix(1);
  if (body.size() > 253) {
    *why = "name longer than 253 characters";
    return std::nullopt;
  }
  bool wildcard = body.substr(0, 2) == "*.";
  std::string_view rest = wildcard ? body.substr(2) : body;
  if (!check_labels(rest, why)) return std::nullopt;
  std::string out(body);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

size_t oversized_repeat(std::string_view p, unsigned max_count, std::string* text) {
  const size_t n = p.size();
  auto find_from = [&](std::string_view what, size_t from) {
    size_t at = p.find(what, from);
    return at == std::string_view::npos ? n : at + what.size();
  };
  size_t i = 0;
  while (i < n) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 < n && p[i + 1] == 'Q') {
        i = find_from("\\E", i + 2);
      } else if (i + 2 < n && strchr("xopPNg", p[i + 1]) != nullptr && p[i + 2] == '{') {
        i = find_from("}", i + 3);  // \x{41}, \p{L}, ...: not a repeat
      } else {
        i += 2;
      }
    } else if (c == '[') {
      size_t j = i + 1;
      if (j < n && p[j] == '^') ++j;
      if (j < n && p[j] == ']') ++j;  // a leading ']' is a member
      while (j < n && p[j] != ']') {
        if (p[j] == '\\')
          j += 2;
        else if (p[j] == '[' && j + 1 < n && p[j + 1] == ':')
          j = find_from(":]", j + 2);
        else
          ++j;
      }
      i = j + 1;
    } else if (p.substr(i, 3) == "(?#") {
      i = find_from(")", i + 3);
    } else if (c == '{') {
      size_t j = i + 1;
      uint64_t lo = 0, hi = 0;
      size_t lo_digits = 0;
      for (; j < n && p[j] >= '0' && p[j] <= '9'; ++j, ++lo_digits)
        lo = lo > max_count ? lo : lo * 10 + (p[j] - '0');
      if (lo_digits > 0 && j < n && p[j] == ',')
        for (++j; j < n && p[j] >= '0' && p[j] <= '9'; ++j)
          hi = hi > max_count ? hi : hi * 10 + (p[j] - '0');
      if (lo_digits > 0 && j < n && p[j] == '}' && (lo > max_count || hi > max_count)) {
        *text = std::string(p.substr(i, j + 1 - i));
        return i;
      }
      ++i;
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

namespace {

std::string hs_message(hs_compile_error_t* e) {
  std::string m = e && e->message ? e->message : "unknown error";
  hs_free_compile_error(e);
  return m;
}

}  // namespace

unsigned domain_regex_flags() {
  return HS_FLAG_SINGLEMATCH;
}

const hs_platform_info* domain_regex_platform() {
  static const hs_platform_info_t kGeneric{};  // HS_TUNE_FAMILY_GENERIC, no CPU features
  return &kGeneric;
}

bool check_hs_pattern(std::string_view pattern, unsigned flags, size_t max_length,
                      unsigned max_repeat, const char* empty_hint, std::string* why) {
  if (pattern.empty()) {
    *why = "empty pattern";
    return false;
  }
  if (pattern.size() > max_length) {
    *why = "pattern of " + std::to_string(pattern.size()) + " bytes, longer than the limit of " +
           std::to_string(max_length);
    return false;
  }
  std::string repeat;
  if (size_t at = oversized_repeat(pattern, max_repeat, &repeat); at != std::string_view::npos) {
    *why = "bounded repeat " + repeat + " at byte " + std::to_string(at) + " counts over " +
           std::to_string(max_repeat) + " (too costly to compile and match)";
    return false;
  }
  const std::string text(pattern);  // Hyperscan reads a NUL-terminated string
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_expression_info(text.c_str(), flags, &info, &err) != HS_SUCCESS) {
    *why = "Hyperscan cannot compile it: \"" + hs_message(err) + "\"";
    return false;
  }
  const bool empty = info->min_width == 0;
  free(info);  // Hyperscan's default allocator is malloc
  if (empty) {
    *why = std::string("the pattern can match the empty string, so it would match ") + empty_hint;
    return false;
  }
  // No hs_compile here (~10x the cost of the parse): what only a compile can refuse (a
  // resource limit) is refused by mgmt::compile_policy at the pattern's path.
  return true;
}

bool check_domain_regex(std::string_view pattern, std::string* why) {
  return check_hs_pattern(pattern, domain_regex_flags(), kMaxDomainRegexLength, kMaxRegexRepeat,
                          "every name: make it need at least one character (e.g. "
                          "\"^[a-z0-9-]+\\.example\\.com$\")",
                          why);
}

bool valid_object_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_digit(s[0])) return false;
  for (char c : s.substr(1))
    if (!lower_digit(c) && c != '_' && c != '-') return false;
  return true;
}

bool valid_rule_id(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace egw::rules
