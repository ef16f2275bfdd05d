/** `sidereal explain MAC --arch bios|efi32|efi64|http|ipxe`: what DHCP answers and what the loader gets next (from the API, which runs the serving code). */
import { parseArgs } from 'node:util';
import { type CliContext, UsageError } from './context.js';
import { EXPLAIN_ARCHES, type ExplainArch, type Explanation } from '../boot/explain.js';
import { parseMac } from '../inventory/index.js';

const OPTION_NAMES: Record<string, string> = {
  1: 'subnet mask', 3: 'router', 6: 'dns', 12: 'hostname', 15: 'domain', 28: 'broadcast', 51: 'lease time', 53: 'message type',
  54: 'server id', 58: 'renewal (T1)', 59: 'rebinding (T2)', 60: 'vendor class', 66: 'tftp server', 67: 'boot file', 97: 'client uuid', 175: 'ipxe encap',
};

export async function explainCommand(ctx: CliContext, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { arch: { type: 'string', default: 'bios' } } });
  if (positionals.length !== 1 || !EXPLAIN_ARCHES.includes(values.arch as ExplainArch)) {
    throw new UsageError(`explain MAC --arch ${EXPLAIN_ARCHES.join('|')}`);
  }
  const mac = parseMac(positionals[0]!);
  const e = await ctx.api<Explanation>('GET', `/api/v1/machines/${mac}/explain?arch=${values.arch}`);
  if (ctx.json) {
    ctx.out(JSON.stringify(e));
    return 0;
  }
  const p = e.plan;
  ctx.out(`machine   ${mac} ${p.known ? `registered${p.hostname ? ` as ${p.hostname}` : ''}` : 'not registered (unknown client)'}`);
  ctx.out(`root      ${p.root.value ?? '-'} (from ${p.root.from})\nboot mode ${p.bootMode.value} (from ${p.bootMode.from})\nloader    ${p.loader.value} (from ${p.loader.from})`);
  ctx.out(`\nDHCP (${values.arch}): ${e.dhcp.outcome}${e.dhcp.reason ? ` - ${e.dhcp.reason}` : ''}`);
  if (e.dhcp.yiaddr) {
    ctx.out(`  yiaddr  ${e.dhcp.yiaddr}\n  siaddr  ${e.dhcp.siaddr}\n  file    ${e.dhcp.file}`);
    for (const [code, v] of Object.entries(e.dhcp.options)) ctx.out(`  option ${code.padStart(3)} ${(OPTION_NAMES[code] ?? '').padEnd(15)} ${v}`);
  }
  if (e.next) ctx.out(`\n${e.next.path}:\n${e.next.content}`);
  return 0;
}
