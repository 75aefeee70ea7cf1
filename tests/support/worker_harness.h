// Test-only harness for the worker on real mbufs: a suite's mbuf pool, policies compiled by
// the real compiler and loaded, a worker running one, frames sent through
// worker_process_burst with what came out on each side copied, TCP/UDP frame specs, and a
// TCP connection driven from its handshake on, the server's bytes rebuilt from what passed.
// Header-only; used by the worker, L7, inspect and synth unit tests on the test thread
// (EAL up; allocates freely).
#pragma once

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/parse.h"
#include "dataplane/policy.h"
#include "dataplane/worker.h"
#include "mgmt/compiler.h"
#include "tests/support/frames.h"

namespace egw::test {

using Bytes = std::vector<uint8_t>;

// The burst clock at a case's start (ns), and ms after it.
inline constexpr uint64_t kT0 = 1'800'000'000'000'000'000ull;
inline constexpr uint64_t at_ms(uint64_t ms) {
  return kT0 + ms * 1'000'000ull;
}

// A pool of n default-sized mbufs, for one suite (nullptr if the EAL has no room).
inline rte_mempool* make_pool(const char* name, unsigned n) {
  return rte_pktmbuf_pool_create(name, n, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
}

// An mbuf of `pool` holding frame f (nullptr, and a failure, if the pool is empty).
inline rte_mbuf* mbuf_of(rte_mempool* pool, const Bytes& f) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  EXPECT_NE(m, nullptr);
  if (m != nullptr) {
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
  }
  return m;
}

// The bytes of m's first segment.
inline Bytes bytes_of_first(const rte_mbuf* m) {
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  return Bytes(d, d + rte_pktmbuf_data_len(m));
}

// The blob the real compiler makes of policy document `doc` (a failure names its first error).
inline std::string compile_blob(const std::string& doc, uint64_t version) {
  auto res = mgmt::compile_document(doc, version);
  EXPECT_TRUE(res.errors.empty()) << res.errors[0].path << ": " << res.errors[0].message;
  return res.blob;
}

// The blob loaded as a runtime policy (nullptr, and a failure saying why, if it does not load).
inline std::unique_ptr<RuntimePolicy> load_policy(const std::string& blob) {
  std::string err;
  auto p = RuntimePolicy::load(reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), &err);
  EXPECT_NE(p, nullptr) << err;
  return p;
}

// Both: the runtime policy of document `doc`.
inline std::unique_ptr<RuntimePolicy> compile_policy(const std::string& doc, uint64_t version) {
  return load_policy(compile_blob(doc, version));
}

// What a suite's tests share: an mbuf pool and, for some, a policy compiled once. Made by
// the suite's SetUpTestSuite, freed by its TearDownTestSuite.
struct SuiteState {
  rte_mempool* pool = nullptr;
  std::unique_ptr<RuntimePolicy> policy;  // nullptr: none

  // A pool of `mbufs` mbufs named `name` and, given a document, its policy at `version`;
  // false if either could not be made.
  bool make(const char* name, unsigned mbufs, const char* doc = nullptr, uint64_t version = 0) {
    pool = make_pool(name, mbufs);
    if (pool == nullptr) return false;
    if (doc != nullptr) policy = compile_policy(doc, version);
    return doc == nullptr || policy != nullptr;
  }
  void tear_down() {
    policy.reset();
    rte_mempool_free(pool);
    pool = nullptr;
  }
};

// The configuration the tests start from: `flows` flows, 64 fragments, answers from `pool`.
inline WorkerConfig worker_config(rte_mempool* pool, uint32_t flows = 1024) {
  WorkerConfig cfg;
  cfg.flow_capacity = flows;
  cfg.frag_capacity = 64;
  cfg.pool = pool;
  return cfg;
}

// Starts w on cfg, recording flows into `ring` (may be nullptr), running `policy` (nullptr:
// none, so it fails closed); false if worker_init failed.
inline bool start_worker(WorkerCtx& w, const WorkerConfig& cfg, FlowRecordRing* ring,
                         const RuntimePolicy* policy) {
  if (!worker_init(w, cfg, ring)) return false;
  w.published.store(policy);
  worker_refresh_policy(w);
  return true;
}

// What one burst sent out, copied; the mbufs themselves are freed.
struct Out {
  std::vector<Bytes> to_server;  // forwarded outward (out[kOutside])
  std::vector<Bytes> to_client;  // sent inward (out[kInside])
  const std::vector<Bytes>& on(Side side) const { return side == kOutside ? to_server : to_client; }
};

