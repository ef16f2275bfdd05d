#!/bin/sh
# Sidereal pre-pivot hook (SIDUS's sidus-mount.sh, OverlayFS only):
#
#   sidereal.overlay=tmpfs (default)  the NFS root ($NEWROOT, mounted read-only) becomes the
#                                     lower layer of an overlay whose upper layer is a tmpfs:
#                                     the node writes to RAM, the shared root is never touched.
#   sidereal.overlay=none             nothing: a maintenance node mounts the root read-write
#                                     (root=nfs:...,rw) and changes it for every node.
#   sidereal.hostname=NAME            written to /etc/hostname on the overlay (tmpfs mode only:
#                                     on a read-write root it would change it for everyone).
#
# In both modes, first: the address the initramfs got by DHCP is made permanent. dracut's
# dhclient-script gives it the lease time as its lifetime (valid_lft), dhclient is killed at
# switch-root and nothing renews it, so when the lease ran out the kernel would drop the
# address from under the NFS root (SIDUS patches the lease to "forever" for the same reason).
# A registered machine's address is its own (a static lease), so keeping it is safe.

type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

# When the NFS root came up, in seconds since the kernel started: /run moves onto the new root
# at switch-root, and the root's sidereal-booted unit reports it (the boot timeline's nfs stage).
mkdir -p /run/sidereal
read -r sidereal_up _ < /proc/uptime && echo "$sidereal_up" > /run/sidereal/nfs-mounted

ip -4 -o addr show scope global dynamic 2>/dev/null | while read -r _ dev _ cidr _; do
    if ip addr change "$cidr" brd + dev "$dev" valid_lft forever preferred_lft forever; then
        info "sidereal: $cidr on $dev kept for good (no DHCP renewal after switch-root)"
    else
        warn "sidereal: cannot make $cidr on $dev permanent: it expires with its lease"
    fi
done

mode=$(getarg sidereal.overlay=)
[ -z "$mode" ] && mode=tmpfs

case "$mode" in
    none)
        info "sidereal: sidereal.overlay=none, root left as mounted"
        return 0 2>/dev/null || exit 0
        ;;
    tmpfs) ;;
    *)
        warn "sidereal: unknown sidereal.overlay=$mode, using tmpfs"
        ;;
esac

RO=/run/sidereal/ro
RW=/run/sidereal/rw

modprobe overlay 2>/dev/null
mkdir -p "$RO" "$RW"
if ! mount -t tmpfs -o mode=0755 sidereal-rw "$RW"; then
    warn "sidereal: cannot mount the tmpfs: root stays read-only"
    return 0 2>/dev/null || exit 0
fi
mkdir -p "$RW/upper" "$RW/work"

# The read-only NFS root goes aside with a bind (systemd leaves the initramfs's mounts shared,
# and a mount under a shared one cannot be moved), made private so that the overlay mounted
# next on top of $NEWROOT does not propagate onto it; switch-root moves that top mount to /.
if ! mount --bind "$NEWROOT" "$RO" || ! mount --make-private "$RO"; then
    warn "sidereal: cannot bind $NEWROOT to $RO: root stays read-only"
    umount "$RW"
    return 0 2>/dev/null || exit 0
fi
if ! mount -t overlay -o "lowerdir=$RO,upperdir=$RW/upper,workdir=$RW/work" sidereal "$NEWROOT"; then
    warn "sidereal: overlay mount failed: root stays read-only"
    umount "$RO"
    umount "$RW"
    return 0 2>/dev/null || exit 0
fi

# Both layers stay where they are, under the initramfs's /run: switch-root moves /run (a tmpfs,
# with its submounts) onto the new root's /run, so the booted system sees them at
# /run/sidereal/ro and /run/sidereal/rw (df, debugging). Moving them under $NEWROOT/run now
# would be hidden by that same move.

name=$(getarg sidereal.hostname=)
if [ -n "$name" ]; then
    echo "$name" > "$NEWROOT/etc/hostname"
fi
info "sidereal: overlay (tmpfs) over the NFS root"
