// Tests of flow record formatting: each case builds a flow entry, makes its record,
// formats it and parses the JSON line back with jsoncpp to compare every field.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <json/json.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/flow_log.h"
#include "dataplane/parse.h"

namespace egw {
namespace {

struct FlowLogCase {
  const char* description;
  uint8_t family;
  const char* inside_ip;
  const char* remote_ip;
  uint16_t inside_port, remote_port;
  uint8_t proto;
  uint32_t vlan;
  Verdict verdict;
  uint16_t rule_index;
  const char* rule_id;  // as passed to make_flow_record
  TcpState tcp_state;
  EndReason reason;
  uint64_t pkts_out, pkts_in;
  // Expected
  const char* proto_name;
  Json::Value rule_id_json;  // null or the string
  std::vector<unsigned> vlans;
  const char* state;
  const char* dest_text = nullptr;  // expected dest_ip when it differs from remote_ip
};

constexpr uint64_t kStart = 1795798800123456789ull;  // 2026-11-27T17:00:00.123456789Z
constexpr uint64_t kEnd = kStart + 2500000000ull;    // 2.5 s later

const FlowLogCase kCases[] = {
    {"allowed IPv4 TCP flow closed normally", 4, "198.18.1.7", "198.19.5.5", 40000, 443,
     kProtoTcp, 0, Verdict::allow, 3, "stripe", TcpState::closed, EndReason::closed, 9, 7,
     "TCP", Json::Value("stripe"), {}, nullptr},
    {"denied by the default action: rule_id null", 4, "198.18.1.7", "198.19.5.5", 40001, 22,
     kProtoTcp, 0, Verdict::deny, kNoRule, "", TcpState::syn_sent, EndReason::timeout, 1, 0,
     "TCP", Json::Value(Json::nullValue), {}, nullptr},
    {"rejected UDP, no reply: state new", 4, "198.18.2.1", "198.19.0.9", 5353, 53, kProtoUdp,
     0, Verdict::reject, 0, "no-dns", TcpState::none, EndReason::timeout, 1, 0, "UDP",
     Json::Value("no-dns"), {}, "new"},
    {"UDP with replies: state established", 4, "198.18.2.1", "198.19.0.53", 5353, 53,
     kProtoUdp, 0, Verdict::allow, 1, "dns", TcpState::none, EndReason::shutdown, 2, 2, "UDP",
     Json::Value("dns"), {}, "established"},
    {"ICMP echo", 4, "198.18.1.1", "198.19.0.1", 77, 0, kProtoIcmp, 0, Verdict::allow, 0,
     "ping", TcpState::none, EndReason::timeout, 3, 3, "ICMP", Json::Value("ping"), {},
     "established"},
    {"IPv6 TCP: canonical address text", 6, "2001:2:0:1::7", "2001:2:0:ff:0:0:0:1", 50000, 443,
     kProtoTcp, 0, Verdict::allow, 2, "v6", TcpState::established, EndReason::evicted, 4, 3,
     "TCP", Json::Value("v6"), {}, nullptr, "2001:2:0:ff::1"},
    {"ICMPv6 is IPv6-ICMP", 6, "2001:2:0:1::7", "2001:2::1", 9, 0, kProtoIcmpv6, 0,
     Verdict::allow, 0, "ping6", TcpState::none, EndReason::timeout, 1, 0, "IPv6-ICMP",
     Json::Value("ping6"), {}, "new"},
    {"other protocol: its number as a string", 4, "198.18.1.7", "198.19.0.1", 0, 0, 47, 0,
     Verdict::deny, kNoRule, nullptr, TcpState::none, EndReason::timeout, 1, 0, "47",
     Json::Value(Json::nullValue), {}, "new"},
    {"single VLAN tag", 4, "198.18.1.7", "198.19.0.1", 1000, 80, kProtoTcp, 100,
     Verdict::allow, 0, "web", TcpState::closed, EndReason::reset, 2, 1, "TCP",
     Json::Value("web"), {100}, nullptr},
    {"QinQ: outer then inner", 4, "198.18.1.7", "198.19.0.1", 1000, 80, kProtoTcp,
     (200u << 12) | 300u, Verdict::allow, 0, "web", TcpState::closed, EndReason::closed, 2, 1,
     "TCP", Json::Value("web"), {200, 300}, nullptr},
    {"rule id with characters that need escaping", 4, "198.18.1.7", "198.19.0.1", 1, 2,
     kProtoUdp, 0, Verdict::allow, 5, "a\"b\\c\n\x01", TcpState::none, EndReason::timeout, 1,
     0, "UDP", Json::Value("a\"b\\c\n\x01"), {}, "new"},
};

FlowEntry make_entry(const FlowLogCase& c) {
  FlowEntry e{};
  e.key.family = c.family;
  int af = c.family == 6 ? AF_INET6 : AF_INET;
  EXPECT_EQ(inet_pton(af, c.inside_ip, e.key.inside_ip), 1) << c.inside_ip;
  EXPECT_EQ(inet_pton(af, c.remote_ip, e.key.remote_ip), 1) << c.remote_ip;
  e.key.inside_port = c.inside_port;
  e.key.remote_port = c.remote_port;
  e.key.proto = c.proto;
  e.key.vlan = c.vlan;
  e.verdict = c.verdict;
  e.rule_index = c.rule_index;
  e.tcp_state = c.tcp_state;
  e.policy_version = 7;
  e.flow_id = 123456789012ull;
  e.start_ns = kStart;
  e.last_seen_ns = kEnd;
  e.pkts[0] = c.pkts_out;
  e.pkts[1] = c.pkts_in;
  e.bytes[0] = c.pkts_out * 100;
  e.bytes[1] = c.pkts_in * 1000;
  e.rtt_us = 180;
  e.resets = c.reason == EndReason::reset ? 1 : 0;
  return e;
}

TEST(FlowLog, RecordsFormatAsContractJson) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.description);
    FlowEntry e = make_entry(c);
    auto rec = std::make_unique<FlowRecord>();
    make_flow_record(e, c.reason, c.rule_id, nullptr, rec.get());
    std::string line = flow_record_json(*rec);
    EXPECT_EQ(line.find('\n'), std::string::npos) << "one line: " << line;

