/**
 * `npm run fuzz`: the long campaign (1,000,000 packets of each protocol by
 * default), printing the counts the issue asks for and exiting 1 on any
 * violation, tshark finding or heap growth.
 *
 *   node dist/test/fuzz/main.js [--packets N] [--seed N]
 */
import { parseArgs } from 'node:util';
import { runFuzz } from './run.js';
import { heapGrowth } from './mutate.js';

const { values } = parseArgs({ options: { packets: { type: 'string' }, seed: { type: 'string' } } });
const packets = Number(values.packets ?? 1_000_000);
const seed = Number(values.seed ?? Date.now() % 1_000_000);
console.log(`fuzz: ${packets} packets of each protocol, seed ${seed} (replay with --seed ${seed})`);
const r = await runFuzz(packets, seed, (l) => console.log(l));
let bad = 0;
for (const [name, s] of [['dhcp', r.dhcp], ['tftp', r.tftp]] as const) {
  const growth = heapGrowth(s.heap);
  console.log(`${name}: heap after GC by quarter ${s.heap.map((h) => h.toFixed(1)).join(' ')} MiB (growth ${growth.toFixed(1)} MiB)`);
  for (const v of s.violations) console.log(`${name} VIOLATION ${v}`);
  for (const f of s.tsharkFindings) console.log(`${name} TSHARK frame ${f.frame} ${f.protocols}: ${f.message}`);
  bad += s.violations.length + s.tsharkFindings.length + (growth > 16 ? 1 : 0);
}
const rssGrowth = heapGrowth(r.tftp.rss);
console.log(`tftp: RSS by quarter ${r.tftp.rss.map((h) => h.toFixed(0)).join(' ')} MiB (growth ${rssGrowth.toFixed(1)} MiB)`);
if (rssGrowth > 64) bad++;
console.log(JSON.stringify({
  seed, packets,
  dhcp: { fed: r.dhcp.fed, malformed: r.dhcp.malformed, handled: r.dhcp.handled, replies: r.dhcp.replies, violations: r.dhcp.violations.length, tsharkFrames: r.dhcp.tsharkFrames, tsharkFindings: r.dhcp.tsharkFindings.length, seconds: Math.round(r.dhcp.seconds) },
  tftp: { fed: r.tftp.fed, toSessions: r.tftp.toSessions, replies: r.tftp.replies, server: r.tftp.server, violations: r.tftp.violations.length, tsharkFrames: r.tftp.tsharkFrames, tsharkFindings: r.tftp.tsharkFindings.length, seconds: Math.round(r.tftp.seconds) },
}));
process.exit(bad ? 1 : 0);
