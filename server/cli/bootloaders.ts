/** `sidereal bootloaders install [--tftp-root DIR]`: copy pxelinux, syslinux.efi and iPXE from Debian's packages. */
import { parseArgs } from 'node:util';
import { type CliContext } from './context.js';
import { installBootloaders } from '../boot/bootloaders.js';

export async function bootloadersCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { 'tftp-root': { type: 'string' } } });
  if (sub !== 'install') {
    ctx.out('usage: sidereal bootloaders install [--tftp-root DIR]');
    return 2;
  }
  const root = values['tftp-root'] ?? ctx.config().tftp.root;
  const r = await installBootloaders(root);
  if (ctx.json) ctx.out(JSON.stringify(r));
  else {
    ctx.out(`installed ${r.installed.length} files into ${root}`);
    for (const m of r.missing) ctx.out(`missing (optional) ${m.file}: install the Debian package ${m.package}`);
  }
  return 0;
}