// Sends `frames` as one burst received on `from` at `now` (ns); what came out. Nothing is
// sent if the pool ran dry (that is a failure already).
inline Out send_burst(WorkerCtx& w, rte_mempool* pool, const std::vector<Bytes>& frames, Side from,
                      uint64_t now) {
  std::vector<rte_mbuf*> ms;
  for (const Bytes& f : frames) ms.push_back(mbuf_of(pool, f));
  Out r;
  for (rte_mbuf* m : ms) {
    if (m == nullptr) {
      for (rte_mbuf* x : ms) rte_pktmbuf_free(x);
      return r;
    }
  }
  TxBatch out[2];
  worker_process_burst(w, ms.data(), static_cast<uint16_t>(ms.size()), from, now, out);
  for (Side side : {kInside, kOutside}) {
    for (unsigned i = 0; i < out[side].n; ++i) {
      (side == kOutside ? r.to_server : r.to_client).push_back(bytes_of_first(out[side].pkts[i]));
      rte_pktmbuf_free(out[side].pkts[i]);
    }
  }
  return r;
}

// The same with one frame.
inline Out send_frame(WorkerCtx& w, rte_mempool* pool, const Bytes& frame, Side from,
                      uint64_t now) {
  return send_burst(w, pool, {frame}, from, now);
}

// Ends every flow of w (a failure if any is left); their records from `ring`, by inside
// port.
inline std::map<uint16_t, FlowRecord> end_all_flows(WorkerCtx& w, FlowRecordRing& ring) {
  EXPECT_TRUE(worker_flush(w));
  std::map<uint16_t, FlowRecord> out;
  FlowRecord r;
  while (ring.pop(&r)) out[r.key.inside_port] = r;
  return out;
}

// The last flow of w that `match` accepts, or nullptr.
template <typename Match>
FlowEntry* find_flow(WorkerCtx& w, Match match) {
  FlowEntry* found = nullptr;
  w.flows.for_each([&](FlowEntry& e) {
    if (match(e)) found = &e;
  });
  return found;
}

// A packet of `proto` from src:sp to dst:dp, the family by the addresses.
inline FrameSpec l4_spec(uint8_t proto, const char* src, const char* dst, uint16_t sp,
                         uint16_t dp) {
  FrameSpec s;
  s.family = std::strchr(src, ':') != nullptr ? 6 : 4;
  s.src = src;
  s.dst = dst;
  s.proto = proto;
  s.sport = sp;
  s.dport = dp;
  return s;
}

// A TCP segment from src:sp to dst:dp.
inline FrameSpec tcp_spec(const char* src, const char* dst, uint16_t sp, uint16_t dp, uint8_t flags,
                          uint32_t seq, uint32_t ack) {
  FrameSpec s = l4_spec(kProtoTcp, src, dst, sp, dp);
  s.tcp_flags = flags;
  s.seq = seq;
  s.ack = ack;
  return s;
}

// A UDP datagram from src:sp to dst:dp carrying `payload`.
inline FrameSpec udp_spec(const char* src, const char* dst, uint16_t sp, uint16_t dp,
                          Bytes payload = {}) {
  FrameSpec s = l4_spec(kProtoUdp, src, dst, sp, dp);
  s.payload = std::move(payload);
  return s;
}

// One TCP connection: a client inside, a server outside, their initial sequence numbers.
struct TcpEnds {
  const char* cli = nullptr;
  const char* srv = nullptr;
  uint16_t sport = 40000;  // the client's port
  uint16_t port = 80;      // the server's
  uint32_t isn = 0, srv_isn = 5000;
};

// A segment of connection c, from the client (outbound) or from the server (arriving on
// the outside port, with its MACs).
inline FrameSpec tcp_segment(const TcpEnds& c, bool outbound, uint8_t flags, uint32_t seq,
                             uint32_t ack) {
  if (outbound) return tcp_spec(c.cli, c.srv, c.sport, c.port, flags, seq, ack);
  FrameSpec s = tcp_spec(c.srv, c.cli, c.port, c.sport, flags, seq, ack);
  s.src_mac = kOutsideMac;
  s.dst_mac = kInsideMac;
  return s;
}

// The client's data at stream offset `off` (sequence number isn + 1 + off), ACK|PSH and
// `more` flags; on_syn: carried on its SYN instead (TCP Fast Open, offset 0).
inline Bytes client_data(const TcpEnds& c, uint32_t off, Bytes payload, bool on_syn = false,
                         uint8_t more = 0) {
  FrameSpec f = on_syn ? tcp_segment(c, true, kTcpSyn, c.isn, 0)
                       : tcp_segment(c, true, static_cast<uint8_t>(kTcpAck | kTcpPsh | more),
                                     c.isn + 1 + off, c.srv_isn + 1);
  f.payload = std::move(payload);
  return build_frame(f);
}

// What a connection did: the bytes the server received (rebuilt by sequence number from
// the forwarded segments), the RSTs each side got, everything sent back to the client.
struct Conn {
  std::map<uint32_t, uint8_t> server_bytes;  // stream offset -> byte
  int rst_to_client = 0, rst_to_server = 0;
  uint32_t rst_seq = 0;  // of the last RST to the server, as a stream offset
  size_t answers = 0;
};

