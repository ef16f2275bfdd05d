/**
 * Option negotiation (RFC 2347) for read requests: blksize (RFC 2348),
 * tsize and timeout (RFC 2349), windowsize (RFC 7440).
 *
 * Pure: the server passes the requested options, its limits and the file
 * size, and gets back what to use and what to put in the OACK.
 *
 * Policy: an option we do not know, or a value we cannot parse or must not
 * accept, is left out of the OACK (RFC 2347: "the server ... should simply
 * omit the option"). It is never an error: atftp sends `windowsize disable`
 * literally and firmware sends whatever it likes; failing the transfer for
 * that would strand a booting machine.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { OptionList } from './packet.js';

/** RFC 1350 block size when blksize is not negotiated. */
export const DEFAULT_BLKSIZE = 512;
/** RFC 2348 range. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** RFC 7440 range; our default cap keeps one window within socket buffers. */
export const MAX_WINDOWSIZE = 65535;
export const DEFAULT_MAX_WINDOWSIZE = 64;
/**
 * Largest window a session will run, whatever the configuration: half the
 * 16-bit block number space, so an ACK from before the window can never be
 * mistaken for one inside it after the number wraps.
 */
export const MAX_SAFE_WINDOWSIZE = 32768;
/** IPv4 (20) + UDP (8) + TFTP DATA header (4). */
export const HEADER_OVERHEAD = 32;
/** When the interface MTU cannot be read: Ethernet's 1500. */
export const FALLBACK_MTU = 1500;

export interface NegotiationLimits {
  /** Largest blksize we agree to (already clamped to MAX_BLKSIZE). */
  maxBlksize: number;
  /** Largest windowsize we agree to. */
  maxWindowsize: number;
  /** Cap on a window's estimated kernel footprint (windowsize x blockFootprint(blksize)); default DEFAULT_MAX_WINDOW_BYTES. */
  maxWindowBytes?: number;
  /** Largest `timeout` (seconds) we acknowledge; default DEFAULT_MAX_TIMEOUT_S. */
  maxTimeoutS?: number;
}

/**
 * RFC 2349 lets a client ask a retransmit interval up to 255 s: with 5 retries one request
 * would hold a session (its socket and buffer) for 25 minutes after the client vanished.
 * Above this the option is not acknowledged (allowed: the server may leave an option out),
 * and the server's own interval applies. Firmware asks 1 to 5 s.
 */
export const DEFAULT_MAX_TIMEOUT_S = 30;

/**
 * What a window may cost the client's socket receive buffer, by default.
 * A client that does not raise SO_RCVBUF has Linux's 208 KiB (rmem_default),
 * and every queued datagram is charged its buffer's true size, not its
 * payload: an 8 KiB block sits in a 16 KiB allocation. A window larger than
 * the buffer loses its tail every time (atftp at blksize 8192 windowsize 16
 * crawled at 0.2 MB/s), so the window we acknowledge is cut to fit well
 * inside it (RFC 7440 lets the server answer a smaller windowsize).
 */
export const DEFAULT_MAX_WINDOW_BYTES = 128 * 1024;

/** Estimated kernel memory one DATA datagram of `blksize` takes in a receive queue: headers and skb overhead, rounded up to the allocator's power of two. */
export function blockFootprint(blksize: number): number {
  let n = 1024;
  while (n < blksize + 512) n *= 2;
  return n;
}

/** Largest windowsize whose footprint fits `maxBytes` (at least 1). */
export function windowCapForBytes(blksize: number, maxBytes: number): number {
  return Math.max(1, Math.floor(maxBytes / blockFootprint(blksize)));
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Retransmit interval: the negotiated `timeout` in ms, or the server default. */
  timeoutMs: number;
  /** The size announced in the OACK, when the client asked (RFC 2349). */
  tsize: number | null;
  /** What goes in the OACK, in the order the client asked. Empty: no OACK, start with DATA 1. */
  oack: OptionList;
  /** Options left out, with why: logged at debug to explain odd clients. */
  ignored: Array<{ name: string; value: string; why: string }>;
}

/** Strict decimal: `parseInt('8x')` would accept garbage that RFC 2347 says is ASCII digits. */
function parseDecimal(value: string): number | null {
  if (!/^[0-9]{1,10}$/.test(value)) return null;
  return Number(value);
}

