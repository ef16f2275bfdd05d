/**
 * ISC dhcpd.conf: every `host NAME { ... }` declaration, wherever it sits
 * (top level, or inside `subnet`, `group`, `shared-network`, `pool`...).
 * A SIDUS server keeps its fixed hosts there; everything else in the file
 * (option-93 classes, ranges, subnet options) is Sidereal's own config and is
 * skipped. A small tokenizer rather than regexes: declarations span lines,
 * strings may hold `;`, `{` or `#`, and nesting decides what is a host.
 */
import type { ImportRecord, ParseProblem, ParseResult } from './types.js';
import { addNote, padMac } from './types.js';
import { checkHostname } from '../inventory/checks.js';
import { isIpv4 } from '../net/ipv4.js';

interface Token {
  kind: 'word' | 'str' | 'punct';
  v: string;
  line: number;
}

function tokenize(text: string, problems: ParseProblem[]): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') { line++; i++; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (c === '#') { while (i < text.length && text[i] !== '\n') i++; continue; }
    if (c === '{' || c === '}' || c === ';' || c === ',') { out.push({ kind: 'punct', v: c, line }); i++; continue; }
    if (c === '"') {
      const start = line;
      let v = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        if (text[i] === '\n') line++;
        v += text[i];
        i++;
      }
      if (i >= text.length) { problems.push({ line: start, message: 'string is not closed (missing ")' }); break; }
      i++;
      out.push({ kind: 'str', v, line: start });
      continue;
    }
    let v = '';
    while (i < text.length && !/[\s{};,"#]/.test(text[i]!)) v += text[i++];
    out.push({ kind: 'word', v, line });
  }
  return out;
}

/** A statement: its tokens up to `;` (ended) or `{` (opens a block), or to `}`/EOF (unterminated). */
interface Statement { toks: Token[]; end: ';' | '{' | '}' | 'eof'; line: number }

class Reader {
  private i = 0;
  constructor(private readonly toks: Token[]) {}
  statement(): Statement {
    const toks: Token[] = [];
    const line = this.toks[this.i]?.line ?? 0;
    while (this.i < this.toks.length) {
      const t = this.toks[this.i]!;
      if (t.kind === 'punct' && (t.v === ';' || t.v === '{')) { this.i++; return { toks, end: t.v, line }; }
      if (t.kind === 'punct' && t.v === '}') {
        // Leave the `}` for the caller when nothing precedes it; else report the missing `;` first.
        if (toks.length === 0) this.i++;
        return { toks, end: '}', line: toks.length ? line : t.line };
      }
      toks.push(t);
      this.i++;
    }
    return { toks, end: 'eof', line };
  }
}

const text = (toks: Token[]) => toks.map((t) => (t.kind === 'str' ? JSON.stringify(t.v) : t.v)).join(' ').replace(/ ,/g, ',');

/** Skip a block we do not read (a class, an `if` inside a host): statements until its `}`. */
function skipBlock(r: Reader, opened: number, problems: ParseProblem[]): void {
  for (;;) {
    const s = r.statement();
    if (s.end === '{') skipBlock(r, s.line, problems);
    else if (s.end === '}' && s.toks.length === 0) return;
    else if (s.end === 'eof') { problems.push({ line: opened, message: 'block opened here is not closed (missing })' }); return; }
  }
}

function parseHost(r: Reader, name: Token | undefined, line: number, problems: ParseProblem[]): ImportRecord | undefined {
  let mac: string | undefined;
  let hostName: string | undefined;
  const rec: ImportRecord = { line, mac: '' };
  let bootFile = false;
  for (;;) {
    const s = r.statement();
    if (s.end === 'eof') { problems.push({ line, message: `host ${name?.v ?? ''} { is not closed (missing })` }); return undefined; }
    if (s.end === '}' && s.toks.length === 0) break;
    if (s.end === '}') problems.push({ line: s.line, message: `missing ; after ${text(s.toks)}` });
    if (s.end === '{') { skipBlock(r, s.line, problems); addNote(rec, `not imported: ${text(s.toks)} { ... } (line ${s.line})`); continue; }
    const [k0, k1, ...rest] = s.toks;
    const key = k0?.v;
    if (key === 'hardware') {
      if (k1?.v !== 'ethernet' || rest.length !== 1) {
        rec.refused = { field: 'mac', reason: `hardware ${text(s.toks.slice(1))} is not an Ethernet MAC` };
        mac = text(rest);
      } else mac = padMac(rest[0]!.v);
    } else if (key === 'fixed-address') {
      const addrs = s.toks.slice(1).filter((t) => t.v !== ',').map((t) => t.v);
      if (addrs.length !== 1) {
        rec.refused = { field: 'ipv4', reason: `fixed-address lists ${addrs.length} addresses (${addrs.join(', ')}); a machine has one` };
      } else if (!isIpv4(addrs[0]!)) {
        // dhcpd resolves a name at start-up; Sidereal stores the address itself, and guessing it from DNS here would hide a stale record.
        rec.refused = { field: 'ipv4', reason: `fixed-address ${addrs[0]} is a host name, not an IPv4 address: put the address in the file` };
      } else rec.ipv4 = addrs[0];
    } else if (key === 'option' && k1?.v === 'host-name' && rest.length === 1) {
      hostName = rest[0]!.v;
    } else if (key === 'filename' || key === 'next-server') {
      bootFile = true;
    } else if (key) {
      addNote(rec, `not imported: ${text(s.toks)}`);
    }
  }
  if (bootFile) addNote(rec, 'not imported: per-host boot file (filename/next-server), use a group');
  if (!mac) {
    problems.push({ line, message: `host ${name?.v ?? ''} has no hardware ethernet: nothing to register it by` });
    return undefined;
  }
  rec.mac = mac;
  if (hostName !== undefined) rec.hostname = hostName;
  else if (name) {
    try {
      rec.hostname = checkHostname(name.v);
    } catch {
      addNote(rec, `no host name: the block name ${JSON.stringify(name.v)} is not an RFC 1123 name and there is no option host-name`);
    }
  }
  return rec;
}

/** Statements until the end of the current block (or the file at depth 0), collecting hosts at any depth. */
function parseBlock(r: Reader, depth: number, opened: number, out: ParseResult): void {
  for (;;) {
    const s = r.statement();
    if (s.end === 'eof') {
      if (s.toks.length) out.problems.push({ line: s.line, message: `missing ; after ${text(s.toks)}` });
      if (depth > 0) out.problems.push({ line: opened, message: 'block opened here is not closed (missing })' });
      return;
    }
    if (s.end === '}' && s.toks.length === 0) {
      if (depth > 0) return;
      out.problems.push({ line: s.line, message: 'unexpected }' });
      continue;
    }
    if (s.end === '}') { out.problems.push({ line: s.line, message: `missing ; after ${text(s.toks)}` }); continue; }
    if (s.end === '{') {
      const [k0, name] = s.toks;
      if (k0?.kind === 'word' && k0.v === 'host') {
        if (s.toks.length !== 2) out.problems.push({ line: s.line, message: `host declaration should be "host NAME {", got ${text(s.toks)} {` });
        const rec = parseHost(r, name, s.line, out.problems);
        if (rec) out.records.push(rec);
      } else parseBlock(r, depth + 1, s.line, out);
    }
    // A top-level `;` statement is server config (options, ranges, authoritative...): not a machine.
  }
}

export function parseDhcpd(input: string): ParseResult {
  const out: ParseResult = { records: [], problems: [] };
  const r = new Reader(tokenize(input, out.problems));
  parseBlock(r, 0, 0, out);
  return out;
}