    Json::CharReaderBuilder b;
    b["strictRoot"] = true;
    b["rejectDupKeys"] = true;
    Json::Value v;
    std::string errs;
    std::unique_ptr<Json::CharReader> reader(b.newCharReader());
    ASSERT_TRUE(reader->parse(line.data(), line.data() + line.size(), &v, &errs))
        << errs << " in " << line;

    EXPECT_EQ(v["timestamp"].asString(), "2026-11-27T17:00:02.623456+0000");
    EXPECT_EQ(v["event_type"].asString(), "flow");
    EXPECT_EQ(v["flow_id"].asUInt64(), 123456789012ull);
    EXPECT_EQ(v["src_ip"].asString(), c.inside_ip);
    EXPECT_EQ(v["dest_ip"].asString(), c.dest_text ? c.dest_text : c.remote_ip);
    EXPECT_EQ(v["src_port"].asUInt(), c.inside_port);
    EXPECT_EQ(v["dest_port"].asUInt(), c.remote_port);
    EXPECT_EQ(v["proto"].asString(), c.proto_name);
    if (c.proto == kProtoTcp || c.proto == kProtoUdp) {
      EXPECT_EQ(v["app_proto"].asString(), "unknown") << "no app given: unknown";
    } else {
      EXPECT_FALSE(v.isMember("app_proto")) << "as Suricata: no app_proto for " << +c.proto;
    }
    for (const char* app : {"tls", "http", "dns", "quic"}) EXPECT_FALSE(v.isMember(app));
    EXPECT_EQ(v["verdict"].asString(), c.verdict == Verdict::allow    ? "allow"
                                       : c.verdict == Verdict::deny   ? "deny"
                                                                      : "reject");
    EXPECT_EQ(v["rule_id"], c.rule_id_json);
    EXPECT_EQ(v["policy_version"].asUInt64(), 7u);
    if (c.vlans.empty()) {
      EXPECT_FALSE(v.isMember("vlan"));
    } else {
      ASSERT_TRUE(v["vlan"].isArray());
      ASSERT_EQ(v["vlan"].size(), c.vlans.size());
      for (unsigned i = 0; i < c.vlans.size(); ++i)
        EXPECT_EQ(v["vlan"][i].asUInt(), c.vlans[i]);
    }
    const Json::Value& f = v["flow"];
    EXPECT_EQ(f["pkts_toserver"].asUInt64(), c.pkts_out);
    EXPECT_EQ(f["pkts_toclient"].asUInt64(), c.pkts_in);
    EXPECT_EQ(f["bytes_toserver"].asUInt64(), c.pkts_out * 100);
    EXPECT_EQ(f["bytes_toclient"].asUInt64(), c.pkts_in * 1000);
    EXPECT_EQ(f["start"].asString(), "2026-11-27T17:00:00.123456+0000");
    EXPECT_EQ(f["end"].asString(), "2026-11-27T17:00:02.623456+0000");
    EXPECT_EQ(f["reason"].asString(), end_reason_name(c.reason));
    if (c.proto == kProtoTcp) {
      EXPECT_EQ(f["state"].asString(), tcp_state_name(c.tcp_state));
      ASSERT_TRUE(v.isMember("tcp"));
      EXPECT_EQ(v["tcp"]["rtt_us"].asUInt(), 180u);
      EXPECT_EQ(v["tcp"]["resets"].asUInt(), c.reason == EndReason::reset ? 1u : 0u);
    } else {
      EXPECT_EQ(f["state"].asString(), c.state);
      EXPECT_FALSE(v.isMember("tcp"));
    }
  }
}

