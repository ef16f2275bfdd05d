/** `sidereal discovered list|adopt`: unknown MACs that asked for DHCP, and registering one. */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError, table } from './context.js';
import { parseMac, type Discovered, type Machine } from '../inventory/index.js';

export async function discoveredCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list': {
      const { items } = await ctx.api<{ items: Discovered[] }>('GET', '/api/v1/discovered');
      const when = (t: number) => new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');
      ctx.out(ctx.json ? JSON.stringify(items) : table(items.map((d) => ({
        ...d, first: when(d.firstSeen), last: when(d.lastSeen), arch: d.archCode, vendor: d.vendorClass, seen: d.seenCount,
      })), ['mac', 'first', 'last', 'seen', 'arch', 'vendor', 'hostname']));
      return 0;
    }
    case 'adopt': {
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true,
        options: { hostname: { type: 'string' }, ip: { type: 'string' }, group: { type: 'string' }, root: { type: 'string' }, mode: { type: 'string' } },
      });
      if (positionals.length !== 1) throw new UsageError('discovered adopt MAC [--hostname H] [--ip A.B.C.D] [--group G] [--root R] [--mode M]');
      const body = Object.fromEntries(Object.entries({ hostname: values.hostname, ipv4: values.ip, group: values.group, root: values.root, bootMode: values.mode }).filter(([, v]) => v !== undefined));
      const m = await ctx.api<Machine>('POST', `/api/v1/discovered/${parseMac(positionals[0]!)}/adopt`, body);
      ctx.out(ctx.json ? JSON.stringify(m) : `adopted ${m.mac}${m.hostname ? ` as ${m.hostname}` : ''}`);
      return 0;
    }
    default:
      throw new UsageError('discovered list|adopt');
  }
}
