/**
 * `npm run crash`: 50 rounds of kill -9 under writes (test/crash/crash.ts), printing the
 * counts; exit 1 if anything acknowledged was lost, the database is damaged, an address is
 * bound twice, or the daemon does not come back.
 *
 *   node dist/test/crash/main.js [--kills N]
 */
import { parseArgs } from 'node:util';
import { crashCampaign } from './crash.js';

const { values } = parseArgs({ options: { kills: { type: 'string' } } });
const kills = Number(values.kills ?? 50);
const r = await crashCampaign(kills, (l) => console.log(l));
for (const k of ['machinesLost', 'leasesLost', 'integrity', 'doubleBound', 'failedRestarts'] as const) for (const v of r[k]) console.log(`${k}: ${v}`);
console.log(JSON.stringify({
  kills: r.kills, machinesAcked: r.machinesAcked, leasesAcked: r.leasesAcked, machinesLost: r.machinesLost.length,
  leasesLost: r.leasesLost.length, integrityFailures: r.integrity.length, doubleBound: r.doubleBound.length, failedRestarts: r.failedRestarts.length,
}));
process.exit(r.machinesLost.length + r.leasesLost.length + r.integrity.length + r.doubleBound.length + r.failedRestarts.length ? 1 : 0);
