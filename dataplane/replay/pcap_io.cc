// egw-replay's capture I/O over libpcap: link-type conversion to Ethernet, reader
// and writer. Main thread of egw-replay only.
#include "dataplane/replay/pcap_io.h"
#include "dataplane/bytes.h"

#include <pcap/pcap.h>

#include <cstring>

namespace egw::replay {
namespace {

constexpr size_t kEthHeader = 14;
constexpr size_t kSllHeader = 16;
constexpr size_t kSll2Header = 20;
constexpr size_t kLoopHeader = 4;
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;

// Synthesized MACs (locally administered): the converted frames carry no real ones.
constexpr uint8_t kSynthDst[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
constexpr uint8_t kSynthSrc[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

// Writes an Ethernet header with `ethertype`, then the payload; src MAC from `src`
// when given (a cooked capture's 6-byte link-layer address).
ConvertStatus emit(uint16_t ethertype, const uint8_t* src, const uint8_t* payload,
                   size_t payload_len, uint8_t* out, size_t cap, size_t* out_len) {
  if (payload_len > cap - kEthHeader) return ConvertStatus::bad_link_header;
  std::memcpy(out, kSynthDst, 6);
  std::memcpy(out + 6, src ? src : kSynthSrc, 6);
  out[12] = static_cast<uint8_t>(ethertype >> 8);
  out[13] = static_cast<uint8_t>(ethertype);
  if (payload_len != 0) std::memcpy(out + kEthHeader, payload, payload_len);
  *out_len = kEthHeader + payload_len;
  return ConvertStatus::ok;
}

// Ethertype of a raw IP packet from its version nibble; 0 when neither 4 nor 6.
uint16_t ethertype_of_ip(const uint8_t* data, size_t len) {
  if (len == 0) return 0;
  switch (data[0] >> 4) {
    case 4: return kEtherIpv4;
    case 6: return kEtherIpv6;
    default: return 0;
  }
}

// Ethertype for a BSD address family value (AF_INET is 2 everywhere; AF_INET6 is
// 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on macOS, 10 on Linux).
uint16_t ethertype_of_af(uint32_t af) {
  switch (af) {
    case 2: return kEtherIpv4;
    case 10: case 24: case 28: case 30: return kEtherIpv6;
    default: return 0;
  }
}

}  // namespace

bool link_type_supported(int linktype) {
  switch (linktype) {
    case kLinkNull: case kLinkEthernet: case kLinkRawBsd: case kLinkRawOpenBsd:
    case kLinkRaw: case kLinkLoop: case kLinkSll: case kLinkIpv4: case kLinkIpv6:
    case kLinkSll2:
      return true;
    default:
      return false;
  }
}

ConvertStatus to_ethernet(int linktype, const uint8_t* data, size_t len, uint8_t* out,
                          size_t cap, size_t* out_len) {
  *out_len = 0;
  if (cap < kEthHeader) return ConvertStatus::bad_link_header;
  switch (linktype) {
    case kLinkEthernet:
      if (len > cap) return ConvertStatus::bad_link_header;
      if (len != 0) std::memcpy(out, data, len);
      *out_len = len;
      return ConvertStatus::ok;

    case kLinkSll: {
      // packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
      if (len < kSllHeader) return ConvertStatus::bad_link_header;
      const uint8_t* src = be16(data + 4) == 6 ? data + 6 : nullptr;
      return emit(be16(data + 14), src, data + kSllHeader, len - kSllHeader, out, cap,
                  out_len);
    }

    case kLinkSll2: {
      // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8)
      if (len < kSll2Header) return ConvertStatus::bad_link_header;
      const uint8_t* src = data[11] == 6 ? data + 12 : nullptr;
      return emit(be16(data), src, data + kSll2Header, len - kSll2Header, out, cap, out_len);
    }

    case kLinkRaw: case kLinkRawBsd: case kLinkRawOpenBsd: case kLinkIpv4: case kLinkIpv6: {
      uint16_t et = ethertype_of_ip(data, len);
      if (et == 0) return ConvertStatus::bad_link_header;
      return emit(et, nullptr, data, len, out, cap, out_len);
    }

    case kLinkNull: case kLinkLoop: {
      // 4-byte address family: host order of the capturing machine (NULL) or network
      // order (LOOP); either is accepted, as the writer's byte order is unknown.
      if (len < kLoopHeader) return ConvertStatus::bad_link_header;
      uint32_t be = static_cast<uint32_t>(data[0]) << 24 | data[1] << 16 | data[2] << 8 | data[3];
      uint32_t le = static_cast<uint32_t>(data[3]) << 24 | data[2] << 16 | data[1] << 8 | data[0];
      uint16_t et = ethertype_of_af(be);
      if (et == 0) et = ethertype_of_af(le);
      if (et == 0) return ConvertStatus::bad_link_header;
      return emit(et, nullptr, data + kLoopHeader, len - kLoopHeader, out, cap, out_len);
    }

    default:
      return ConvertStatus::bad_link_header;
  }
}

PcapReader::~PcapReader() {
  if (p_ != nullptr) pcap_close(p_);
}

bool PcapReader::open(const std::string& path, std::string* err) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  p_ = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO,
                                               errbuf);
  if (p_ == nullptr) {
    *err = path + ": " + errbuf;
    return false;
  }
  linktype_ = pcap_datalink(p_);
  if (!link_type_supported(linktype_)) {
    const char* name = pcap_datalink_val_to_name(linktype_);
    *err = path + ": unsupported link type " + std::to_string(linktype_) +
           (name ? std::string(" (") + name + ")" : std::string()) +
           "; supported: Ethernet (1), Linux cooked SLL (113) and SLL2 (276), raw IP "
           "(101/12/14, 228, 229), BSD loopback (0, 108)";
    pcap_close(p_);
    p_ = nullptr;
    return false;
  }
  return true;
}

PcapReader::Status PcapReader::next(Frame* f, std::string* err) {
  struct pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  int rc = pcap_next_ex(p_, &h, &data);
  if (rc == PCAP_ERROR_BREAK) return Status::end;
  if (rc != 1) {
    *err = std::string("reading the capture: ") + pcap_geterr(p_);
    return Status::error;
  }
  // The precision is nanoseconds: tv_usec holds nanoseconds.
  f->ts_ns = static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ull +
             static_cast<uint64_t>(h->ts.tv_usec);
  if (to_ethernet(linktype_, data, h->caplen, f->data, sizeof(f->data), &f->len) !=
      ConvertStatus::ok)
    return Status::skipped;
  return Status::ok;
}

PcapWriter::~PcapWriter() {
  std::string ignored;
  close(&ignored);
}

bool PcapWriter::open(const std::string& path, std::string* err) {
  p_ = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 262144, PCAP_TSTAMP_PRECISION_NANO);
  if (p_ == nullptr) {
    *err = "pcap_open_dead failed";
    return false;
  }
  d_ = pcap_dump_open(p_, path.c_str());
  if (d_ == nullptr) {
    *err = path + ": " + pcap_geterr(p_);
    pcap_close(p_);
    p_ = nullptr;
    return false;
  }
  return true;
}

void PcapWriter::write(uint64_t ts_ns, const uint8_t* data, size_t len) {
  if (d_ == nullptr) return;
  struct pcap_pkthdr h;
  std::memset(&h, 0, sizeof(h));
  h.ts.tv_sec = static_cast<time_t>(ts_ns / 1000000000ull);
  h.ts.tv_usec = static_cast<suseconds_t>(ts_ns % 1000000000ull);  // ns precision
  h.caplen = static_cast<bpf_u_int32>(len);
  h.len = static_cast<bpf_u_int32>(len);
  pcap_dump(reinterpret_cast<u_char*>(d_), &h, data);
}

bool PcapWriter::close(std::string* err) {
  bool ok = true;
  if (d_ != nullptr) {
    if (pcap_dump_flush(d_) != 0) {
      *err = "writing the pass pcap failed (disk full?)";
      ok = false;
    }
    pcap_dump_close(d_);
    d_ = nullptr;
  }
  if (p_ != nullptr) {
    pcap_close(p_);
    p_ = nullptr;
  }
  return ok;
}

}  // namespace egw::replay
