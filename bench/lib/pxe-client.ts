/**
 * A simulated PXE client, for the boot storm: the DHCP exchange a PXE ROM and
 * then iPXE make (options 93, 94, 97, 60 PXEClient; iPXE adds 77 and 175),
 * pxelinux's TFTP (lock-step, blksize and tsize negotiated, its config-file
 * probe order) and iPXE's HTTP (script, then kernel and initrd, one
 * connection each). Many clients share one process:
 *
 *  - DHCP: one socket on 0.0.0.0:68 for every client, broadcast flag set,
 *    replies demultiplexed by xid (and chaddr);
 *  - TFTP and HTTP: each client uses its own IPv4 address (added to the
 *    client namespace's interface beforehand), as a real node would.
 *
 * Every wait is bounded: DHCP retransmits on the PXE schedule (4, 8, 16, 32 s)
 * and gives up after it, TFTP retransmits with a doubling timeout a bounded
 * number of times, HTTP has an overall timeout.
 */
import dgram from 'node:dgram';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { decodePacket, encodePacket, BROADCAST_FLAG, type DhcpOption, type DhcpPacket } from '../../server/dhcp/packet.js';
import { getIp, getOption, getString, messageType, MessageType, OPT } from '../../server/dhcp/options.js';
import { encodeRequest } from '../../server/tftp/packet.js';

const ZERO = '0.0.0.0';

export interface Lease {
  ip: string;
  serverId: string;
  nextServer: string;
  bootFile: string;
  /** DISCOVER or REQUEST sent more than once. */
  retransmits: number;
}

export interface DhcpIdentity {
  mac: string;
  /** 16 bytes, for option 97 (with the type byte 0 in front on the wire). */
  uuid: Buffer;
  /** Option 93 architecture (0 BIOS, 7 x64 UEFI). */
  arch: number;
  /** Second DHCP round by iPXE: options 77 "iPXE" and 175. */
  ipxe: boolean;
}

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** PXE 2.1 / RFC 4578 options as an Intel-style BIOS ROM sends them; iPXE's set when `ipxe`. */
function clientOptions(id: DhcpIdentity, type: number, extra: DhcpOption[]): DhcpOption[] {
  const archHex = id.arch.toString().padStart(5, '0');
  const opts: DhcpOption[] = [
    { code: OPT.messageType, data: Buffer.from([type]) },
    ...extra,
    { code: OPT.maxMessageSize, data: u16(id.ipxe ? 1472 : 1464) },
    // What a PXE ROM asks for (1 2 3 4 5 6 11 12 13 15 16 17 18 22 23 28 40 41 42 43 50 51 54 58 59 60 66 67 97 128-135).
    { code: OPT.paramList, data: Buffer.from([1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135, ...(id.ipxe ? [119, 175, 203] : [])]) },
    { code: OPT.clientUuid, data: Buffer.concat([Buffer.from([0]), id.uuid]) },
    { code: OPT.clientNdi, data: Buffer.from([1, 2, 1]) },
    { code: OPT.clientArch, data: u16(id.arch) },
    { code: OPT.vendorClass, data: Buffer.from(`PXEClient:Arch:${archHex}:UNDI:002001`, 'latin1') },
  ];
  if (id.ipxe) {
    opts.push({ code: OPT.clientId, data: Buffer.concat([Buffer.from([1]), macBytes(id.mac)]) });
    opts.push({ code: OPT.userClass, data: Buffer.from('iPXE', 'latin1') });
    // iPXE's feature list (175: 177 pxe, 189 bzimage, 19 http, 23 tftp, 33 dns), as a real iPXE sends.
    opts.push({ code: OPT.etherboot, data: Buffer.from([177, 5, 1, 128, 134, 16, 14, 189, 1, 1, 19, 1, 1, 23, 1, 1, 33, 1, 1, 235, 3, 1, 21, 1]) });
  }
  return opts;
}

/**
 * The one port-68 socket every simulated client shares. Replies come back
 * broadcast (the flag is set in every request); each is handed to the client
 * whose xid and chaddr it carries.
 */
