/**
 * kill -9 under writes, in every `npm test` (5 rounds; `npm run crash` runs 50): nothing the
 * daemon acknowledged is lost, the database stays whole, no address is bound twice, and the
 * daemon comes back each time (test/crash/crash.ts).
 */
import { describe, expect, it } from 'vitest';
import { crashCampaign } from '../crash/crash.js';

const KILLS = Number(process.env.CRASH_KILLS ?? 5);

describe(`kill -9 of the daemon during API and lease writes, ${KILLS} times`, () => {
  it('loses no acknowledged registration or lease, and the inventory stays whole', async () => {
    const r = await crashCampaign(KILLS, (l) => console.log(l));
    expect(r.kills).toBe(KILLS);
    expect(r.failedRestarts).toEqual([]);
    expect(r.integrity).toEqual([]);
    expect(r.machinesLost).toEqual([]);
    expect(r.leasesLost).toEqual([]);
    expect(r.doubleBound).toEqual([]);
    // The kills landed while writes were being acknowledged, not before or after them.
    expect(r.machinesAcked).toBeGreaterThan(KILLS * 10);
    expect(r.leasesAcked).toBeGreaterThan(KILLS * 5);
  }, 300_000);
});
