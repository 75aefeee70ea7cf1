// TCP state and sequence-window tracking of one flow (after Rooij, "Real Stateful TCP
// Packet Filtering in IP Filter", as in Linux conntrack). Worker lcores: no allocation.
//
// tcp[d].end     highest seq + len sent by d
// tcp[d].maxend  highest ack + window advertised by d's peer: d may send up to here.
//                In syn_sent, before any peer window, tcp[0].maxend holds ISN + 1.
// tcp[d].maxwin  largest (scaled) window advertised by d
// A close with two FINs stays in `closing` (TIME_WAIT-like, tcp_closing timeout);
// `closed` is reached through a valid RST only.
#include "dataplane/flow_table.h"
#include "dataplane/parse.h"

namespace egw {

namespace {

constexpr uint8_t kMaxWscale = 14;         // RFC 7323
constexpr uint32_t kMinAckWindow = 66000;  // Linux MAXACKWINCONST
constexpr uint8_t kNoWscale = 0xff;

// Sequence-space comparisons, modulo 2^32.
inline bool seq_lt(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
inline bool seq_le(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) <= 0;
}
inline bool seq_gt(uint32_t a, uint32_t b) {
  return seq_lt(b, a);
}

inline uint8_t wscale_of(uint8_t opt) {
  return opt == kNoWscale ? kNoWscale : (opt > kMaxWscale ? kMaxWscale : opt);
}

// Sequence space a segment occupies: payload plus one for SYN and for FIN.
inline uint32_t seg_len(const ParsedPacket& p) {
  return p.payload_len + ((p.tcp_flags & kTcpSyn) ? 1u : 0u) + ((p.tcp_flags & kTcpFin) ? 1u : 0u);
}

inline bool fail(DropReason* reason, DropReason r) {
  *reason = r;
  return false;
}

// Rooij's four bounds for a segment from s to r. has_ack: the ACK field is meaningful.
// Inlined: every tracked segment goes through it and window_update.
[[gnu::always_inline]] inline bool in_window(const TcpDir& s, const TcpDir& r, uint32_t seq,
                                             uint32_t end, bool has_ack, uint32_t ack) {
  if (!seq_le(seq, s.maxend)) return false;                   // I: right of the window
  if (r.seen && seq_lt(end, s.end - r.maxwin)) return false;  // II: too old
  if (!has_ack) return true;
  if (!seq_le(ack, r.end)) return false;  // III: acks unsent data
  const uint32_t maxack = s.maxwin > kMinAckWindow ? s.maxwin : kMinAckWindow;
  return !seq_lt(ack, r.end - maxack);  // IV: ack too old
}

// Updates both directions after an accepted segment from s to r.
[[gnu::always_inline]] inline void window_update(TcpDir& s, TcpDir& r, const ParsedPacket& p,
                                                 uint32_t end, bool has_ack) {
  uint32_t win = p.tcp_window;
  if (!(p.tcp_flags & kTcpSyn)) win <<= s.wscale;  // SYN windows are never scaled
  if (win > s.maxwin) s.maxwin = win;
  if (r.seen && seq_gt(end, s.maxend)) r.maxwin += end - s.maxend;
  if (seq_gt(end, s.end)) s.end = end;
  if (has_ack && r.seen && !seq_lt(p.tcp_ack + win, r.maxend)) {
    r.maxend = p.tcp_ack + win;
    if (win == 0) ++r.maxend;  // room for a zero-window probe
  }
  s.seen = true;
}

// RST: in-window sequence only (no state change otherwise).
bool track_rst(FlowEntry& e, int dir, const ParsedPacket& p, DropReason* reason) {
  TcpDir& s = e.tcp[dir];
  TcpDir& r = e.tcp[1 - dir];
  const bool has_ack = (p.tcp_flags & kTcpAck) != 0;
  if (e.tcp_state == TcpState::syn_sent) {
    // Inbound: must acknowledge our SYN (the ack lies in [ISN+1, end of the SYN]).
    // Outbound: the inside host aborts its own attempt; its seq is its next byte.
    const uint32_t isn1 = e.tcp[0].maxend;
    const bool ok = dir == 1 ? has_ack && seq_le(isn1, p.tcp_ack) && seq_le(p.tcp_ack, e.tcp[0].end)
                             : seq_le(isn1 - 1, p.tcp_seq) && seq_le(p.tcp_seq, e.tcp[0].end);
    if (!ok) return fail(reason, DropReason::tcp_out_of_window);
  } else {
    if (!s.seen || !r.seen) return fail(reason, DropReason::tcp_out_of_window);
    const bool ack_used = has_ack && p.tcp_ack != 0;  // some stacks send RST|ACK with ack 0
    if (!in_window(s, r, p.tcp_seq, p.tcp_seq, ack_used, p.tcp_ack))
      return fail(reason, DropReason::tcp_out_of_window);
  }
  e.tcp_state = TcpState::closed;
  if (e.resets != 0xff) ++e.resets;
  e.timing = static_cast<uint8_t>(e.timing | kTimingRst | (dir == 0 ? kRstFromClient : kRstFromServer));
  return true;
}

// SYN-ACK from the remote side while the inside host waits in syn_sent.
bool track_syn_ack(FlowEntry& e, const ParsedPacket& p, uint64_t now_ns, DropReason* reason) {
  TcpDir& out = e.tcp[0];
  TcpDir& in = e.tcp[1];
  if (e.tcp_state == TcpState::syn_recv) {  // retransmitted SYN-ACK: same ISN, same ack
    const bool same = p.tcp_seq + seg_len(p) == in.end && seq_le(p.tcp_ack, out.end) &&
                      !seq_lt(p.tcp_ack, out.end - kMinAckWindow);
    return same ? true : fail(reason, DropReason::tcp_invalid);
  }
  if (e.tcp_state != TcpState::syn_sent) return fail(reason, DropReason::tcp_invalid);
  const uint32_t isn1 = out.maxend;
  if (!seq_le(isn1, p.tcp_ack) || !seq_le(p.tcp_ack, out.end))
    return fail(reason, DropReason::tcp_invalid);
  const uint8_t ws = wscale_of(p.tcp_wscale);
  in = TcpDir{};
  in.end = in.maxend = p.tcp_seq + seg_len(p);
  in.maxwin = p.tcp_window != 0 ? p.tcp_window : 1;
  if (out.wscale != kNoWscale && ws != kNoWscale) {
    in.wscale = ws;
  } else {
    in.wscale = 0;
    out.wscale = 0;
  }
  in.seen = true;
  window_update(in, out, p, in.end, true);
  e.tcp_state = TcpState::syn_recv;
  if (e.rtt_us == 0) {
    const uint64_t syn = e.start_ns + uint64_t{e.mark_us} * 1000;
    const uint64_t us = now_ns > syn ? (now_ns - syn) / 1000 : 0;
    e.rtt_us = us == 0 ? 1 : (us > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(us));
    e.timing = static_cast<uint8_t>(e.timing | kTimingRtt);
  }
  return true;
}

}  // namespace

void tcp_track_init(FlowEntry& e, const ParsedPacket& p, uint64_t now_ns) {
  TcpDir& out = e.tcp[0];
  out = TcpDir{};
  out.end = p.tcp_seq + seg_len(p);
  out.maxend = p.tcp_seq + 1;  // ISN + 1 until the peer advertises a window
  out.maxwin = p.tcp_window != 0 ? p.tcp_window : 1;
  out.wscale = wscale_of(p.tcp_wscale);  // resolved when the SYN-ACK arrives
  out.seen = true;
  e.tcp[1] = TcpDir{};
  e.tcp_state = TcpState::syn_sent;
  // The SYN's time, for the handshake RTT (a retransmitted SYN restarts the clock).
  const uint64_t us = now_ns > e.start_ns ? (now_ns - e.start_ns) / 1000 : 0;
  e.mark_us = us > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(us);
  e.isn = p.tcp_seq;
}

// Every segment but the common one tcp_track takes itself; out of line, so that the
// common one saves no registers.
namespace {

[[gnu::noinline]] bool tcp_track_general(FlowEntry& e, int dir, const ParsedPacket& p,
                                         uint64_t now_ns, DropReason* reason) {
  const uint8_t f = p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin);
  const bool syn = f & kTcpSyn, ack = f & kTcpAck, rst = f & kTcpRst, fin = f & kTcpFin;
  if (f == 0 || (syn && (fin || rst)) || (fin && (rst || !ack)))
    return fail(reason, DropReason::tcp_invalid);
  dir = dir != 0 ? 1 : 0;