export class DhcpMux {
  private readonly waiting = new Map<number, (p: DhcpPacket) => void>();
  private constructor(private readonly sock: dgram.Socket) {
    sock.on('message', (msg) => {
      let p: DhcpPacket;
      try {
        p = decodePacket(msg);
      } catch {
        return;
      }
      if (p.op !== 2) return;
      this.waiting.get(p.xid)?.(p);
    });
  }

  static async open(): Promise<DhcpMux> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: 8 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: ZERO, port: 68 }, () => {
        sock.off('error', reject);
        sock.setBroadcast(true);
        resolve();
      });
    });
    return new DhcpMux(sock);
  }

  close(): void {
    this.sock.close();
  }

  private send(p: DhcpPacket): void {
    this.sock.send(encodePacket(p), 67, '255.255.255.255');
  }

  /**
   * Send `req` and wait for a reply of one of `want` types, retransmitting
   * on `schedule` (seconds). Resolves null when the schedule is exhausted.
   */
  private ask(req: DhcpPacket, want: number[], schedule: number[], mac: Buffer): Promise<{ reply: DhcpPacket; tries: number } | null> {
    return new Promise((resolve) => {
      let tries = 0;
      let timer: NodeJS.Timeout | undefined;
      let finished = false;
      const finish = (r: { reply: DhcpPacket; tries: number } | null) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.waiting.delete(req.xid);
        resolve(r);
      };
      this.waiting.set(req.xid, (p) => {
        if (!p.chaddr.subarray(0, 6).equals(mac)) return;
        const t = messageType(p);
        if (t !== undefined && want.includes(t)) finish({ reply: p, tries });
      });
      const attempt = () => {
        if (finished) return;
        if (tries >= schedule.length) {
          finish(null);
          return;
        }
        const wait = schedule[tries]! * 1000;
        tries++;
        this.send(req);
        // After the poll phase (see tftpGet): a reply already queued is read before we give up on it.
        timer = setTimeout(() => setImmediate(attempt), wait);
      };
      attempt();
    });
  }

  /** DISCOVER, OFFER, REQUEST, ACK. Throws with the phase that failed. */
  async lease(id: DhcpIdentity, schedule: number[]): Promise<Lease> {
    const chaddr = Buffer.alloc(16);
    const mac = macBytes(id.mac);
    mac.copy(chaddr);
    const t0 = performance.now();
    const base = (type: number, xid: number, extra: DhcpOption[]): DhcpPacket => ({
      op: 1, htype: 1, hlen: 6, hops: 0, xid,
      secs: Math.min(0xffff, Math.floor((performance.now() - t0) / 1000)),
      flags: BROADCAST_FLAG, ciaddr: ZERO, yiaddr: ZERO, siaddr: ZERO, giaddr: ZERO,
      chaddr, sname: '', file: '', options: clientOptions(id, type, extra),
    });
    const xid = (Math.random() * 0xffffffff) >>> 0;
    const offer = await this.ask(base(MessageType.DISCOVER, xid, []), [MessageType.OFFER], schedule, mac);
    if (!offer) throw new Error(`dhcp: no OFFER after ${schedule.length} DISCOVERs`);
    const ip = offer.reply.yiaddr;
    const serverId = getIp(offer.reply, OPT.serverId);
    if (!serverId || ip === ZERO) throw new Error('dhcp: OFFER without yiaddr or server id');
    const req = base(MessageType.REQUEST, xid, [
      { code: OPT.requestedIp, data: ipBytes(ip) },
      { code: OPT.serverId, data: ipBytes(serverId) },
    ]);
    const ack = await this.ask(req, [MessageType.ACK, MessageType.NAK], schedule, mac);
    if (!ack) throw new Error(`dhcp: no ACK after ${schedule.length} REQUESTs`);
    if (messageType(ack.reply) === MessageType.NAK) throw new Error(`dhcp: NAK (${getString(ack.reply, OPT.message) ?? ''})`);
    const bootFile = getString(ack.reply, OPT.bootFile) ?? ack.reply.file;
    const tftp = getOption(ack.reply, OPT.tftpServer)?.toString('latin1');
    const nextServer = ack.reply.siaddr !== ZERO ? ack.reply.siaddr : tftp ?? serverId;
    return { ip: ack.reply.yiaddr, serverId, nextServer, bootFile, retransmits: offer.tries - 1 + ack.tries - 1 };
  }
}

