/**
 * `npm run bench`: every side-by-side benchmark of issue 6 in one run, one
 * after the other (never two at once: they share 2 cores), then one JSON
 * file and one markdown table:
 *
 *   bench/results/<stamp>.json   every section, every run's raw figures
 *   bench/results/<stamp>.md     the tables
 *   bench/RESULTS.md             a copy of the latest tables (the README links it)
 *
 *   node dist/bench/all.js [--quick] [--only tftp,dhcp] [--skip qemu-storm]
 *
 * A section that fails is reported as failed (with its error) and the others
 * still run; the exit code is then 1. Each section is also a script of its
 * own (`node dist/bench/tftp.js`), and prints the same table.
 */
import { execa } from 'execa';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { installDir } from '../server/install-dir.js';
import {
  machineInfo, resultsDir, sectionMarkdown, stamp, targetsMarkdown, type Section,
} from './lib/report.js';

/** In the order they run: the quick protocol ones first, the QEMU storm (slowest) last. */
export const SECTIONS = ['tftp', 'dhcp', 'http', 'inventory', 'storm', 'qemu-storm'] as const;
type Name = (typeof SECTIONS)[number];

interface BenchModule { run(opts: { quick?: boolean }): Promise<Section> }

function pick(only: string | undefined, skip: string | undefined): Name[] {
  const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);
  for (const n of [...list(only), ...list(skip)]) {
    if (!(SECTIONS as readonly string[]).includes(n)) throw new Error(`--only/--skip: no bench named "${n}" (there are: ${SECTIONS.join(', ')})`);
  }
  const o = list(only);
  const s = list(skip);
  return SECTIONS.filter((n) => (o.length === 0 || o.includes(n)) && !s.includes(n));
}

/** The reference servers' own version lines, so a table is read with what it was measured against. */
async function referenceVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[]) => {
    const r = await execa(cmd, args, { reject: false });
    return (r.stdout || r.stderr || `not found (${cmd})`).split('\n')[0]!.trim();
  };
  return {
    'tftpd-hpa': await first('/usr/sbin/in.tftpd', ['-V']),
    dnsmasq: await first('dnsmasq', ['--version']),
    nginx: await first('/usr/sbin/nginx', ['-v']),
    curl: await first('curl', ['--version']),
    atftp: await first('atftp', ['--version']),
    qemu: await first('qemu-system-x86_64', ['--version']),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, skip: { type: 'string' } } });
  const names = pick(values.only, values.skip);
  const started = new Date();
  const sections: Section[] = [];
  const failed: string[] = [];
  for (const name of names) {
    const t0 = Date.now();
    process.stderr.write(`\n== bench ${name}${values.quick ? ' (quick)' : ''} ==\n`);
    try {
      const mod = (await import(`./${name}.js`)) as BenchModule;
      const s = await mod.run({ quick: values.quick });
      s.notes.push(`section took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      sections.push(s);
      process.stdout.write('\n' + sectionMarkdown(s));
    } catch (err) {
      failed.push(name);
      const msg = err instanceof Error ? err.message : String(err);
      process.stderr.write(`bench ${name} failed: ${err instanceof Error ? err.stack : msg}\n`);
      sections.push({ name, title: `${name} (FAILED)`, rows: [], notes: [`failed after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${msg}`] });
    }
  }

  const machine = { ...machineInfo(), references: await referenceVersions() };
  const id = stamp(started);
  const header = [
    `## Benchmarks, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC${values.quick ? ' (quick mode: smoke figures only)' : ''}`,
    '',
    `Machine: ${machine.cpus} × ${machine.cpu}, Linux ${machine.kernel}, Node ${machine.node}. ` +
      `Medians over the runs, (min–max); ratio = Sidereal / reference, measured in the same run with the same client. ` +
      `Reference servers: ${Object.entries(machine.references).filter(([k]) => ['tftpd-hpa', 'dnsmasq', 'nginx'].includes(k)).map(([k, v]) => `${k}: ${v}`).join('; ')}.`,
    '',
    targetsMarkdown(sections),
  ].join('\n');
  const md = header + '\n' + sections.map(sectionMarkdown).join('\n');
  mkdirSync(resultsDir(), { recursive: true });
  const jsonFile = path.join(resultsDir(), `${id}.json`);
  const mdFile = path.join(resultsDir(), `${id}.md`);
  writeFileSync(jsonFile, JSON.stringify({ date: started.toISOString(), quick: values.quick, machine, sections, failed }, null, 2) + '\n');
  writeFileSync(mdFile, md);
  // Quick runs are smoke checks: they never replace the published table.
  if (!values.quick && failed.length === 0) copyFileSync(mdFile, path.join(installDir(), 'bench', 'RESULTS.md'));
  process.stdout.write('\n' + targetsMarkdown(sections));
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), jsonFile)} and ${path.relative(process.cwd(), mdFile)}\n`);
  if (failed.length) {
    process.stderr.write(`failed sections: ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
