/**
 * Importing machines from a SIDUS-style setup (dhcpd.conf hosts, dnsmasq
 * dhcp-host, /etc/ethers, CSV). One entry point for the API and the CLI:
 * `prepareImport` reads and plans (the dry run), `applyImport` lands the
 * plan in one transaction, `describeImport` prints a plan for people.
 */
import type { Inventory } from '../inventory/index.js';
import { InventoryError } from '../inventory/index.js';
import { detectFormat, isImportFormat, parseImport, IMPORT_FORMATS, type ImportFormat } from './formats.js';
import { planImport, type ImportPlan, type PlanOptions } from './plan.js';
import type { ParseProblem } from './types.js';

export type { ImportRecord, ParseProblem, ParseResult } from './types.js';
export { detectFormat, parseImport, isImportFormat, IMPORT_FORMATS, type ImportFormat } from './formats.js';
export { planImport, applyImport, ImportApplyError, type ImportPlan, type PlanItem, type Refusal, type FieldDiff, type PlanOptions, type ApplyResult } from './plan.js';

export interface PreparedImport {
  format: ImportFormat;
  /** Lines that could not be read at all; they import nothing. */
  problems: ParseProblem[];
  plan: ImportPlan;
}

/**
 * Parse `text` (in `format`, else detected from `filename` and the content)
 * and plan it against the inventory. Throws an InventoryError on field
 * `format` when the format is unknown or cannot be told.
 */
export function prepareImport(inv: Inventory, text: string, opts: PlanOptions & { format?: string; filename?: string }): PreparedImport {
  let format: ImportFormat | undefined;
  if (opts.format !== undefined) {
    if (!isImportFormat(opts.format)) throw new InventoryError('invalid', 'format', `${JSON.stringify(opts.format)} must be one of ${IMPORT_FORMATS.join(', ')}`);
    format = opts.format;
  } else {
    format = detectFormat(text, opts.filename);
    if (!format) throw new InventoryError('invalid', 'format', `cannot tell the format of ${opts.filename ?? 'the file'}: name it (${IMPORT_FORMATS.join(', ')})`);
  }
  const { records, problems } = parseImport(text, format);
  return { format, problems, plan: planImport(inv, records, opts) };
}

/** The dry run as text, one line per record, for the CLI. */
export function describeImport({ format, problems, plan }: PreparedImport): string[] {
  const out: string[] = [];
  const fields = (d: ImportPlan['add'][number]) => d.diff.map((x) => `${x.field}=${x.after}`).join(' ');
  for (const a of plan.add) out.push(`add       line ${a.line}: ${a.mac} ${fields(a)}${a.note ? `  (${a.note})` : ''}`);
  for (const c of plan.change) {
    out.push(`change    line ${c.line}: ${c.mac} ${c.diff.map((x) => `${x.field}: ${x.before ?? '-'} -> ${x.after}`).join(', ')}${c.note ? `  (${c.note})` : ''}`);
  }
  for (const u of plan.unchanged) out.push(`unchanged line ${u.line}: ${u.mac}`);
  for (const r of plan.refuse) out.push(`refuse    line ${r.line}: ${r.mac} ${r.field}: ${r.reason}`);
  for (const p of problems) out.push(`unread    line ${p.line}: ${p.message}`);
  out.push(`${format}: ${plan.add.length} to add, ${plan.change.length} to change, ${plan.unchanged.length} unchanged, ` +
    `${plan.refuse.length} refused, ${problems.length} unreadable`);
  return out;
}