export class TftpNotFound extends Error {}

export interface TftpGetOptions {
  /** Options as the client sends them; null: a plain RFC 1350 request. */
  blksize: number | null;
  tsize: boolean;
  /** Retransmit timeouts in ms for the RRQ and each ACK; the length bounds the retries. */
  schedule: number[];
  /** Called at each retransmission (diagnostics). */
  onRetransmit?: () => void;
}

export interface TftpGetResult {
  bytes: number;
  /** The file's content when `keep` (menus); otherwise only counted. */
  data?: Buffer;
  retransmits: number;
}

/**
 * One TFTP read, lock-step (one ACK per DATA), from `localIp` to
 * `server`:69. Not-found (ERROR 1) rejects with TftpNotFound.
 */
export function tftpGet(localIp: string, server: string, file: string, o: TftpGetOptions, keep = false): Promise<TftpGetResult> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: 'udp4' });
    const opts: Array<[string, string]> = [];
    if (o.tsize) opts.push(['tsize', '0']);
    if (o.blksize) opts.push(['blksize', String(o.blksize)]);
    const rrq = encodeRequest('RRQ', file, 'octet', opts);
    let tid = 0;
    let blksize = 512;
    let tsize: number | null = null;
    let expected = 1;
    let bytes = 0;
    let tries = 0;
    let retransmits = 0;
    let last: Buffer = rrq;
    let lastPort = 69;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    /** The last block arrived and its ACK is on its way. */
    let finishing = false;
    const chunks: Buffer[] = [];
    const done = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      if (err) reject(err);
      else resolve({ bytes, retransmits, ...(keep ? { data: Buffer.concat(chunks) } : {}) });
    };
    const arm = () => {
      clearTimeout(timer);
      const wait = o.schedule[tries];
      if (wait === undefined) {
        done(new Error(`tftp ${file}: timeout after ${tries} retransmissions (block ${expected}, ${bytes} bytes)`));
        return;
      }
      const armedFor = last;
      timer = setTimeout(() => {
        // Timers run before pending I/O in Node's loop: after this process was descheduled, a DATA may
        // already wait in the socket. Look again after the poll phase (setImmediate) before retransmitting,
        // so a stall of the client itself does not count as (or cause) a server timeout.
        setImmediate(() => {
          if (settled || finishing || last !== armedFor) return;
          tries++;
          retransmits++;
          o.onRetransmit?.();
          sock.send(last, lastPort, server);
          arm();
        });
      }, wait);
    };
    const send = (buf: Buffer, port: number) => {
      last = buf;
      lastPort = port;
      tries = 0;
      sock.send(buf, port, server);
      arm();
    };
    const ack = (block: number) => {
      const b = Buffer.allocUnsafe(4);
      b.writeUInt16BE(4, 0);
      b.writeUInt16BE(block & 0xffff, 2);
      return b;
    };
    sock.on('error', (err) => done(err));
    sock.on('message', (msg, rinfo) => {
      if (settled || finishing || msg.length < 4) return;
      if (tid === 0) tid = rinfo.port;
      else if (rinfo.port !== tid) return; // RFC 1350 4: another TID; ignore (an ERROR 5 is optional)
      const op = msg.readUInt16BE(0);
      if (op === 3) {
        const block = msg.readUInt16BE(2);
        if (block === (expected & 0xffff)) {
          const n = msg.length - 4;
          bytes += n;
          if (keep) chunks.push(Buffer.from(msg.subarray(4)));
          if (n < blksize) {
            // The final ACK: the server holds the transfer open until it arrives, so close only once it is sent.
            clearTimeout(timer);
            finishing = true;
            const err = tsize !== null && bytes !== tsize ? new Error(`tftp ${file}: got ${bytes} bytes, tsize said ${tsize}`) : null;
            sock.send(ack(block), tid, server, () => done(err));
            return;
          }
          expected++;
          send(ack(block), tid);
        } else if (block === ((expected - 1) & 0xffff)) {
          // Our ACK was lost and the server sent the block again: ACK it again.
          sock.send(ack(block), tid, server);
        }
      } else if (op === 6) {
        // OACK: take what the server accepted, then ACK 0.
        const parts = msg.subarray(2).toString('latin1').split('\0');
        for (let i = 0; i + 1 < parts.length; i += 2) {
          const k = parts[i]!.toLowerCase();
          if (k === 'blksize') blksize = Number(parts[i + 1]);
          if (k === 'tsize') tsize = Number(parts[i + 1]);
        }
        send(ack(0), tid);
      } else if (op === 5) {
        const code = msg.readUInt16BE(2);
        const text = msg.subarray(4, Math.max(4, msg.indexOf(0, 4))).toString('utf8');
        done(code === 1 ? new TftpNotFound(`tftp ${file}: not found`) : new Error(`tftp ${file}: ERROR ${code} ${text}`));
      }
    });
    sock.bind({ address: localIp, port: 0 }, () => send(rrq, 69));
  });
}

