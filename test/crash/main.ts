/**
 * `npm run crash`: 50 rounds of kill -9 under writes and a root rebuild (test/crash/crash.ts),
 * printing the counts; exit 1 if anything acknowledged was lost, the database is damaged, an
 * address is bound twice, the daemon does not come back, or a restart finds the roots other
 * than whole (a mount or a build process left, a half-built generation, the live root changed
 * or not served). Needs root and debootstrap for the builds; --no-build leaves them out.
 *
 *   node dist/test/crash/main.js [--kills N] [--no-build]
 */
import { parseArgs } from 'node:util';
import { crashCampaign } from './crash.js';

const { values } = parseArgs({ options: { kills: { type: 'string' }, 'no-build': { type: 'boolean', default: false } } });
const kills = Number(values.kills ?? 50);
// Ctrl-C (or SIGTERM) ends the campaign after the round in progress, cleaning up; a second one exits at once.
const stop = new AbortController();
const onSignal = () => {
  if (stop.signal.aborted) process.exit(130);
  console.log('stopping after this round (again to exit at once, leaving the namespaces and files)');
  stop.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
const r = await crashCampaign(kills, (l) => console.log(l), { build: !values['no-build'], signal: stop.signal });
for (const k of ['machinesLost', 'leasesLost', 'integrity', 'doubleBound', 'failedRestarts'] as const) for (const v of r[k]) console.log(`${k}: ${v}`);
for (const v of r.build?.rootProblems ?? []) console.log(`rootProblems: ${v}`);
console.log(JSON.stringify({
  kills: r.kills, machinesAcked: r.machinesAcked, leasesAcked: r.leasesAcked, machinesLost: r.machinesLost.length,
  leasesLost: r.leasesLost.length, integrityFailures: r.integrity.length, doubleBound: r.doubleBound.length, failedRestarts: r.failedRestarts.length,
  ...(r.build ? { firstBuildSeconds: r.build.firstBuildSeconds, killedInStep: r.build.killedInStep, finishedBeforeKill: r.build.finishedBeforeKill, rootProblems: r.build.rootProblems.length } : {}),
}));
const failures = r.machinesLost.length + r.leasesLost.length + r.integrity.length + r.doubleBound.length + r.failedRestarts.length + (r.build?.rootProblems.length ?? 0);
process.exit(failures ? 1 : 0);
