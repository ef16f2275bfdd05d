/**
 * nfs-ganesha for the lab and the tests, inside a network namespace the caller made (this
 * kernel has no nfsd). NFSv3 needs rpcbind, and rpcbind keeps its socket in /run: both run in a
 * mount namespace of their own with a private /run, so nothing lands in the host's /run. The
 * exports are the file Sidereal's ganesha backend writes (`%include`d); Sidereal reloads them
 * with SIGHUP to the pid in `pidFile`, which lives in `dir` (outside the private /run) for that.
 *
 * Found here: NFSv4 clients hang in an idmap upcall (to /sbin/request-key, on the NFS root
 * itself) unless owners are numeric; Graceless avoids a 90 s grace period at every start;
 * ganesha listens on every address of its namespace.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { nsStart } from './netns.js';
import { stopChild } from './proc.js';

export interface Ganesha {
  proc: ResultPromise;
  configFile: string;
  exportsFile: string;
  pidFile: string;
  logFile: string;
  stop(): Promise<void>;
}

export function ganeshaConfig(exportsFile: string): string {
  return `# nfs-ganesha for Sidereal's lab (lab/ganesha.ts)
NFS_CORE_PARAM {
  Protocols = 3, 4;
  Enable_NLM = false;
  Enable_RQUOTA = false;
}
NFSV4 {
  Graceless = true;
  Only_Numeric_Owners = true;
}
%include "${exportsFile}"
`;
}

/** Start rpcbind and ganesha in `ns`, files under `dir`; resolves once ganesha serves (bounded). */
export async function startGanesha(ns: string, dir: string, exportsFile = path.join(dir, 'sidereal-exports.conf')): Promise<Ganesha> {
  const configFile = path.join(dir, 'ganesha.conf');
  const pidFile = path.join(dir, 'ganesha.pid');
  const logFile = path.join(dir, 'ganesha.log');
  writeFileSync(configFile, ganeshaConfig(exportsFile));
  if (!existsSync(exportsFile)) writeFileSync(exportsFile, '# no exports yet\n');
  writeFileSync(logFile, '');
  // The shell stays as the parent of both so that stopping it (by its PID) stops them: its trap.
  const script = `
set -e
mount -t tmpfs sidereal-run /run
mkdir -p /run/rpcbind /run/ganesha
rpcbind -f -w & RPCBIND=$!
trap 'kill $GANESHA $RPCBIND 2>/dev/null; wait' TERM INT
sleep 0.3
ganesha.nfsd -F -f ${configFile} -L ${logFile} -p ${pidFile} -N NIV_EVENT & GANESHA=$!
wait $GANESHA`;
  const proc = nsStart(ns, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdin: 'ignore' });
  const g: Ganesha = { proc, configFile, exportsFile, pidFile, logFile, stop: () => stopChild(proc, 5000) };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (readFileSync(logFile, 'utf8').includes('NFS SERVER INITIALIZED')) return g;
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await g.stop();
  throw new Error(`nfs-ganesha did not start in ${ns}: ${readFileSync(logFile, 'utf8').split('\n').filter((l) => /CRIT|MAJ|FATAL/.test(l)).slice(-5).join('\n')}`);
}