export interface HttpGetResult {
  status: number;
  bytes: number;
  data?: Buffer;
}

/** One GET on a fresh connection from `localIp` (iPXE opens one per file), body counted or kept. */
export function httpGet(localIp: string, url: string, timeoutMs: number, keep = false): Promise<HttpGetResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: localIp, agent: false, headers: { 'user-agent': 'iPXE/1.21.1+ (g4bd064de)', connection: 'close' } }, (res) => {
      let bytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (keep) chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const len = Number(res.headers['content-length']);
        if (res.statusCode !== 200) reject(new Error(`http ${url}: status ${res.statusCode}`));
        else if (Number.isFinite(len) && len !== bytes) reject(new Error(`http ${url}: ${bytes} bytes, content-length ${len}`));
        else resolve({ status: res.statusCode, bytes, ...(keep ? { data: Buffer.concat(chunks) } : {}) });
      });
      res.on('error', (err) => { clearTimeout(timer); reject(err); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`http ${url}: timeout after ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

/** pxelinux's config-file search order (syslinux doc/pxelinux.txt): UUID, 01-MAC, hex IP shortened one digit at a time, default. */
export function pxelinuxConfigNames(uuid: Buffer, mac: string, ip: string): string[] {
  const h = uuid.toString('hex');
  const u = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  const hexIp = ip.split('.').map((o) => Number(o).toString(16).toUpperCase().padStart(2, '0')).join('');
  const names = [u, `01-${mac.toLowerCase().replace(/:/g, '-')}`];
  for (let n = 8; n >= 1; n--) names.push(hexIp.slice(0, n));
  names.push('default');
  return names.map((n) => `pxelinux.cfg/${n}`);
}

/** KERNEL and initrd= of the default label of a pxelinux menu. */
export function parsePxelinuxMenu(text: string): { kernel: string; initrd: string } {
  const def = /^\s*DEFAULT\s+(\S+)/im.exec(text)?.[1];
  const blocks = text.split(/^\s*LABEL\s+/im).slice(1);
  const block = blocks.find((b) => b.split(/\s/)[0] === def) ?? blocks[0];
  if (!block) throw new Error('menu has no LABEL');
  const kernel = /^\s*(?:KERNEL|LINUX)\s+(\S+)/im.exec(block)?.[1];
  const initrd = /initrd=(\S+)/i.exec(/^\s*APPEND\s+(.*)$/im.exec(block)?.[1] ?? '')?.[1] ?? /^\s*INITRD\s+(\S+)/im.exec(block)?.[1];
  if (!kernel || !initrd) throw new Error(`menu label ${def} has no kernel or initrd`);
  return { kernel: kernel.replace(/^::/, ''), initrd: initrd.split(',')[0]!.replace(/^::/, '') };
}

/** `kernel URL ...` and `initrd URL` of an iPXE script (the direct path, no chain). */
export function parseIpxeScript(text: string): { kernel: string; initrd: string } {
  const kernel = /^\s*(?:kernel|chain|imgexec)\s+(?:--\S+\s+)*(\S+)/m.exec(text)?.[1];
  const initrd = /^\s*initrd\s+(?:--\S+\s+)*(\S+)/m.exec(text)?.[1];
  if (!kernel || !initrd) throw new Error(`iPXE script has no kernel or initrd line: ${text.slice(0, 200)}`);
  return { kernel, initrd };
}