// Adds what came out to c; `base` is the sequence number of stream offset 0. A byte the
// server got twice with different values is a failure.
inline void account(const Out& o, uint32_t base, Conn* c) {
  for (const Bytes& f : o.to_server) {
    ParsedPacket p;
    ASSERT_EQ(parse_frame(f.data(), f.size(), &p).status, ParseStatus::ok);
    if (p.l34.proto != kProtoTcp) continue;
    if (p.tcp_flags & kTcpRst) {
      ++c->rst_to_server;
      c->rst_seq = p.tcp_seq - base;
    }
    const uint32_t seq = p.tcp_seq + ((p.tcp_flags & kTcpSyn) ? 1 : 0);
    for (uint16_t i = 0; i < p.payload_len; ++i) {
      const uint32_t off = seq + i - base;
      const uint8_t b = f[p.payload_offset + i];
      auto [it, fresh] = c->server_bytes.emplace(off, b);
      EXPECT_TRUE(fresh || it->second == b) << "the server got two versions of byte " << off;
    }
  }
  for (const Bytes& f : o.to_client) {
    ParsedPacket p;
    ASSERT_EQ(parse_frame(f.data(), f.size(), &p).status, ParseStatus::ok);
    if (p.l34.proto == kProtoTcp && (p.tcp_flags & kTcpRst)) ++c->rst_to_client;
    ++c->answers;
  }
}

// One client segment: bytes [off, off + len) of the stream (or `fill` bytes instead of
// the stream's, to send other content), sent at_ms after the start.
struct Seg {
  uint32_t off, len;
  int fill = -1;  // >= 0: every byte is this value instead of the stream's
  uint64_t at_ms = 0;
  bool syn = false;  // carried on the SYN (TCP Fast Open)
  bool fin = false;
};

// A stream of `total` bytes cut at the offsets `at`: its segments, in order.
inline std::vector<Seg> cuts(size_t total, std::vector<uint32_t> at) {
  std::vector<Seg> out;
  uint32_t prev = 0;
  at.push_back(static_cast<uint32_t>(total));
  for (uint32_t a : at) {
    if (a > prev) out.push_back({prev, a - prev});
    prev = a;
  }
  return out;
}

// A stream of `total` bytes in segments of n (the last one shorter).
inline std::vector<Seg> every(size_t total, uint32_t n) {
  std::vector<uint32_t> at;
  for (uint32_t i = n; i < total; i += n) at.push_back(i);
  return cuts(total, at);
}

// The frame of segment s of `stream` on connection c.
inline Bytes segment_frame(const TcpEnds& c, const Bytes& stream, const Seg& s) {
  Bytes payload;
  for (uint32_t i = 0; i < s.len; ++i) {
    payload.push_back(s.fill >= 0 ? static_cast<uint8_t>(s.fill) : stream[s.off + i]);
  }
  return client_data(c, s.off, std::move(payload), s.syn, s.fin ? kTcpFin : 0);
}

// Drives connection c through w: the client's SYN, or its first segment if that rides on
// the SYN; the server's SYN-ACK; the client's ACK; then the client's segments of `stream`
// in order (none: the whole stream in one). The server acknowledges nothing, so the flight
// is only what the client sends. `stop`, asked after each segment, ends the run there.
// All that came out, accounted.
inline Conn drive_tcp(WorkerCtx& w, rte_mempool* pool, const TcpEnds& c, const Bytes& stream,
                      std::vector<Seg> segs, const std::function<bool()>& stop = nullptr) {
  if (segs.empty()) segs.push_back({0, static_cast<uint32_t>(stream.size())});
  Conn r;
  const uint32_t base = c.isn + 1;
  auto send = [&](const Bytes& f, Side from, uint64_t ms) {
    account(send_frame(w, pool, f, from, at_ms(ms)), base, &r);
  };
  size_t next = 0;
  if (segs[0].syn) {
    send(segment_frame(c, stream, segs[0]), kInside, segs[0].at_ms);
    if (stop && stop()) return r;
    next = 1;
  } else {
    send(build_frame(tcp_segment(c, true, kTcpSyn, c.isn, 0)), kInside, 0);
  }
  send(build_frame(tcp_segment(c, false, kTcpSyn | kTcpAck, c.srv_isn, base)), kOutside, 0);
  send(build_frame(tcp_segment(c, true, kTcpAck, base, c.srv_isn + 1)), kInside, 0);
  for (; next < segs.size(); ++next) {
    send(segment_frame(c, stream, segs[next]), kInside, segs[next].at_ms);
    if (stop && stop()) break;
  }
  return r;
}

}  // namespace egw::test
