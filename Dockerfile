# Sidereal in a container. Node 20 on Debian 12 (bookworm), with what the daemon runs:
# bootloaders to install into the TFTP root, debootstrap/mmdebstrap for root builds, exportfs
# for the kernel NFS backend (the host's nfsd serves the exports the container writes).
FROM node:20-bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pxelinux syslinux-common syslinux-efi ipxe \
      debootstrap mmdebstrap nfs-kernel-server iproute2 procps kmod \
      build-essential python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sidereal
COPY package.json package-lock.json ./
COPY native ./native
RUN npm ci
COPY . .
RUN npx tsc -p tsconfig.json
ENTRYPOINT ["node", "/opt/sidereal/bin/sidereal.js"]
CMD ["--config", "/etc/sidereal/sidereal.yaml", "serve"]
