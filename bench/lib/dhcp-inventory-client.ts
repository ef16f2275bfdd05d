/**
 * The HTTP side of bench/inventory.ts, run in the client namespace: per-MAC
 * boot menus (iPXE scripts at /boot/<mac>.ipxe and pxelinux menus at
 * /files/pxelinux.cfg/01-<mac>) one request at a time, and the full machine
 * list through the admin API (every page of 1,000). Prints one JSON line.
 *   ip netns exec NS node dist/bench/lib/dhcp-inventory-client.js '<json>'
 * Every loop is bounded by its count.
 */
import { macFor, summarize, type LatencySummary } from './dhcp-loadgen.js';
import { isMain } from './report.js';

export interface MenuSpec { http: string; api: string; token: string; macPrefix: number; machines: number; samples: number; listRuns: number }
export interface MenuResult {
  ipxe: LatencySummary & { failures: number; bytes: number };
  pxelinux: LatencySummary & { failures: number; bytes: number };
  /** Seconds to fetch every page of GET /api/v1/machines, per run. */
  list: { seconds: number[]; items: number; pages: number; failures: number };
}

async function timed(url: string, headers?: Record<string, string>): Promise<{ ms: number; ok: boolean; bytes: number; body: string }> {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { headers });
    const body = await r.text();
    return { ms: performance.now() - t0, ok: r.ok, bytes: body.length, body };
  } catch {
    return { ms: performance.now() - t0, ok: false, bytes: 0, body: '' };
  }
}

async function menus(spec: MenuSpec, path: (mac: string) => string, expect: RegExp) {
  const ms: number[] = [];
  let failures = 0;
  let bytes = 0;
  const step = Math.max(1, Math.floor(spec.machines / spec.samples));
  // A few first requests warm the route (JIT, connection) and are not counted.
  for (let i = 0; i < 20; i++) await timed(spec.http + path(macFor(spec.macPrefix, i)));
  for (let k = 0; k < spec.samples; k++) {
    const mac = macFor(spec.macPrefix, (k * step) % spec.machines);
    const r = await timed(spec.http + path(mac));
    if (r.ok && expect.test(r.body)) { ms.push(r.ms); bytes = r.bytes; } else failures++;
  }
  return { ...summarize(ms), failures, bytes };
}

export async function runMenus(spec: MenuSpec): Promise<MenuResult> {
  const ipxe = await menus(spec, (mac) => `/boot/${mac}.ipxe`, /^#!ipxe/);
  const pxelinux = await menus(spec, (mac) => `/files/pxelinux.cfg/01-${mac.replace(/:/g, '-')}`, /\S/);
  const headers = { authorization: `Bearer ${spec.token}` };
  const seconds: number[] = [];
  let items = 0, pages = 0, failures = 0;
  for (let run = 0; run < spec.listRuns; run++) {
    const t0 = performance.now();
    items = 0;
    pages = 0;
    for (let offset = 0; pages < 1000; offset += 1000) {
      const r = await timed(`${spec.api}/api/v1/machines?limit=1000&offset=${offset}`, headers);
      pages++;
      if (!r.ok) { failures++; break; }
      const n = (JSON.parse(r.body) as { items: unknown[] }).items.length;
      items += n;
      if (n < 1000) break;
    }
    seconds.push((performance.now() - t0) / 1000);
  }
  return { ipxe, pxelinux, list: { seconds, items, pages, failures } };
}

if (isMain(import.meta.url)) {
  const r = await runMenus(JSON.parse(process.argv[2] ?? '{}') as MenuSpec);
  process.stdout.write(JSON.stringify(r) + '\n');
}