// A flow's FlowName as the L7 parsers leave it, and the exact JSON text expected from
// "proto" to "verdict" (field order, omissions and escaping).
struct AppCase {
  const char* description;
  uint8_t proto;
  l7::AppProto app;
  bool has_name, ip_literal, ech;
  const char* name;  // copied into FlowName::name as is (nullptr: empty)
  const char* alpn;  // nullptr: none
  const char* between;
};

const AppCase kAppCases[] = {
    {"TLS with SNI", kProtoTcp, l7::AppProto::tls, true, false, false, "api.stripe.com", nullptr,
     R"("proto":"TCP","app_proto":"tls","tls":{"sni":"api.stripe.com"},"verdict")"},
    {"TLS with SNI, ALPN and ECH (the outer SNI)", kProtoTcp, l7::AppProto::tls, true, false,
     true, "public.example.com", "h2",
     R"("proto":"TCP","app_proto":"tls",)"
     R"("tls":{"sni":"public.example.com","alpn":"h2","ech":true},"verdict")"},
    {"TLS ECH without SNI", kProtoTcp, l7::AppProto::tls, false, false, true, nullptr, nullptr,
     R"("proto":"TCP","app_proto":"tls","tls":{"ech":true},"verdict")"},
    {"TLS ALPN only", kProtoTcp, l7::AppProto::tls, false, false, false, nullptr, "http/1.1",
     R"("proto":"TCP","app_proto":"tls","tls":{"alpn":"http/1.1"},"verdict")"},
    {"TLS IP literal as SNI is logged", kProtoTcp, l7::AppProto::tls, false, true, false,
     "192.0.2.10", nullptr,
     R"("proto":"TCP","app_proto":"tls","tls":{"sni":"192.0.2.10"},"verdict")"},
    {"TLS without SNI, ALPN or ECH: no tls object", kProtoTcp, l7::AppProto::tls, false, false,
     false, nullptr, nullptr, R"("proto":"TCP","app_proto":"tls","verdict")"},
    {"ALPN bytes are escaped (the parser does not validate them)", kProtoTcp, l7::AppProto::tls,
     false, false, false, nullptr, "h\"2\\\x01\xff",
     R"("proto":"TCP","app_proto":"tls","tls":{"alpn":"h\"2\\\u0001\u00ff"},"verdict")"},
    {"HTTP hostname", kProtoTcp, l7::AppProto::http, true, false, false, "www.example.org",
     nullptr,
     R"("proto":"TCP","app_proto":"http","http":{"hostname":"www.example.org"},"verdict")"},
    {"HTTP IPv6 literal is logged", kProtoTcp, l7::AppProto::http, false, true, false,
     "2001:db8::1", nullptr,
     R"("proto":"TCP","app_proto":"http","http":{"hostname":"2001:db8::1"},"verdict")"},
    {"HTTP ignores the TLS-only fields", kProtoTcp, l7::AppProto::http, true, false, true, "a.b",
     "h2", R"("proto":"TCP","app_proto":"http","http":{"hostname":"a.b"},"verdict")"},
    {"HTTP without a name: no http object", kProtoTcp, l7::AppProto::http, false, false, false,
     nullptr, nullptr, R"("proto":"TCP","app_proto":"http","verdict")"},
    {"DNS over UDP", kProtoUdp, l7::AppProto::dns, true, false, false, "_srv._tcp.example.com",
     nullptr,
     R"("proto":"UDP","app_proto":"dns","dns":{"rrname":"_srv._tcp.example.com"},"verdict")"},
    {"DNS over TCP", kProtoTcp, l7::AppProto::dns, true, false, false, "example.com", nullptr,
     R"("proto":"TCP","app_proto":"dns","dns":{"rrname":"example.com"},"verdict")"},
    {"QUIC SNI", kProtoUdp, l7::AppProto::quic, true, false, false, "quic.example.net", nullptr,
     R"("proto":"UDP","app_proto":"quic","quic":{"sni":"quic.example.net"},"verdict")"},
    {"a name is escaped", kProtoTcp, l7::AppProto::http, true, false, false, "a\"b\\c\n", nullptr,
     R"("proto":"TCP","app_proto":"http","http":{"hostname":"a\"b\\c\n"},"verdict")"},
    {"name bytes without has_name or ip_literal are not logged", kProtoTcp, l7::AppProto::tls,
     false, false, false, "stale.example", nullptr,
     R"("proto":"TCP","app_proto":"tls","verdict")"},
    {"unknown app on UDP: nothing but app_proto", kProtoUdp, l7::AppProto::unknown, true, false,
     true, "x.y", "h2", R"("proto":"UDP","app_proto":"unknown","verdict")"},
    {"ICMP: no app_proto", kProtoIcmp, l7::AppProto::unknown, false, false, false, nullptr,
     nullptr, R"("proto":"ICMP","verdict")"},
};