  if (syn) {
    if (!ack) {
      // Outbound SYN while waiting: a retransmission or a new attempt (re-initialised).
      if (dir == 0 && (e.tcp_state == TcpState::syn_sent || e.tcp_state == TcpState::none)) {
        tcp_track_init(e, p, now_ns);
        return true;
      }
      // Retransmitted SYN after our SYN-ACK was seen: same ISN only.
      if (dir == 0 && e.tcp_state == TcpState::syn_recv && p.tcp_seq + seg_len(p) == e.tcp[0].end)
        return true;
      return fail(reason, DropReason::tcp_invalid);
    }
    if (dir == 1) return track_syn_ack(e, p, now_ns, reason);
    return fail(reason, DropReason::tcp_invalid);  // the inside host never answers a SYN
  }
  if (e.tcp_state == TcpState::none) return fail(reason, DropReason::tcp_invalid);
  if (rst) return track_rst(e, dir, p, reason);
  // From here: ACK set, optionally FIN/PSH/URG and payload.
  if (e.tcp_state == TcpState::syn_sent || e.tcp_state == TcpState::closed)
    return fail(reason, DropReason::tcp_invalid);

  TcpDir& s = e.tcp[dir];
  TcpDir& r = e.tcp[1 - dir];
  if (!s.seen || !r.seen) return fail(reason, DropReason::tcp_invalid);
  const uint32_t end = p.tcp_seq + seg_len(p);
  if (!in_window(s, r, p.tcp_seq, end, true, p.tcp_ack))
    return fail(reason, DropReason::tcp_out_of_window);
  window_update(s, r, p, end, true);

