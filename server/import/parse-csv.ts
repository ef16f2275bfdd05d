/**
 * CSV with a header row (RFC 4180: `,` separators, `"` quoting with `""` for a
 * quote, line breaks allowed inside quotes, CRLF or LF). Columns are matched
 * case-insensitively with a few aliases. An unknown column refuses the whole
 * file: a misspelt `hostnmae` would otherwise drop every host name silently.
 */
import type { ImportRecord, ParseProblem, ParseResult } from './types.js';

/** One row of fields and the line it starts on. */
export interface CsvRow { line: number; fields: string[] }

/** RFC 4180 reader; a quote left open is reported on the line where its field began. */
export function readCsv(text: string, problems: ParseProblem[]): CsvRow[] {
  const rows: CsvRow[] = [];
  const s = text.replace(/^\uFEFF/, '');
  let line = 1;
  let i = 0;
  while (i < s.length) {
    const row: CsvRow = { line, fields: [] };
    for (;;) {
      let field = '';
      if (s[i] === '"') {
        const start = line;
        i++;
        for (;;) {
          if (i >= s.length) { problems.push({ line: start, message: 'quoted field is not closed (missing ")' }); row.fields.push(field); rows.push(row); return rows; }
          const c = s[i]!;
          if (c === '"') {
            if (s[i + 1] === '"') { field += '"'; i += 2; continue; }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        // Text between a closing quote and the next separator is not RFC 4180; keep it rather than lose data, but say so.
        let junk = '';
        while (i < s.length && s[i] !== ',' && s[i] !== '\n' && s[i] !== '\r') junk += s[i++];
        if (junk.trim()) problems.push({ line, message: `text after a closing quote: ${JSON.stringify(junk)}` });
      } else {
        while (i < s.length && s[i] !== ',' && s[i] !== '\n' && !(s[i] === '\r' && s[i + 1] === '\n')) field += s[i++];
      }
      row.fields.push(field);
      if (s[i] === ',') { i++; continue; }
      if (s[i] === '\r') i++;
      if (s[i] === '\n') { i++; line++; }
      break;
    }
    rows.push(row);
  }
  return rows;
}

type Column = 'mac' | 'hostname' | 'ipv4' | 'group' | 'root' | 'bootMode' | 'kernelArgs';
const COLUMNS: Record<string, Column> = {
  mac: 'mac', hostname: 'hostname', ipv4: 'ipv4', ip: 'ipv4', group: 'group', root: 'root',
  bootmode: 'bootMode', mode: 'bootMode', kernelargs: 'kernelArgs',
};
export const CSV_COLUMNS = 'mac, hostname, ipv4 (or ip), group, root, bootMode (or mode), kernelArgs';

export function parseCsv(input: string): ParseResult {
  const out: ParseResult = { records: [], problems: [] };
  const isBlank = (r: CsvRow) => r.fields.every((f) => f.trim() === '');
  const rows = readCsv(input, out.problems).filter((r) => !isBlank(r));
  const header = rows.shift();
  if (!header) { out.problems.push({ line: 1, message: 'empty file: expected a header row naming the columns' }); return out; }
  const cols: Column[] = [];
  const seen = new Set<Column>();
  for (const h of header.fields) {
    const col = COLUMNS[h.trim().toLowerCase()];
    if (!col) out.problems.push({ line: header.line, message: `unknown column ${JSON.stringify(h.trim())}: the columns are ${CSV_COLUMNS}` });
    else if (seen.has(col)) out.problems.push({ line: header.line, message: `column ${JSON.stringify(h.trim())} repeats ${col}` });
    else seen.add(col);
    cols.push(col ?? 'mac');
  }
  if (!seen.has('mac')) out.problems.push({ line: header.line, message: 'no mac column: every row needs the MAC of the machine' });
  // A bad header makes every row's meaning uncertain: refuse the file rather than import half of each row.
  if (out.problems.some((p) => p.line === header.line)) return out;
  for (const row of rows) {
    if (row.fields.length !== cols.length) {
      out.problems.push({ line: row.line, message: `${row.fields.length} fields where the header has ${cols.length}` });
      continue;
    }
    const rec: ImportRecord = { line: row.line, mac: '' };
    cols.forEach((col, k) => {
      const v = row.fields[k]!.trim();
      if (v !== '') rec[col] = v;
    });
    if (!rec.mac) { out.problems.push({ line: row.line, message: 'empty mac' }); continue; }
    out.records.push(rec);
  }
  return out;
}