TEST(FlowLog, AppFieldsFollowTheContract) {
  for (const auto& c : kAppCases) {
    SCOPED_TRACE(c.description);
    FlowLogCase base = kCases[0];
    base.proto = c.proto;
    l7::FlowName app;
    app.app = c.app;
    app.has_name = c.has_name;
    app.ip_literal = c.ip_literal;
    app.ech = c.ech;
    if (c.name != nullptr) {
      app.name.len = static_cast<uint8_t>(std::strlen(c.name));
      std::memcpy(app.name.buf, c.name, app.name.len);
    }
    if (c.alpn != nullptr) {
      app.alpn_len = static_cast<uint8_t>(std::strlen(c.alpn));
      std::memcpy(app.alpn, c.alpn, app.alpn_len);
    }
    auto rec = std::make_unique<FlowRecord>();
    make_flow_record(make_entry(base), EndReason::closed, "stripe", &app, rec.get());
    const std::string line = flow_record_json(*rec);
    EXPECT_NE(line.find(c.between), std::string::npos) << "want " << c.between << "\nin " << line;

    Json::CharReaderBuilder b;
    b["strictRoot"] = true;
    b["rejectDupKeys"] = true;
    Json::Value v;
    std::string errs;
    std::unique_ptr<Json::CharReader> reader(b.newCharReader());
    ASSERT_TRUE(reader->parse(line.data(), line.data() + line.size(), &v, &errs))
        << errs << " in " << line;
    if (c.name != nullptr && (c.has_name || c.ip_literal) && c.app != l7::AppProto::unknown) {
      const std::string word = v["app_proto"].asString();
      const char* field = word == "http" ? "hostname" : word == "dns" ? "rrname" : "sni";
      EXPECT_EQ(v[word][field].asString(), c.name) << "the name reads back";
    }
  }
}