  if (e.tcp_state == TcpState::syn_recv && dir == 0)
    e.tcp_state = TcpState::established;  // the handshake's final ACK
  if (fin) {
    s.fin = true;
    if (r.fin)
      e.tcp_state = TcpState::closing;  // both FINs: TIME_WAIT-like until timeout
    else if (e.tcp_state < TcpState::fin_wait)
      e.tcp_state = TcpState::fin_wait;
  }
  return true;
}

}  // namespace

bool tcp_track(FlowEntry& e, int dir, const ParsedPacket& p, uint64_t now_ns, DropReason* reason) {
  // Nearly every segment: a plain ACK (PSH/URG aside) on an established flow. For it
  // the general path's checks reduce to these.
  if ((p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) == kTcpAck &&
      e.tcp_state == TcpState::established) {
    TcpDir& s = e.tcp[dir != 0];
    TcpDir& r = e.tcp[dir == 0];
    if (!s.seen || !r.seen) return fail(reason, DropReason::tcp_invalid);
    const uint32_t end = p.tcp_seq + p.payload_len;
    if (!in_window(s, r, p.tcp_seq, end, true, p.tcp_ack))
      return fail(reason, DropReason::tcp_out_of_window);
    window_update(s, r, p, end, true);
    return true;
  }
  return tcp_track_general(e, dir, p, now_ns, reason);
}

}  // namespace egw
