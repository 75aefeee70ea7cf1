// Flow records: make_flow_record() (worker lcores: plain copies, no allocation) and
// flow_record_json() (reader side: control thread, egw-replay; allocates a string).
#include "dataplane/flow_log.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "dataplane/parse.h"

namespace egw {

// Names of the flow table's states, as flow records spell them (here, not in
// flow_table.cc, so that egw-mgmt formats records without linking the EAL).
const char* tcp_state_name(TcpState s) {
  switch (s) {
    case TcpState::none:
      return "none";
    case TcpState::syn_sent:
      return "syn_sent";
    case TcpState::syn_recv:
      return "syn_recv";
    case TcpState::established:
      return "established";
    case TcpState::fin_wait:
      return "fin_wait";
    case TcpState::closing:
      return "closing";
    case TcpState::closed:
      return "closed";
  }
  return "unknown";
}

const char* end_reason_name(EndReason r) {
  switch (r) {
    case EndReason::timeout:
      return "timeout";
    case EndReason::closed:
      return "closed";
    case EndReason::reset:
      return "reset";
    case EndReason::evicted:
      return "evicted";
    case EndReason::shutdown:
      return "shutdown";
    case EndReason::active:
      return "active";
    case EndReason::policy:
      return "policy";
  }
  return "unknown";
}

void make_flow_record(const FlowEntry& e, EndReason why, const char* rule_id,
                      const l7::FlowName* app, FlowRecord* out) {
  std::memset(static_cast<void*>(out), 0, sizeof(*out));  // no stale bytes cross processes
  out->key = e.key;
  out->flow_id = e.flow_id;
  out->start_ns = e.start_ns;
  out->end_ns = e.last_seen_ns;
  out->pkts[0] = e.pkts[0];
  out->pkts[1] = e.pkts[1];
  out->bytes[0] = e.bytes[0];
  out->bytes[1] = e.bytes[1];
  out->policy_version = e.policy_version;
  out->rtt_us = e.rtt_us;
  out->resets = e.resets;
  out->rst = e.timing & (kRstFromClient | kRstFromServer | kRstFromEgw);
  out->ttfb_us = e.ttfb_us;
  out->rule_slot = e.rule_slot;
  out->rule_index = e.rule_index;
  out->verdict = e.verdict;
  out->tcp_state = e.tcp_state;
  out->reason = why;
  if (rule_id != nullptr && e.rule_index != kNoRule) {
    size_t n = strnlen(rule_id, sizeof(out->rule_id) - 1);
    std::memcpy(out->rule_id, rule_id, n);
    out->rule_id[n] = '\0';
  }
  if (app != nullptr) out->app = *app;
}

namespace {

// Appends s as a JSON string literal (quotes included), escaping per RFC 8259.
void append_json_string(std::string& out, const char* s, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < n; ++i) {
    // Runs of bytes that need no escape go in one append.
    size_t run = i;
    while (run < n && static_cast<unsigned char>(s[run]) >= 0x20 &&
           static_cast<unsigned char>(s[run]) < 0x7f && s[run] != '"' && s[run] != '\\')
      ++run;
    if (run != i) {
      out.append(s + i, run - i);
      i = run;
      if (i == n) break;
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          // Control bytes, DEL and non-ASCII bytes (rule ids are ASCII; never emit
          // invalid UTF-8) become \u00XX.
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// Digits of v, without printf: formatting is most of a record's cost to the reader.
void append_u64(std::string& out, uint64_t v) {
  char buf[20];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(p, static_cast<size_t>(buf + sizeof buf - p));
}

// n digits of v, zero-padded.
void append_fixed(std::string& out, unsigned v, int n) {
  char buf[8];
  for (int i = n - 1; i >= 0; --i, v /= 10) buf[i] = static_cast<char>('0' + v % 10);
  out.append(buf, static_cast<size_t>(n));
}

// "2026-11-27T17:00:00.123456+0000" (UTC, microseconds), like Suricata's EVE. Records
// of one second share its date and time: gmtime_r runs once a second per thread.
void append_timestamp(std::string& out, uint64_t ns) {
  thread_local time_t cached_secs = -1;
  thread_local char cached[64];  // YYYY-MM-DDTHH:MM:SS
  const time_t secs = static_cast<time_t>(ns / 1000000000ull);
  if (secs != cached_secs) {
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  out.push_back('"');
  out.append(cached, 19);
  out.push_back('.');
  append_fixed(out, static_cast<unsigned>((ns % 1000000000ull) / 1000ull), 6);
  out += "+0000\"";
}

void append_ip(std::string& out, uint8_t family, const uint8_t* addr) {
  char buf[INET6_ADDRSTRLEN];
  const char* s = inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, buf, sizeof(buf));
  append_json_string(out, s ? s : "", s ? std::strlen(s) : 0);
}

const char* proto_name(uint8_t proto, char* buf, size_t cap) {
  switch (proto) {
    case kProtoTcp: return "TCP";
    case kProtoUdp: return "UDP";
    case kProtoIcmp: return "ICMP";
    case kProtoIcmpv6: return "IPv6-ICMP";
    default: snprintf(buf, cap, "%u", proto); return buf;
  }
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::allow: return "allow";
    case Verdict::deny: return "deny";
    case Verdict::reject: return "reject";
  }
  return "deny";
}

// Flow state as logged: the TCP state for TCP; for other protocols "new" until the
// remote end answered, then "established".
const char* flow_state_name(const FlowRecord& r) {
  if (r.key.proto == kProtoTcp) return tcp_state_name(r.tcp_state);
  return r.pkts[1] != 0 ? "established" : "new";
}

void append_field(std::string& out, const char* name) {
  out.append(",\"", 2);
  out.append(name);
  out.append("\":", 2);
}

// The contract's words; local rather than l7::app_proto_name() so that formatting a
// record needs nothing of the L7 parsers.
const char* app_proto_word(l7::AppProto a) {
  switch (a) {
    case l7::AppProto::unknown: return "unknown";
    case l7::AppProto::tls: return "tls";
    case l7::AppProto::http: return "http";
    case l7::AppProto::dns: return "dns";
    case l7::AppProto::quic: return "quic";
  }
  return "unknown";
}

// `app_proto`, then the app's object: "tls":{"sni","alpn","ech":true}, "http":
// {"hostname"}, "dns":{"rrname"}, "quic":{"sni"}. An object with nothing to say is
// left out. An IP literal is logged where the name goes (its text is in `name`).
void append_app(std::string& out, const FlowRecord& r) {
  const l7::FlowName& a = r.app;
  if (r.key.proto != kProtoTcp && r.key.proto != kProtoUdp && a.app == l7::AppProto::unknown)
    return;
  const char* word = app_proto_word(a.app);
  append_field(out, "app_proto");
  append_json_string(out, word, std::strlen(word));
  const char* name_field = nullptr;
  switch (a.app) {
    case l7::AppProto::tls: name_field = "sni"; break;
    case l7::AppProto::http: name_field = "hostname"; break;
    case l7::AppProto::dns: name_field = "rrname"; break;
    case l7::AppProto::quic: name_field = "sni"; break;
    case l7::AppProto::unknown: return;
  }
  const bool tls = a.app == l7::AppProto::tls;
  const bool name = a.has_name || a.ip_literal;
  const bool alpn = tls && a.alpn_len != 0;
  const bool ech = tls && a.ech;
  if (!name && !alpn && !ech) return;
  append_field(out, word);
  char sep = '{';
  if (name) {
    out.push_back(sep);
    sep = ',';
    out.push_back('"');
    out += name_field;
    out += "\":";
    append_json_string(out, a.name.buf, std::min<size_t>(a.name.len, l7::kMaxName));
  }
  if (alpn) {
    out.push_back(sep);
    sep = ',';
    out += "\"alpn\":";
    append_json_string(out, a.alpn, std::min<size_t>(a.alpn_len, sizeof(a.alpn) - 1));
  }
  if (ech) {
    out.push_back(sep);
    out += "\"ech\":true";
  }
  out.push_back('}');
}

}  // namespace

std::string flow_record_json(const FlowRecord& r) {
  std::string out;
  out.reserve(640);
  append_flow_record_json(out, r);
  return out;
}

void append_flow_record_json(std::string& out, const FlowRecord& r) {
  out += "{\"timestamp\":";
  append_timestamp(out, r.end_ns);
  out += ",\"event_type\":\"flow\"";
  append_field(out, "flow_id");
  append_u64(out, r.flow_id);
  append_field(out, "src_ip");
  append_ip(out, r.key.family, r.key.inside_ip);
  append_field(out, "src_port");
  append_u64(out, r.key.inside_port);
  append_field(out, "dest_ip");
  append_ip(out, r.key.family, r.key.remote_ip);
  append_field(out, "dest_port");
  append_u64(out, r.key.remote_port);
  char pbuf[8];
  const char* proto = proto_name(r.key.proto, pbuf, sizeof(pbuf));
  append_field(out, "proto");
  append_json_string(out, proto, std::strlen(proto));
  if (r.key.vlan != 0) {
    // Outer tag first, then the inner one; a zero VID is not logged (as Suricata).
    uint32_t outer = (r.key.vlan >> 12) & 0xfff, inner = r.key.vlan & 0xfff;
    append_field(out, "vlan");
    out.push_back('[');
    if (outer != 0) append_u64(out, outer);
    if (inner != 0) {
      if (outer != 0) out.push_back(',');
      append_u64(out, inner);
    }
    out.push_back(']');
  }
  append_app(out, r);
  const char* verdict = verdict_name(r.verdict);
  append_field(out, "verdict");
  append_json_string(out, verdict, std::strlen(verdict));
  append_field(out, "rule_id");
  if (r.rule_index == kNoRule) {
    out += "null";
  } else {
    append_json_string(out, r.rule_id, strnlen(r.rule_id, sizeof(r.rule_id)));
  }
  append_field(out, "policy_version");
  append_u64(out, r.policy_version);
  if (r.limited != 0) {  // refused by its rule's rate limit or quota
    static constexpr const char* kWhy[] = {"", "rate", "quota", "table_full"};
    append_field(out, "limited");
    append_json_string(out, kWhy[r.limited & 3], std::strlen(kWhy[r.limited & 3]));
  }
  if (r.has_report) {  // what a report-only ruleset would have done
    const char* v = verdict_name(static_cast<Verdict>(r.report_verdict));
    out += ",\"report\":{\"rule_id\":";
    append_json_string(out, r.report_rule_id, strnlen(r.report_rule_id, sizeof r.report_rule_id));
    append_field(out, "verdict");
    append_json_string(out, v, std::strlen(v));
    out.push_back('}');
  }

  out += ",\"flow\":{\"pkts_toserver\":";
  append_u64(out, r.pkts[0]);
  append_field(out, "pkts_toclient");
  append_u64(out, r.pkts[1]);
  append_field(out, "bytes_toserver");
  append_u64(out, r.bytes[0]);
  append_field(out, "bytes_toclient");
  append_u64(out, r.bytes[1]);
  append_field(out, "start");
  append_timestamp(out, r.start_ns);
  append_field(out, "end");
  append_timestamp(out, r.end_ns);
  const char* state = flow_state_name(r);
  append_field(out, "state");
  append_json_string(out, state, std::strlen(state));
  const char* reason = end_reason_name(r.reason);
  append_field(out, "reason");
  append_json_string(out, reason, std::strlen(reason));
  if (r.ttfb_us != 0) {  // the flow had a response: its time to first byte
    append_field(out, "ttfb_us");
    append_u64(out, r.ttfb_us);
  }
  out.push_back('}');

  if (r.key.proto == kProtoTcp) {
    out += ",\"tcp\":{\"rtt_us\":";
    append_u64(out, r.rtt_us);
    append_field(out, "resets");
    append_u64(out, r.resets);
    if (r.rst != 0) {  // who reset the flow (any of: client, server, egw)
      out += ",\"rst_by\":[";
      bool first = true;
      for (auto [bit, who] : {std::pair{kRstFromClient, "\"client\""},
                              std::pair{kRstFromServer, "\"server\""},
                              std::pair{kRstFromEgw, "\"egw\""}}) {
        if (!(r.rst & bit)) continue;
        if (!first) out.push_back(',');
        out += who;
        first = false;
      }
      out.push_back(']');
    }
    out.push_back('}');
  }
  out.push_back('}');
}

}  // namespace egw