TEST(FlowLog, LongestNameAndAlpnAreLoggedWhole) {
  std::string name;
  while (name.size() + 4 <= l7::kMaxName) name += "abc.";
  name += std::string(l7::kMaxName - name.size(), 'z');
  l7::FlowName app;
  app.app = l7::AppProto::tls;
  app.has_name = true;
  app.name.len = static_cast<uint8_t>(name.size());
  std::memcpy(app.name.buf, name.data(), name.size());
  app.alpn_len = 32;
  std::memset(app.alpn, 'p', 32);
  auto rec = std::make_unique<FlowRecord>();
  make_flow_record(make_entry(kCases[0]), EndReason::closed, "stripe", &app, rec.get());
  EXPECT_NE(flow_record_json(*rec).find("\"tls\":{\"sni\":\"" + name + "\",\"alpn\":\"" +
                                        std::string(32, 'p') + "\"}"),
            std::string::npos);
}

// A record is plain bytes: a byte copy (the ring, the shared-memory snapshot) keeps
// the app and its name.
TEST(FlowLog, RecordCopiedAsBytesKeepsTheApp) {
  l7::FlowName app;
  app.app = l7::AppProto::http;
  app.has_name = true;
  app.name.len = 11;
  std::memcpy(app.name.buf, "example.com", 11);
  auto rec = std::make_unique<FlowRecord>();
  make_flow_record(make_entry(kCases[0]), EndReason::closed, "stripe", &app, rec.get());
  std::vector<unsigned char> bytes(sizeof(FlowRecord));
  std::memcpy(bytes.data(), rec.get(), sizeof(FlowRecord));
  auto copy = std::make_unique<FlowRecord>();
  std::memcpy(static_cast<void*>(copy.get()), bytes.data(), sizeof(FlowRecord));
  EXPECT_EQ(flow_record_json(*copy), flow_record_json(*rec));
  EXPECT_NE(flow_record_json(*copy).find(R"("http":{"hostname":"example.com"})"),
            std::string::npos);
}

TEST(FlowLog, LongRuleIdIsTruncatedAndTerminated) {
  FlowEntry e = make_entry(kCases[0]);
  std::string long_id(200, 'x');
  auto rec = std::make_unique<FlowRecord>();
  make_flow_record(e, EndReason::closed, long_id.c_str(), nullptr, rec.get());
  EXPECT_EQ(std::strlen(rec->rule_id), sizeof(rec->rule_id) - 1);
  EXPECT_NE(flow_record_json(*rec).find("\"rule_id\":\"" + std::string(63, 'x') + "\""),
            std::string::npos);
}

TEST(FlowLog, EndReasonNamesAreTheContractWords) {
  const struct {
    EndReason r;
    const char* name;
  } kNames[] = {{EndReason::timeout, "timeout"},
                {EndReason::closed, "closed"},
                {EndReason::evicted, "evicted"},
                {EndReason::shutdown, "shutdown"}};
  for (const auto& n : kNames) EXPECT_STREQ(end_reason_name(n.r), n.name);
}

}  // namespace
}  // namespace egw
