/**
 * Sidereal's dracut pre-pivot hook (boot-templates/dracut/90sidereal/sidereal-mount.sh), run by
 * a real shell with the real `ip`, `mount` and OverlayFS, in a network namespace and a mount
 * namespace the test makes (dracut's getarg/info/warn given as shell functions). The full boot
 * over NFS is the e2e test's; this one checks each thing the hook promises, in a second:
 *  - the DHCP address (lifetime = lease time, as dracut's dhclient-script sets it) becomes
 *    permanent, so it does not vanish from under the NFS root when the lease runs out;
 *  - sidereal.overlay=tmpfs: $NEWROOT becomes an overlay, writes land in RAM, the read-only
 *    root is untouched, sidereal.hostname= is written on the overlay;
 *  - sidereal.overlay=none: $NEWROOT is left as mounted.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, createNs, destroyAll, nsExec } from '../helpers/netns.js';
import { repoRoot } from '../helpers/serve.js';

const HOOK = path.join(repoRoot, 'boot-templates/dracut/90sidereal/sidereal-mount.sh');
const netnsOk = await canUseNetns();

/** The hook as dracut runs it (sourced, with dracut-lib's functions), in private mounts, after `setup`. */
function script(args: Record<string, string>, after: string): string {
  const getarg = Object.entries(args).map(([k, v]) => `${k}=) echo ${v} ;;`).join(' ');
  return `set -e
mount -t tmpfs run /run            # private to this mount namespace: the hook's /run/sidereal
mkdir -p /run/t/newroot
mount -t tmpfs shared-root /run/t/newroot
echo shared > /run/t/newroot/file && mkdir /run/t/newroot/etc
mount -o remount,ro /run/t/newroot
mount --make-rshared /run          # as systemd leaves the initramfs's mounts: shared (no mount --move)
NEWROOT=/run/t/newroot
getarg() { case "$1" in ${getarg} *) echo ;; esac; }
info() { echo "I: $*"; }
warn() { echo "W: $*"; }
set +e
. ${HOOK}
set -e
${after}`;
}

describe.skipIf(!netnsOk)('dracut hook 90sidereal', () => {
  let ns = '';
  beforeAll(async () => {
    ns = await createNs('hook');
  });
  afterAll(async () => {
    await destroyAll();
  });

  const run = async (args: Record<string, string>, after: string) => {
    // A veth pair inside the namespace (this kernel has no dummy links).
    await nsExec(ns, 'ip', ['link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']).catch(() => undefined);
    await nsExec(ns, 'ip', ['link', 'set', 'd1', 'up']);
    await nsExec(ns, 'ip', ['link', 'set', 'd0', 'up']);
    await nsExec(ns, 'ip', ['addr', 'flush', 'dev', 'd0']);
    // As dracut's dhclient-script leaves it: the lease time as the address's lifetime.
    await nsExec(ns, 'ip', ['addr', 'add', '10.99.0.5/24', 'brd', '10.99.0.255', 'dev', 'd0', 'valid_lft', '600', 'preferred_lft', '600']);
    // `ip netns exec` already gives its command a mount namespace of its own; unshare makes it private.
    const r = await nsExec(ns, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script(args, after)], { reject: false });
    return { code: r.exitCode, out: `${r.stdout}\n${r.stderr}` };
  };

  it('makes the DHCP address permanent, then lays a tmpfs overlay over the read-only root', async () => {
    const r = await run({ 'sidereal.overlay': 'tmpfs', 'sidereal.hostname': 'node07' }, `
ip -4 -o addr show dev d0
findmnt -n -o FSTYPE "$NEWROOT"
echo "mounted-at=$(cat /run/sidereal/nfs-mounted)"
echo changed > "$NEWROOT/file"
echo "new=$(cat "$NEWROOT/file") lower=$(cat /run/sidereal/ro/file) hostname=$(cat "$NEWROOT/etc/hostname")"
ls /run/sidereal/rw/upper`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/inet 10\.99\.0\.5\/24 brd 10\.99\.0\.255 scope global d0\\?\s+valid_lft forever preferred_lft forever/);
    expect(r.out).not.toMatch(/dynamic/);
    expect(r.out).toMatch(/^overlay$/m);
    expect(r.out).toContain('new=changed lower=shared hostname=node07');
    expect(r.out).toMatch(/^mounted-at=\d+\.\d+$/m); // the uptime the booted report sends as nfsMountedAt
    expect(r.out).toMatch(/I: sidereal: overlay \(tmpfs\) over the NFS root/);
  });

  it('sidereal.overlay=none leaves the root as mounted (the maintenance node), address still kept', async () => {
    const r = await run({ 'sidereal.overlay': 'none' }, `
ip -4 -o addr show dev d0
findmnt -n -o FSTYPE "$NEWROOT"`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('valid_lft forever');
    expect(r.out).toMatch(/^tmpfs$/m);
    expect(r.out).toContain('root left as mounted');
  });
});
