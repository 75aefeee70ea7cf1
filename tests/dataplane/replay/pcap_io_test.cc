// Tests of egw-replay's capture I/O: link-type conversion (a table over every link
// type), reading pcaps and a pcapng written by the test, and the pass-pcap writer.
#include "dataplane/replay/pcap_io.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace egw::replay {
namespace {

using Bytes = std::vector<uint8_t>;

// A minimal IPv4 header (20 bytes, proto UDP) and IPv6 header (40 bytes).
const Bytes kIpv4 = {0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 1, 7, 198, 19, 0, 53};
const Bytes kIpv6 = [] {
  Bytes b(40, 0);
  b[0] = 0x60;
  b[6] = 17;
  b[7] = 64;
  return b;
}();

Bytes cat(const Bytes& a, const Bytes& b) {
  Bytes r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

const Bytes kSllMac = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
// SLL: packet type 4 (outgoing), ARPHRD_ETHER, addr len 6, addr (8), protocol.
Bytes sll(uint16_t proto) {
  Bytes h = {0, 4, 0, 1, 0, 6};
  h.insert(h.end(), kSllMac.begin(), kSllMac.end());
  h.push_back(0);
  h.push_back(0);
  h.push_back(static_cast<uint8_t>(proto >> 8));
  h.push_back(static_cast<uint8_t>(proto));
  return h;
}
// SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, addr len 6, addr (8).
Bytes sll2(uint16_t proto) {
  Bytes h = {static_cast<uint8_t>(proto >> 8), static_cast<uint8_t>(proto), 0, 0, 0, 0, 0, 2,
             0, 1, 0, 6};
  h.insert(h.end(), kSllMac.begin(), kSllMac.end());
  h.push_back(0);
  h.push_back(0);
  return h;
}
Bytes af_le(uint32_t af) { return {uint8_t(af), uint8_t(af >> 8), uint8_t(af >> 16), uint8_t(af >> 24)}; }
Bytes af_be(uint32_t af) { return {uint8_t(af >> 24), uint8_t(af >> 16), uint8_t(af >> 8), uint8_t(af)}; }

const Bytes kEthIpv4 = cat({2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x08, 0x00}, kIpv4);

struct ConvertCase {
  const char* description;
  int linktype;
  Bytes input;
  ConvertStatus status;
  uint16_t ethertype;  // expected in the output (when ok and not Ethernet)
  Bytes payload;       // expected after the Ethernet header (when ok and not Ethernet)
  bool src_from_sll;   // the source MAC is the cooked capture's address
};

const ConvertCase kConvertCases[] = {
    {"Ethernet is copied as is", kLinkEthernet, kEthIpv4, ConvertStatus::ok, 0x0800, kIpv4, false},
    {"SLL IPv4", kLinkSll, cat(sll(0x0800), kIpv4), ConvertStatus::ok, 0x0800, kIpv4, true},
    {"SLL IPv6", kLinkSll, cat(sll(0x86dd), kIpv6), ConvertStatus::ok, 0x86dd, kIpv6, true},
    {"SLL keeps an 802.1Q tag", kLinkSll, cat(sll(0x8100), cat({0, 100, 0x08, 0x00}, kIpv4)),
     ConvertStatus::ok, 0x8100, cat({0, 100, 0x08, 0x00}, kIpv4), true},
    {"SLL ARP keeps its protocol", kLinkSll, cat(sll(0x0806), Bytes(28, 0)), ConvertStatus::ok,
     0x0806, Bytes(28, 0), true},
    {"SLL shorter than its header", kLinkSll, Bytes(15, 0), ConvertStatus::bad_link_header, 0, {}, false},
    {"SLL2 IPv4", kLinkSll2, cat(sll2(0x0800), kIpv4), ConvertStatus::ok, 0x0800, kIpv4, true},
    {"SLL2 IPv6", kLinkSll2, cat(sll2(0x86dd), kIpv6), ConvertStatus::ok, 0x86dd, kIpv6, true},
    {"SLL2 shorter than its header", kLinkSll2, Bytes(19, 0), ConvertStatus::bad_link_header, 0, {}, false},
    {"raw IPv4 (LINKTYPE_RAW)", kLinkRaw, kIpv4, ConvertStatus::ok, 0x0800, kIpv4, false},
    {"raw IPv6 (LINKTYPE_RAW)", kLinkRaw, kIpv6, ConvertStatus::ok, 0x86dd, kIpv6, false},
    {"raw IPv4 (DLT_RAW 12)", kLinkRawBsd, kIpv4, ConvertStatus::ok, 0x0800, kIpv4, false},
    {"raw IPv6 (DLT_RAW 14)", kLinkRawOpenBsd, kIpv6, ConvertStatus::ok, 0x86dd, kIpv6, false},
    {"LINKTYPE_IPV4", kLinkIpv4, kIpv4, ConvertStatus::ok, 0x0800, kIpv4, false},
    {"raw IP with version 5", kLinkRaw, Bytes{0x50, 0, 0, 0}, ConvertStatus::bad_link_header, 0, {}, false},
    {"raw IP empty", kLinkRaw, Bytes{}, ConvertStatus::bad_link_header, 0, {}, false},
    {"NULL AF_INET little endian", kLinkNull, cat(af_le(2), kIpv4), ConvertStatus::ok, 0x0800, kIpv4, false},
    {"NULL AF_INET big endian", kLinkNull, cat(af_be(2), kIpv4), ConvertStatus::ok, 0x0800, kIpv4, false},
    {"NULL AF_INET6 24 (BSD)", kLinkNull, cat(af_le(24), kIpv6), ConvertStatus::ok, 0x86dd, kIpv6, false},
    {"NULL AF_INET6 28 (FreeBSD)", kLinkNull, cat(af_le(28), kIpv6), ConvertStatus::ok, 0x86dd, kIpv6, false},
    {"NULL AF_INET6 30 (macOS)", kLinkNull, cat(af_le(30), kIpv6), ConvertStatus::ok, 0x86dd, kIpv6, false},
    {"LOOP AF_INET network order", kLinkLoop, cat(af_be(2), kIpv4), ConvertStatus::ok, 0x0800, kIpv4, false},
    {"LOOP AF_INET6 24 network order", kLinkLoop, cat(af_be(24), kIpv6), ConvertStatus::ok, 0x86dd, kIpv6, false},
    {"NULL unknown family", kLinkNull, cat(af_le(7), kIpv4), ConvertStatus::bad_link_header, 0, {}, false},
    {"NULL shorter than its header", kLinkNull, Bytes{2, 0, 0}, ConvertStatus::bad_link_header, 0, {}, false},
    {"unsupported link type", 105, kIpv4, ConvertStatus::bad_link_header, 0, {}, false},
};

void check_converted(const ConvertCase& c, const uint8_t* out, size_t out_len) {
  if (c.linktype == kLinkEthernet) {
    ASSERT_EQ(out_len, c.input.size());
    EXPECT_EQ(0, std::memcmp(out, c.input.data(), out_len));
    return;
  }
  ASSERT_EQ(out_len, 14 + c.payload.size());
  EXPECT_EQ(out[12] << 8 | out[13], c.ethertype);
  EXPECT_EQ(0, std::memcmp(out + 14, c.payload.data(), c.payload.size()));
  if (c.src_from_sll) {
    EXPECT_EQ(0, std::memcmp(out + 6, kSllMac.data(), 6));
  }
}

TEST(PcapIo, ConvertsEveryLinkTypeToEthernet) {
  std::vector<uint8_t> out(kMaxFrame);
  for (const auto& c : kConvertCases) {
    SCOPED_TRACE(c.description);
    size_t out_len = 99;
    ConvertStatus st = to_ethernet(c.linktype, c.input.data(), c.input.size(), out.data(),
                                   out.size(), &out_len);
    ASSERT_EQ(st, c.status);
    if (st != ConvertStatus::ok) {
      EXPECT_EQ(out_len, 0u);
      continue;
    }
    check_converted(c, out.data(), out_len);
  }
}

TEST(PcapIo, OutputBufferTooSmallIsRefused) {
  uint8_t out[20];
  size_t out_len = 0;
  Bytes in = cat(sll(0x0800), kIpv4);  // needs 14 + 20 bytes
  EXPECT_EQ(to_ethernet(kLinkSll, in.data(), in.size(), out, sizeof(out), &out_len),
            ConvertStatus::bad_link_header);
  EXPECT_EQ(to_ethernet(kLinkEthernet, kEthIpv4.data(), kEthIpv4.size(), out, sizeof(out),
                        &out_len),
            ConvertStatus::bad_link_header);
}

// A temporary file removed at the end of the test.
struct TempFile {
  std::string path;
  explicit TempFile(const char* tag) {
    path = "/tmp/egw-pcap-io-" + std::to_string(getpid()) + "-" + tag;
  }
  ~TempFile() { unlink(path.c_str()); }
};

// Writes frames of `linktype` with timestamps 1.000000001 s, 2.000000002 s, ...
void write_pcap(const std::string& path, int linktype, const std::vector<Bytes>& frames) {
  pcap_t* p = pcap_open_dead_with_tstamp_precision(linktype, 65535, PCAP_TSTAMP_PRECISION_NANO);
  ASSERT_NE(p, nullptr);
  pcap_dumper_t* d = pcap_dump_open(p, path.c_str());
  ASSERT_NE(d, nullptr) << pcap_geterr(p);
  for (size_t i = 0; i < frames.size(); ++i) {
    struct pcap_pkthdr h = {};
    h.ts.tv_sec = static_cast<time_t>(i + 1);
    h.ts.tv_usec = static_cast<suseconds_t>(i + 1);  // nanoseconds
    h.caplen = h.len = static_cast<bpf_u_int32>(frames[i].size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, frames[i].data());
  }
  pcap_dump_close(d);
  pcap_close(p);
}

struct FileCase {
  const char* description;
  int linktype;
  std::vector<Bytes> frames;
  std::vector<PcapReader::Status> statuses;  // per frame
  std::vector<uint16_t> ethertypes;          // per ok frame
};

const FileCase kFileCases[] = {
    {"Ethernet pcap", DLT_EN10MB, {kEthIpv4, kEthIpv4},
     {PcapReader::Status::ok, PcapReader::Status::ok}, {0x0800, 0x0800}},
    {"SLL pcap", DLT_LINUX_SLL, {cat(sll(0x0800), kIpv4), cat(sll(0x86dd), kIpv6)},
     {PcapReader::Status::ok, PcapReader::Status::ok}, {0x0800, 0x86dd}},
    {"SLL2 pcap", 276, {cat(sll2(0x86dd), kIpv6), Bytes(3, 0)},
     {PcapReader::Status::ok, PcapReader::Status::skipped}, {0x86dd}},
    {"raw IP pcap (LINKTYPE_RAW)", DLT_RAW, {kIpv4, kIpv6, Bytes{0x70}},
     {PcapReader::Status::ok, PcapReader::Status::ok, PcapReader::Status::skipped},
     {0x0800, 0x86dd}},
    {"NULL pcap", DLT_NULL, {cat(af_le(2), kIpv4), cat(af_le(30), kIpv6)},
     {PcapReader::Status::ok, PcapReader::Status::ok}, {0x0800, 0x86dd}},
    {"LOOP pcap", DLT_LOOP, {cat(af_be(2), kIpv4), cat(af_be(24), kIpv6)},
     {PcapReader::Status::ok, PcapReader::Status::ok}, {0x0800, 0x86dd}},
};

TEST(PcapIo, ReadsEachLinkTypeFromAFile) {
  auto frame = std::make_unique<Frame>();
  for (const auto& c : kFileCases) {
    SCOPED_TRACE(c.description);
    TempFile f("read.pcap");
    write_pcap(f.path, c.linktype, c.frames);
    PcapReader r;
    std::string err;
    ASSERT_TRUE(r.open(f.path, &err)) << err;
    size_t ok_seen = 0;
    for (size_t i = 0; i < c.frames.size(); ++i) {
      ASSERT_EQ(r.next(frame.get(), &err), c.statuses[i]) << "frame " << i << " " << err;
      if (c.statuses[i] != PcapReader::Status::ok) continue;
      EXPECT_EQ(frame->ts_ns, (i + 1) * 1000000000ull + (i + 1)) << "ns timestamps kept";
      ASSERT_GE(frame->len, 14u);
      EXPECT_EQ(frame->data[12] << 8 | frame->data[13], c.ethertypes[ok_seen++]);
    }
    EXPECT_EQ(r.next(frame.get(), &err), PcapReader::Status::end);
  }
}

// pcapng by hand (libpcap only writes pcap): SHB, IDB (Ethernet, 1 us resolution), EPBs.
Bytes pcapng(const std::vector<Bytes>& frames) {
  Bytes out;
  auto u32 = [&out](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto u16 = [&out](uint16_t v) {
    out.push_back(static_cast<uint8_t>(v));
    out.push_back(static_cast<uint8_t>(v >> 8));
  };
  u32(0x0a0d0d0a); u32(28); u32(0x1a2b3c4d); u16(1); u16(0);
  u32(0xffffffff); u32(0xffffffff); u32(28);  // section length unknown
  u32(1); u32(20); u16(1); u16(0); u32(65535); u32(20);
  for (size_t i = 0; i < frames.size(); ++i) {
    size_t padded = (frames[i].size() + 3) & ~size_t{3};
    uint32_t total = static_cast<uint32_t>(32 + padded);
    uint64_t ts_us = (i + 1) * 1000000ull + 5;
    u32(6); u32(total); u32(0);
    u32(static_cast<uint32_t>(ts_us >> 32)); u32(static_cast<uint32_t>(ts_us));
    u32(static_cast<uint32_t>(frames[i].size())); u32(static_cast<uint32_t>(frames[i].size()));
    out.insert(out.end(), frames[i].begin(), frames[i].end());
    out.resize(out.size() + (padded - frames[i].size()), 0);
    u32(total);
  }
  return out;
}

TEST(PcapIo, ReadsPcapng) {
  TempFile f("in.pcapng");
  Bytes bytes = pcapng({kEthIpv4, kEthIpv4});
  FILE* fp = fopen(f.path.c_str(), "wb");
  ASSERT_NE(fp, nullptr);
  ASSERT_EQ(fwrite(bytes.data(), 1, bytes.size(), fp), bytes.size());
  fclose(fp);
  PcapReader r;
  std::string err;
  ASSERT_TRUE(r.open(f.path, &err)) << err;
  auto frame = std::make_unique<Frame>();
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(r.next(frame.get(), &err), PcapReader::Status::ok) << err;
    EXPECT_EQ(frame->ts_ns, (i + 1) * 1000000000ull + 5000);
    ASSERT_EQ(frame->len, kEthIpv4.size());
    EXPECT_EQ(0, std::memcmp(frame->data, kEthIpv4.data(), frame->len));
  }
  EXPECT_EQ(r.next(frame.get(), &err), PcapReader::Status::end);
}

TEST(PcapIo, OpenErrorsNameTheProblem) {
  const struct {
    const char* description;
    int linktype;  // -1: do not create the file; -2: write garbage
    const char* expect;
  } kCases[] = {
      {"missing file", -1, "No such file"},
      {"not a capture", -2, "unknown file format"},
      {"unsupported link type", 105, "unsupported link type 105"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.description);
    TempFile f("bad.pcap");
    if (c.linktype == -2) {
      FILE* fp = fopen(f.path.c_str(), "wb");
      ASSERT_NE(fp, nullptr);
      fputs("this is not a capture file at all", fp);
      fclose(fp);
    } else if (c.linktype >= 0) {
      write_pcap(f.path, c.linktype, {kIpv4});
    }
    PcapReader r;
    std::string err;
    EXPECT_FALSE(r.open(f.path, &err));
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
  }
}

TEST(PcapIo, TruncatedFileIsAnError) {
  TempFile f("trunc.pcap");
  write_pcap(f.path, DLT_EN10MB, {kEthIpv4});
  ASSERT_EQ(truncate(f.path.c_str(), 24 + 16 + 10), 0);  // header, record header, 10 bytes
  PcapReader r;
  std::string err;
  ASSERT_TRUE(r.open(f.path, &err)) << err;
  auto frame = std::make_unique<Frame>();
  EXPECT_EQ(r.next(frame.get(), &err), PcapReader::Status::error);
  EXPECT_FALSE(err.empty());
}

TEST(PcapIo, WriterKeepsFramesAndNanosecondTimestamps) {
  TempFile f("out.pcap");
  PcapWriter w;
  std::string err;
  ASSERT_TRUE(w.open(f.path, &err)) << err;
  w.write(1795885200123456789ull, kEthIpv4.data(), kEthIpv4.size());
  w.write(1795885201000000001ull, kEthIpv4.data(), 20);
  ASSERT_TRUE(w.close(&err)) << err;

  PcapReader r;
  ASSERT_TRUE(r.open(f.path, &err)) << err;
  EXPECT_EQ(r.linktype(), kLinkEthernet);
  auto frame = std::make_unique<Frame>();
  ASSERT_EQ(r.next(frame.get(), &err), PcapReader::Status::ok);
  EXPECT_EQ(frame->ts_ns, 1795885200123456789ull);
  ASSERT_EQ(frame->len, kEthIpv4.size());
  EXPECT_EQ(0, std::memcmp(frame->data, kEthIpv4.data(), frame->len));
  ASSERT_EQ(r.next(frame.get(), &err), PcapReader::Status::ok);
  EXPECT_EQ(frame->ts_ns, 1795885201000000001ull);
  EXPECT_EQ(frame->len, 20u);
  EXPECT_EQ(r.next(frame.get(), &err), PcapReader::Status::end);
}

TEST(PcapIo, WriterRefusesAnUnwritablePath) {
  PcapWriter w;
  std::string err;
  EXPECT_FALSE(w.open("/nonexistent-dir/x.pcap", &err));
  EXPECT_NE(err.find("/nonexistent-dir/x.pcap"), std::string::npos) << err;
}

}  // namespace
}  // namespace egw::replay
