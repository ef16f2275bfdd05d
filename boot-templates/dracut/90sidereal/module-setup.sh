#!/bin/bash
# Sidereal's dracut module (after SIDUS's 90sidus): a pre-pivot hook that puts a writable tmpfs
# layer (OverlayFS) over the read-only NFS root, so every node writes to RAM and the shared root
# stays clean. Debian's own 90overlay-root (package overlayroot-like setups) would be an
# alternative; this one is small, reads only sidereal.* arguments and does nothing on a
# maintenance node booted with sidereal.overlay=none.
#
# Copied into each root as /usr/lib/dracut/modules.d/90sidereal by the build (server/roots/plan.ts,
# step dracut-config) and pulled in by add_dracutmodules in /etc/dracut.conf.d/10-sidereal.conf.

# Only when asked for (add_dracutmodules / --add sidereal): never on a dracut run that did not.
check() {
    return 255
}

depends() {
    echo network nfs
    return 0
}

installkernel() {
    instmods overlay
}

install() {
    # pre-pivot: the NFS root is mounted read-only on $NEWROOT, nothing has run from it yet.
    inst_hook pre-pivot 90 "$moddir/sidereal-mount.sh"
    inst_multiple mkdir mount umount ip
}
