#!/usr/bin/env bash
# Installs the Debian packages egw needs to build and test; quiet when none is missing.
set -euo pipefail
pkgs=(build-essential pkg-config clang libclang-rt-14-dev
      libdpdk-dev dpdk-dev librte-net-pcap23 librte-net-af-packet23 librte-net-null23
      librte-net-ring23 librte-net-tap23 librte-net-memif23
      libhyperscan-dev libjsoncpp-dev libcpp-httplib-dev libssl-dev libpcap-dev libgtest-dev
      iproute2 ethtool iputils-ping curl bind9-dnsutils tcpdump python3-scapy openssl
      dnsmasq-base tshark iperf3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "egw: missing Debian packages: ${missing[*]}; run 'sudo make deps'" >&2
  exit 1
fi
echo "egw: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