export function negotiate(
  requested: OptionList,
  limits: NegotiationLimits,
  ctx: { fileSize: number; defaultTimeoutMs: number },
): Negotiated {
  const out: Negotiated = {
    blksize: DEFAULT_BLKSIZE,
    windowsize: 1,
    timeoutMs: ctx.defaultTimeoutMs,
    tsize: null,
    oack: [],
    ignored: [],
  };
  const seen = new Set<string>();
  for (const [rawName, value] of requested) {
    const name = rawName.toLowerCase();
    const ignore = (why: string) => out.ignored.push({ name: rawName, value, why });
    if (seen.has(name)) { ignore('repeated option'); continue; }
    seen.add(name);
    const n = parseDecimal(value);
    switch (name) {
      case 'blksize': {
        // RFC 2348: 8..65464. Larger requests are answered with our maximum
        // (the server may reply with a smaller value); smaller ones are invalid.
        if (n === null) { ignore('not a number'); break; }
        if (n < MIN_BLKSIZE) { ignore(`below ${MIN_BLKSIZE}`); break; }
        out.blksize = Math.min(n, MAX_BLKSIZE, limits.maxBlksize);
        out.oack.push(['blksize', String(out.blksize)]);
        break;
      }
      case 'tsize': {
        // RFC 2349: on a read request the client sends 0 and the server
        // answers the size. Any value is accepted as "please tell me".
        if (n === null) { ignore('not a number'); break; }
        // curl (7.88, lib/tftp.c) fails the transfer on `tsize 0` in an
        // OACK ("invalid tsize"), also against tftpd-hpa. Leaving tsize out
        // is allowed (RFC 2347) and nothing boots a 0-byte file anyway.
        if (ctx.fileSize === 0) { ignore('empty file: tsize 0 breaks curl'); break; }
        out.tsize = ctx.fileSize;
        out.oack.push(['tsize', String(ctx.fileSize)]);
        break;
      }
      case 'timeout': {
        // RFC 2349: 1..255 seconds; the server must not change the value,
        // so out-of-range is simply not acknowledged.
        if (n === null) { ignore('not a number'); break; }
        if (n < 1 || n > 255) { ignore('outside 1..255'); break; }
        if (n > (limits.maxTimeoutS ?? DEFAULT_MAX_TIMEOUT_S)) { ignore(`above ${limits.maxTimeoutS ?? DEFAULT_MAX_TIMEOUT_S} s`); break; }
        out.timeoutMs = n * 1000;
        out.oack.push(['timeout', String(n)]);
        break;
      }
      case 'windowsize': {
        // RFC 7440: 1..65535, the server may answer a smaller value.
        if (n === null) { ignore('not a number'); break; }
        if (n < 1 || n > MAX_WINDOWSIZE) { ignore('outside 1..65535'); break; }
        out.windowsize = Math.max(1, Math.min(n, limits.maxWindowsize));
        out.oack.push(['windowsize', String(out.windowsize)]);
        break;
      }
      default:
        ignore('unknown option');
    }
  }
  // The byte cap depends on blksize, which may come after windowsize in the request.
  const byteCap = windowCapForBytes(out.blksize, limits.maxWindowBytes ?? DEFAULT_MAX_WINDOW_BYTES);
  if (out.windowsize > byteCap) {
    out.ignored.push({ name: 'windowsize', value: String(out.windowsize), why: `reduced to ${byteCap}: a window must fit a default socket receive buffer at blksize ${out.blksize}` });
    out.windowsize = byteCap;
    const entry = out.oack.find(([n]) => n === 'windowsize');
    if (entry) entry[1] = String(byteCap);
  }
  return out;
}

/**
 * Default blksize cap: the MTU of the interface carrying `address`, minus
 * the headers, so a DATA packet is never IP-fragmented (fragments are lost
 * as a whole and some PXE stacks do not reassemble at all).
 * Falls back to Ethernet's 1500 when the interface or its MTU is unknown
 * (e.g. a wildcard address).
 */
export function defaultMaxBlksize(address: string): number {
  const mtu = interfaceMtu(address) ?? FALLBACK_MTU;
  return Math.max(MIN_BLKSIZE, Math.min(MAX_BLKSIZE, mtu - HEADER_OVERHEAD));
}

export function interfaceMtu(address: string): number | null {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (!addrs?.some((a) => a.address === address)) continue;
    try {
      const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
      return Number.isInteger(mtu) && mtu > 0 ? mtu : null;
    } catch {
      return null;
    }
  }
  return null;
}

export function resolveLimits(
  address: string, cfg: { maxBlksize?: number; maxWindowsize?: number; maxWindowBytes?: number; maxTimeoutS?: number },
): NegotiationLimits {
  const maxBlksize = cfg.maxBlksize ?? defaultMaxBlksize(address);
  const maxWindowsize = cfg.maxWindowsize ?? DEFAULT_MAX_WINDOWSIZE;
  const limits: NegotiationLimits = {
    maxBlksize: Math.max(MIN_BLKSIZE, Math.min(MAX_BLKSIZE, Math.floor(maxBlksize))),
    maxWindowsize: Math.max(1, Math.min(MAX_SAFE_WINDOWSIZE, Math.floor(maxWindowsize))),
  };
  if (cfg.maxWindowBytes !== undefined) limits.maxWindowBytes = Math.max(1, Math.floor(cfg.maxWindowBytes));
  if (cfg.maxTimeoutS !== undefined) limits.maxTimeoutS = Math.max(1, Math.min(255, Math.floor(cfg.maxTimeoutS)));
  return limits;
}
