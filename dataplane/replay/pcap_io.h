// egw-replay's capture I/O: reads pcap/pcapng (libpcap) of several link types and
// turns every frame into an Ethernet frame; writes Ethernet pcaps. Main thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

typedef struct pcap pcap_t;
typedef struct pcap_dumper pcap_dumper_t;

namespace egw::replay {

// Link-layer header types (LINKTYPE_* / DLT_* values as libpcap reports them).
constexpr int kLinkNull = 0;     // BSD loopback, AF in host byte order
constexpr int kLinkEthernet = 1;
constexpr int kLinkRawBsd = 12;  // DLT_RAW on most systems
constexpr int kLinkRawOpenBsd = 14;
constexpr int kLinkRaw = 101;    // LINKTYPE_RAW
constexpr int kLinkLoop = 108;   // OpenBSD loopback, AF in network byte order
constexpr int kLinkSll = 113;    // Linux cooked capture v1
constexpr int kLinkIpv4 = 228;
constexpr int kLinkIpv6 = 229;
constexpr int kLinkSll2 = 276;   // Linux cooked capture v2

// Whether egw-replay can convert frames of this link type.
bool link_type_supported(int linktype);

// Largest Ethernet frame to_ethernet() produces: 65535 bytes of payload + header.
constexpr size_t kMaxFrame = 65535 + 14;

enum class ConvertStatus : uint8_t {
  ok,
  bad_link_header,  // shorter than its link header, or an unknown address family
};

// Converts one captured frame of `linktype` into an Ethernet frame in out[0..cap).
// Ethernet frames are copied; other types get a synthesized 14-byte header whose
// ethertype comes from the link header (SLL/SLL2 protocol, loopback AF) or from
// the IP version nibble (raw IP). Pure function over bytes; never reads past len.
ConvertStatus to_ethernet(int linktype, const uint8_t* data, size_t len, uint8_t* out,
                          size_t cap, size_t* out_len);

// One frame read from a capture, already converted to Ethernet.
struct Frame {
  uint64_t ts_ns = 0;  // capture time, ns since the Unix epoch
  size_t len = 0;
  uint8_t data[kMaxFrame];
};

class PcapReader {
 public:
  PcapReader() = default;
  PcapReader(const PcapReader&) = delete;
  PcapReader& operator=(const PcapReader&) = delete;
  ~PcapReader();

  // Opens a pcap or pcapng file. On failure *err says why (libpcap's message, or the
  // unsupported link type and its number).
  bool open(const std::string& path, std::string* err);

  enum class Status : uint8_t { ok, end, skipped, error };
  // Reads the next frame into *f. skipped: the frame's link header was unusable
  // (counted by the caller); error: *err says why (a truncated file, for instance).
  Status next(Frame* f, std::string* err);

  int linktype() const { return linktype_; }

 private:
  pcap_t* p_ = nullptr;
  int linktype_ = -1;
};

class PcapWriter {
 public:
  PcapWriter() = default;
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;
  ~PcapWriter();

  // Creates an Ethernet pcap (nanosecond timestamps) at path.
  bool open(const std::string& path, std::string* err);
  void write(uint64_t ts_ns, const uint8_t* data, size_t len);
  // Flushes and closes; false (with *err) when the data could not be written.
  bool close(std::string* err);
  bool is_open() const { return d_ != nullptr; }

 private:
  pcap_t* p_ = nullptr;
  pcap_dumper_t* d_ = nullptr;
};

}  // namespace egw::replay
