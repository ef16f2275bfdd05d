#!/usr/bin/env bash
# Installs the Debian packages Sidereal's lab, tests and benchmarks use.
# Run as root on Debian 12. Safe to run again.
set -euo pipefail

PACKAGES=(
  # firmware clients and the bootloaders they load
  qemu-system-x86 ipxe-qemu ovmf ipxe pxelinux syslinux-common syslinux-efi
  # real protocol peers for the tests: TFTP and DHCP clients, a DHCP relay, reference servers
  tftp-hpa atftp curl isc-dhcp-client udhcpc isc-dhcp-relay busybox-static dnsmasq-base tftpd-hpa
  # benchmarks only: nginx is the HTTP reference server (bench/http.ts); its service is held back like tftpd-hpa's
  nginx-light
  # packet decoding, namespaces, initrd building
  tshark iproute2 cpio kmod procps
  # the root builder (dracut runs inside the root it builds, not on the host)
  debootstrap mmdebstrap
  # NFS for the lab and tests: nfs-ganesha in user space (this kernel has no nfsd); exportfs for the kernel backend
  nfs-ganesha nfs-ganesha-vfs rpcbind nfs-kernel-server libnfs-utils
  # the shipped systemd unit is checked with `systemd-analyze verify`
  systemd
  # docker-compose.yml is checked with `docker-compose config` (no container engine runs here)
  docker-compose
  # native addons (better-sqlite3, the SO_BINDTODEVICE helper, the TFTP data pump)
  build-essential python3
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

# Packages such as tftpd-hpa start a service on install; in a test machine nothing
# should listen on the host's interfaces, so services are held back while installing.
cleanup_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  cleanup_policy=1
fi
trap '[ $cleanup_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT

echo "install-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
