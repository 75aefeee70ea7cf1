// Unit tests of TCP state and window tracking (checklist 29-32): scenarios as tables
// of segments with the expected verdict, drop reason and state after each one.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/counters.h"
#include "dataplane/flow_table.h"
#include "dataplane/parse.h"

namespace egw {
namespace {

constexpr uint8_t S = kTcpSyn, A = kTcpAck, F = kTcpFin, R = kTcpRst, P = kTcpPsh;
constexpr uint8_t kNoWs = 0xff;
constexpr TcpState kNone = TcpState::none, kSynSent = TcpState::syn_sent,
                   kSynRecv = TcpState::syn_recv, kEst = TcpState::established,
                   kFinWait = TcpState::fin_wait, kClosing = TcpState::closing,
                   kClosed = TcpState::closed;
constexpr DropReason kOk = DropReason::count;  // "passes"
constexpr DropReason kInvalid = DropReason::tcp_invalid, kWindow = DropReason::tcp_out_of_window;

// One segment. seq is relative to the sender's ISN, ack to the receiver's ISN
// (absolute 0 when the ACK flag is clear). dir 0 = outbound, 1 = inbound.
struct Step {
  const char* desc;
  int dir;
  uint8_t flags;
  uint32_t seq;
  uint32_t ack;
  uint16_t win;
  uint16_t len;
  uint8_t ws;
  DropReason expect;  // kOk when the segment passes
  TcpState state;     // state afterwards
};

struct Scenario {
  const char* desc;
  uint32_t c_isn, s_isn;  // inside (client) and remote (server) initial sequence numbers
  std::vector<Step> steps;
};

ParsedPacket segment(const Scenario& sc, const Step& st) {
  ParsedPacket p;
  p.l34.family = 4;
  p.l34.proto = kProtoTcp;
  p.l4_offset = 34;
  p.tcp_flags = st.flags;
  const uint32_t own = st.dir == 0 ? sc.c_isn : sc.s_isn;
  const uint32_t peer = st.dir == 0 ? sc.s_isn : sc.c_isn;
  p.tcp_seq = own + st.seq;
  p.tcp_ack = (st.flags & kTcpAck) ? peer + st.ack : 0;
  p.tcp_window = st.win;
  p.payload_len = st.len;
  p.tcp_wscale = st.ws;
  return p;
}

// Runs a scenario the way the worker does: the first (outbound SYN) step creates the
// flow with tcp_track_init and is then tracked like every later segment.
void run(const Scenario& sc, FlowEntry* out = nullptr) {
  SCOPED_TRACE(sc.desc);
  FlowEntry e{};
  uint64_t now = 1000000;
  for (size_t i = 0; i < sc.steps.size(); ++i) {
    const Step& st = sc.steps[i];
    SCOPED_TRACE(std::to_string(i) + ": " + st.desc);
    const ParsedPacket p = segment(sc, st);
    if (i == 0) tcp_track_init(e, p, now);
    DropReason why = kOk;
    const bool pass = tcp_track(e, st.dir, p, now, &why);
    EXPECT_EQ(pass, st.expect == kOk);
    if (!pass) {
      EXPECT_EQ(static_cast<int>(why), static_cast<int>(st.expect));
    }
    EXPECT_STREQ(tcp_state_name(e.tcp_state), tcp_state_name(st.state));
    now += 1000000;
  }
  if (out != nullptr) *out = e;
}

// The Linux curl handshake (wscale 7 both ways), as the first steps of many scenarios.
std::vector<Step> handshake(std::vector<Step> more) {
  std::vector<Step> s = {
      {"SYN", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
      {"SYN-ACK", 1, S | A, 0, 1, 65160, 0, 7, kOk, kSynRecv},
      {"ACK", 0, A, 1, 1, 502, 0, kNoWs, kOk, kEst},
  };
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

TEST(TcpTrack, Scenarios) {
  const Scenario cases[] = {
      {"curl: handshake, request, response, FIN close from the client", 1000000000u, 3000000000u,
       handshake({
           {"GET request", 0, P | A, 1, 1, 502, 78, kNoWs, kOk, kEst},
           {"server ACKs", 1, A, 1, 79, 509, 0, kNoWs, kOk, kEst},
           {"response 1", 1, P | A, 1, 79, 509, 1448, kNoWs, kOk, kEst},
           {"response 2", 1, A, 1449, 79, 509, 1448, kNoWs, kOk, kEst},
           {"client ACKs both", 0, A, 79, 2897, 501, 0, kNoWs, kOk, kEst},
           {"retransmitted response 1", 1, A, 1, 79, 509, 1448, kNoWs, kOk, kEst},
           {"client FIN", 0, F | A, 79, 2897, 501, 0, kNoWs, kOk, kFinWait},
           {"server FIN+ACK", 1, F | A, 2897, 80, 509, 0, kNoWs, kOk, kClosing},
           {"final ACK (stays closing: TIME_WAIT-like)", 0, A, 80, 2898, 501, 0, kNoWs, kOk,
            kClosing},
           {"retransmitted server FIN", 1, F | A, 2897, 80, 509, 0, kNoWs, kOk, kClosing},
       })},
      {"sequence numbers wrap around 2^32", 0xffffff00u, 0xfffffff0u,
       handshake({
           {"request crosses the wrap", 0, P | A, 1, 1, 502, 1000, kNoWs, kOk, kEst},
           {"response crosses the wrap", 1, P | A, 1, 1001, 509, 1448, kNoWs, kOk, kEst},
           {"server FIN first", 1, F | A, 1449, 1001, 509, 0, kNoWs, kOk, kFinWait},
           {"client FIN", 0, F | A, 1001, 1450, 501, 0, kNoWs, kOk, kClosing},
       })},
      {"simultaneous close", 5, 7,
       handshake({
           {"client FIN", 0, F | A, 1, 1, 502, 0, kNoWs, kOk, kFinWait},
           {"server FIN crossing it", 1, F | A, 1, 1, 509, 0, kNoWs, kOk, kClosing},
           {"client ACK", 0, A, 2, 2, 502, 0, kNoWs, kOk, kClosing},
           {"server ACK", 1, A, 2, 2, 509, 0, kNoWs, kOk, kClosing},
       })},
      {"SYN retransmitted with the same sequence number",
       100,
       200,
       {
           {"SYN", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
           {"SYN again", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
           {"SYN-ACK", 1, S | A, 0, 1, 65160, 0, 7, kOk, kSynRecv},
           {"SYN once more after the SYN-ACK: same ISN passes", 0, S, 0, 0, 64240, 0, 7, kOk,
            kSynRecv},
           {"SYN with another ISN after the SYN-ACK", 0, S, 5000, 0, 64240, 0, 7, kInvalid,
            kSynRecv},
           {"SYN-ACK retransmitted", 1, S | A, 0, 1, 65160, 0, 7, kOk, kSynRecv},
           {"SYN-ACK with another ISN", 1, S | A, 777, 1, 65160, 0, 7, kInvalid, kSynRecv},
           {"ACK", 0, A, 1, 1, 502, 0, kNoWs, kOk, kEst},
       }},
      {"SYN re-sent with a new sequence number: a new attempt",
       1000,
       9000,
       {
           {"SYN", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
           {"new SYN, ISN + 100000", 0, S, 100000, 0, 64240, 0, 7, kOk, kSynSent},
           {"SYN-ACK to the old attempt", 1, S | A, 0, 1, 65160, 0, 7, kInvalid, kSynSent},
           {"SYN-ACK to the new one", 1, S | A, 0, 100001, 65160, 0, 7, kOk, kSynRecv},
           {"ACK", 0, A, 100001, 1, 502, 0, kNoWs, kOk, kEst},
       }},
      {"SYN-ACK with a wrong ack",
       1000,
       9000,
       {
           {"SYN", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
           {"ack = ISN", 1, S | A, 0, 0, 65160, 0, 7, kInvalid, kSynSent},
           {"ack = ISN + 2", 1, S | A, 0, 2, 65160, 0, 7, kInvalid, kSynSent},
           {"ack far away", 1, S | A, 0, 0x80000000u, 65160, 0, 7, kInvalid, kSynSent},
           {"the right one still works", 1, S | A, 0, 1, 65160, 0, 7, kOk, kSynRecv},
       }},
      {"unsolicited or early segments while the SYN is unanswered",
       1000,
       9000,
       {
           {"SYN", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
           {"inbound ACK", 1, A, 0, 1, 65160, 0, kNoWs, kInvalid, kSynSent},
           {"inbound data", 1, P | A, 0, 1, 65160, 100, kNoWs, kInvalid, kSynSent},
           {"inbound SYN (simultaneous open)", 1, S, 0, 0, 65160, 0, 7, kInvalid, kSynSent},
           {"outbound ACK before any SYN-ACK", 0, A, 1, 1, 502, 0, kNoWs, kInvalid, kSynSent},
           {"outbound SYN-ACK", 0, S | A, 0, 1, 502, 0, 7, kInvalid, kSynSent},
       }},
      {"RST while the SYN is unanswered",
       1000,
       9000,
       {
           {"SYN", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
           {"RST without ACK", 1, R, 0, 0, 0, 0, kNoWs, kWindow, kSynSent},
           {"RST+ACK acking ISN", 1, R | A, 0, 0, 0, 0, kNoWs, kWindow, kSynSent},
           {"RST+ACK acking ISN + 2", 1, R | A, 0, 2, 0, 0, kNoWs, kWindow, kSynSent},
           {"RST+ACK acking ISN + 1: connection refused", 1, R | A, 0, 1, 0, 0, kNoWs, kOk,
            kClosed},
           {"data after the reset", 0, A, 1, 1, 502, 10, kNoWs, kInvalid, kClosed},
       }},
      {"RST in established", 1000, 9000,
       handshake({
           {"data", 1, P | A, 1, 1, 509, 1000, kNoWs, kOk, kEst},
           {"RST far right of the window", 1, R, 5000000, 0, 0, 0, kNoWs, kWindow, kEst},
           {"RST far left of the window", 1, R, 0x90000000u, 0, 0, 0, kNoWs, kWindow, kEst},
           {"outbound RST out of window", 0, R | A, 3000000, 1001, 0, 0, kNoWs, kWindow, kEst},
           {"RST+ACK acking unsent data", 1, R | A, 1001, 1000, 0, 0, kNoWs, kWindow, kEst},
           {"data still flows", 0, A, 1, 1001, 502, 0, kNoWs, kOk, kEst},
           {"in-window RST", 1, R, 1001, 0, 0, 0, kNoWs, kOk, kClosed},
           {"in-window RST again", 1, R, 1001, 0, 0, 0, kNoWs, kOk, kClosed},
           {"data after the reset", 1, A, 1001, 1, 509, 10, kNoWs, kInvalid, kClosed},
       })},
      {"outbound RST inside the window", 1000, 9000,
       handshake({
           {"RST+ACK from the client", 0, R | A, 1, 1, 0, 0, kNoWs, kOk, kClosed},
       })},
      {"out-of-window data and acks", 1000, 9000,
       handshake({
           {"beyond the receiver's window (65160 unscaled on SYN)", 0, P | A, 70000, 1, 502, 100,
            kNoWs, kWindow, kEst},
           {"far behind (old data)", 1, P | A, 0xf0000000u, 1, 509, 100, kNoWs, kWindow, kEst},
           {"acks data never sent", 0, A, 1, 500, 502, 0, kNoWs, kWindow, kEst},
           {"ack far behind", 1, A, 1, 0x80000000u, 509, 0, kNoWs, kWindow, kEst},
           {"in-window data still passes", 0, P | A, 1, 1, 502, 100, kNoWs, kOk, kEst},
           {"FIN out of window changes nothing", 1, F | A, 900000, 101, 509, 0, kNoWs, kWindow,
            kEst},
       })},
      {"SYN in established", 1000, 9000,
       handshake({
           {"outbound SYN, same ISN", 0, S, 0, 0, 64240, 0, 7, kInvalid, kEst},
           {"outbound SYN, new ISN", 0, S, 12345, 0, 64240, 0, 7, kInvalid, kEst},
           {"inbound SYN", 1, S, 0, 0, 64240, 0, 7, kInvalid, kEst},
           {"inbound SYN-ACK", 1, S | A, 0, 1, 65160, 0, 7, kInvalid, kEst},
           {"data still flows", 0, P | A, 1, 1, 502, 10, kNoWs, kOk, kEst},
       })},
      {"invalid flag combinations", 1000, 9000,
       handshake({
           {"no flags", 0, 0, 1, 1, 502, 0, kNoWs, kInvalid, kEst},
           {"PSH only", 0, P, 1, 1, 502, 10, kNoWs, kInvalid, kEst},
           {"SYN+FIN", 0, S | F, 1, 1, 502, 0, kNoWs, kInvalid, kEst},
           {"SYN+RST", 1, S | R, 1, 1, 502, 0, kNoWs, kInvalid, kEst},
           {"SYN+FIN+ACK", 1, S | F | A, 1, 1, 502, 0, kNoWs, kInvalid, kEst},
           {"FIN without ACK (FIN scan)", 0, F, 1, 0, 502, 0, kNoWs, kInvalid, kEst},
           {"RST+FIN+ACK", 1, R | F | A, 1, 1, 502, 0, kNoWs, kInvalid, kEst},
           {"Xmas tree", 1, F | P | kTcpUrg, 1, 0, 502, 0, kNoWs, kInvalid, kEst},
       })},
      {"window scaling: both SYNs carry it, 64 KB window << 7", 1000, 9000,
       handshake({
           {"client advertises 1000 << 7 = 128000", 0, A, 1, 1, 1000, 0, kNoWs, kOk, kEst},
           {"server sends 120000 bytes ahead (within the scaled window)", 1, A, 120001, 1, 509,
            1448, kNoWs, kOk, kEst},
           {"but not beyond it", 1, A, 130000, 1, 509, 1448, kNoWs, kWindow, kEst},
       })},
      {"window scaling: only the client offers it, so neither side scales",
       1000,
       9000,
       {
           {"SYN wscale 7", 0, S, 0, 0, 64240, 0, 7, kOk, kSynSent},
           {"SYN-ACK without wscale", 1, S | A, 0, 1, 65160, 0, kNoWs, kOk, kSynRecv},
           {"ACK window 1000 (not scaled)", 0, A, 1, 1, 1000, 0, kNoWs, kOk, kEst},
           {"server 2000 bytes ahead: beyond 1 + 1000", 1, A, 2001, 1, 509, 100, kNoWs, kWindow,
            kEst},
           {"server within the window", 1, A, 1, 1, 509, 1000, kNoWs, kOk, kEst},
       }},
      {"zero window probe", 1000, 9000,
       handshake({
           {"client closes its window", 0, A, 1, 1, 0, 0, kNoWs, kOk, kEst},
           {"one-byte probe at the edge", 1, A, 1, 1, 509, 1, kNoWs, kOk, kEst},
           {"the window never shrinks below what was advertised", 1, A, 1000, 1, 509, 1, kNoWs, kOk,
            kEst},
           {"segment past the largest edge ever advertised (1 + 502 << 7)", 1, A, 64257, 1, 509, 1,
            kNoWs, kOk, kEst},
           {"one byte further", 1, A, 64258, 1, 509, 1, kNoWs, kWindow, kEst},
       })},
      {"fast open: data on the SYN",
       1000,
       9000,
       {
           {"SYN with 200 bytes", 0, S, 0, 0, 64240, 200, 7, kOk, kSynSent},
           {"SYN-ACK acking the data", 1, S | A, 0, 201, 65160, 0, 7, kOk, kSynRecv},
           {"ACK", 0, A, 201, 1, 502, 0, kNoWs, kOk, kEst},
       }},
  };
  for (const Scenario& sc : cases) run(sc);
}

TEST(TcpTrack, HandshakeRttAndResets) {
  // The RTT runs from the last outbound SYN (a retransmission restarts it) to the first
  // SYN-ACK; the worker is told of the RTT and of each RST through e.timing.
  struct Case {
    const char* name;
    uint64_t resend_at;  // a retransmitted SYN at this time (0: none)
    int rst_dir;         // the end that resets: 0 client, 1 server
    uint32_t want_rtt;
    uint8_t want_rst_bit;
  } cases[] = {
      {"first SYN answered", 0, 1, 180, kRstFromServer},
      {"retransmitted SYN answered", 5000000 + 100000, 1, 80, kRstFromServer},
      {"client resets", 0, 0, 180, kRstFromClient},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FlowEntry e{};
    e.start_ns = 5000000;
    ParsedPacket syn;
    syn.l34.proto = kProtoTcp;
    syn.tcp_flags = S;
    syn.tcp_seq = 10;
    syn.tcp_window = 64240;
    syn.tcp_wscale = 7;
    tcp_track_init(e, syn, 5000000);
    EXPECT_EQ(e.mark_us, 0u);
    DropReason why;
    ASSERT_TRUE(tcp_track(e, 0, syn, 5000000, &why));
    if (c.resend_at != 0) {
      ASSERT_TRUE(tcp_track(e, 0, syn, c.resend_at, &why));
    }
    ParsedPacket sa = syn;
    sa.tcp_flags = S | A;
    sa.tcp_seq = 70;
    sa.tcp_ack = 11;
    ASSERT_TRUE(tcp_track(e, 1, sa, 5000000 + 180000, &why));  // 180 us after the first SYN
    EXPECT_EQ(e.rtt_us, c.want_rtt);
    EXPECT_EQ(e.timing & kTimingRtt, kTimingRtt);
    e.timing = 0;  // the worker took the event
    ASSERT_TRUE(tcp_track(e, 1, sa, 9000000, &why));  // a retransmission changes nothing
    EXPECT_EQ(e.rtt_us, c.want_rtt);
    EXPECT_EQ(e.timing, 0);
    EXPECT_EQ(e.tcp[0].wscale, 7);
    EXPECT_EQ(e.tcp[1].wscale, 7);
    ParsedPacket rst;
    rst.l34.proto = kProtoTcp;
    rst.tcp_flags = c.rst_dir == 1 ? R : R | A;
    rst.tcp_seq = c.rst_dir == 1 ? 71 : 11;
    rst.tcp_ack = 71;
    ASSERT_TRUE(tcp_track(e, c.rst_dir, rst, 9000001, &why));
    EXPECT_EQ(e.resets, 1);
    EXPECT_EQ(e.timing, kTimingRst | c.want_rst_bit);
    EXPECT_EQ(e.tcp_state, TcpState::closed);
  }
}

TEST(TcpTrack, WscaleIsCappedAt14) {
  const Scenario sc = {"wscale 200 on both SYNs",
                       1,
                       2,
                       {
                           {"SYN", 0, S, 0, 0, 65535, 0, 200, kOk, kSynSent},
                           {"SYN-ACK", 1, S | A, 0, 1, 65535, 0, 200, kOk, kSynRecv},
                           {"ACK", 0, A, 1, 1, 65535, 0, kNoWs, kOk, kEst},
                       }};
  FlowEntry e{};
  run(sc, &e);
  EXPECT_EQ(e.tcp[0].wscale, 14);
  EXPECT_EQ(e.tcp[1].wscale, 14);
  EXPECT_EQ(e.tcp[1].maxend, 2u + 1 + (65535u << 14));
}

TEST(TcpTrack, BulkDownloadWithGrowingWindow) {
  // 4 MB download in 1448-byte segments, the client acking every other segment and
  // growing its window like Linux autotuning: nothing may be dropped.
  std::vector<Step> steps = handshake({{"GET", 0, P | A, 1, 1, 502, 78, kNoWs, kOk, kEst}});
  uint32_t sent = 0, win = 502;
  for (int i = 0; i < 2900; ++i) {
    steps.push_back({"data", 1, A, 1 + sent, 79, 509, 1448, kNoWs, kOk, kEst});
    sent += 1448;
    if (i % 2 == 1) {
      if (win < 24000) win += 200;
      steps.push_back({"ack", 0, A, 79, 1 + sent, static_cast<uint16_t>(win), 0, kNoWs, kOk, kEst});
    }
  }
  steps.push_back(
      {"client FIN", 0, F | A, 79, 1 + sent, static_cast<uint16_t>(win), 0, kNoWs, kOk, kFinWait});
  steps.push_back({"server FIN", 1, F | A, 1 + sent, 80, 509, 0, kNoWs, kOk, kClosing});
  run({"bulk download", 0x7ffff000u, 0x12345678u, steps});
}

TEST(TcpTrack, FlowWithoutTrackingRejectsAllButASyn) {
  FlowEntry e{};
  ParsedPacket p;
  p.l34.proto = kProtoTcp;
  p.tcp_flags = A;
  DropReason why;
  EXPECT_FALSE(tcp_track(e, 0, p, 1, &why));
  EXPECT_EQ(why, DropReason::tcp_invalid);
  p.tcp_flags = R;
  EXPECT_FALSE(tcp_track(e, 1, p, 1, &why));
  p.tcp_flags = S;
  EXPECT_TRUE(tcp_track(e, 0, p, 1, &why));
  EXPECT_EQ(e.tcp_state, TcpState::syn_sent);
}

}  // namespace
}  // namespace egw
