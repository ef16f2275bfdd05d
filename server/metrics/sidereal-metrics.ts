/**
 * Sidereal's metrics, for `GET /metrics`: DHCP messages by type and outcome,
 * active leases, TFTP transfers and bytes, HTTP boot fetches, machines by
 * state. The services call the hooks below (a Map lookup and an add per
 * event); inventory figures are read at scrape time through callbacks.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DhcpMetricsHook } from '../dhcp/options-config.js';
import type { TransferEvent } from '../tftp/types.js';
import { MetricsRegistry, type BoundCounter } from './registry.js';

/** The DHCP server's `metrics` option: once per decoded message (its log line's type and outcome), once per undecodable one. */
export type { DhcpMetricsHook };

/** Pass `transfer` as (or call it from) the TFTP server's `onTransfer`; `watch` the started server for the active-sessions gauge. */
export interface TftpMetricsHook {
  transfer(ev: TransferEvent): void;
  watch(server: { readonly stats: { readonly active: number } }): void;
}

export type HttpFetchKind = 'ipxe' | 'file';

export interface HttpMetricsHook {
  fetch(kind: HttpFetchKind, status: number, bytes: number): void;
}

export interface SiderealMetricsOptions {
  /** Bound leases not yet expired (e.g. `inv.leases.activeCount()`). Read at scrape time. */
  activeLeases: () => number;
  /** Machines by state, rendered as given (e.g. `inv.machines.countByMode(...)`). Read at scrape time. */
  machinesByState: () => Array<{ state: string; count: number }>;
  /** For `sidereal_build_info`; defaults to the version in Sidereal's package.json. */
  version?: string;
  /** Other DHCP servers answering on the provisioning segment now (the rogue check). Read at scrape time. */
  rogueDhcpServers?: () => number;
  /** Called when a scrape-time callback throws (its gauge then renders no sample). */
  onCollectError?: (metric: string, err: unknown) => void;
}

export interface SiderealMetrics {
  registry: MetricsRegistry;
  dhcp: DhcpMetricsHook;
  tftp: TftpMetricsHook;
  http: HttpMetricsHook;
  /** Once per reply seen from another DHCP server. */
  rogueDhcpReply(): void;
}

const DHCP_TYPES = new Set(['DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM', 'BOOTP']);
const DHCP_OUTCOMES = new Set(['offer', 'ack', 'inform-ack', 'nak', 'ignored', 'dropped', 'no-offer', 'declined', 'released']);
const TFTP_OUTCOMES = new Set<string>([
  'ok', 'aborted-probe', 'not-found', 'refused', 'rejected', 'timeout', 'client-error', 'peer-unreachable', 'error', 'closed',
]);

/** Bounded label values: `ack-selecting`/`ack-renew`/... are `ack`; anything unforeseen is `other`. */
export function normalizeDhcpType(type: string): string {
  return DHCP_TYPES.has(type) ? type : 'other';
}

export function normalizeDhcpOutcome(outcome: string): string {
  if (outcome.startsWith('ack-') && outcome !== 'inform-ack') return 'ack';
  return DHCP_OUTCOMES.has(outcome) ? outcome : 'other';
}

function httpStatusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'other';
}

/** The `version` of the package.json named sidereal, from this module's directory upwards (works from server/ and dist/server/). */
export function packageVersion(start = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'sidereal' && typeof pkg.version === 'string') return pkg.version;
    } catch { /* none here: look further up */ }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return 'unknown';
}

export function createSiderealMetrics(opts: SiderealMetricsOptions): SiderealMetrics {
  const registry = new MetricsRegistry(opts.onCollectError ? { onCollectError: opts.onCollectError } : {});
  const version = opts.version ?? packageVersion();
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());

  registry.gauge('sidereal_build_info', 'Sidereal build information; always 1.', ['version']).set({ version }, 1);
  registry.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.').set(undefined, startSeconds);

  // DHCP
  const dhcpPackets = registry.counter('sidereal_dhcp_packets_total',
    'DHCP messages received, by message type (malformed: undecodable) and outcome (offer, ack, nak, ignored, dropped, ...).',
    ['type', 'outcome']);
  registry.gauge('sidereal_dhcp_leases_active', 'Bound DHCP leases not yet expired.', [], {
    collect: () => [{ labels: {}, value: opts.activeLeases() }],
  });
  // No per-server label: server identifiers are whatever a packet says, so unbounded.
  const rogueReplies = registry.counter('sidereal_dhcp_rogue_replies_total',
    'DHCP replies seen from another server on the provisioning segment (rogue DHCP check).').labels();
  registry.gauge('sidereal_dhcp_rogue_servers', 'Other DHCP servers answering on the provisioning segment now; anything but 0 loses nodes at random.', [], {
    collect: () => [{ labels: {}, value: opts.rogueDhcpServers?.() ?? 0 }],
  });
  // Raw (type, outcome) pairs as the handler logs them -> bound series. Bounded: the
  // handler's types are its 9 names or type-N (N < 256), its outcomes are constants.
  const dhcpSeries = new Map<string, BoundCounter>();
  const malformed = dhcpPackets.labels({ type: 'malformed', outcome: 'malformed' });
  const dhcp: DhcpMetricsHook = {
    message(type, outcome) {
      const key = `${type} ${outcome}`;
      let c = dhcpSeries.get(key);
      if (!c) {
        c = dhcpPackets.labels({ type: normalizeDhcpType(type), outcome: normalizeDhcpOutcome(outcome) });
        dhcpSeries.set(key, c);
      }
      c.inc();
    },
    malformed() {
      malformed.inc();
    },
  };

  // TFTP
  const tftpTransfers = registry.counter('sidereal_tftp_transfers_total',
    'TFTP requests by outcome (ok, aborted-probe: UEFI size probe, not-found, refused, rejected, timeout, ...).', ['outcome']);
  const tftpBytes = registry.counter('sidereal_tftp_bytes_total', 'Bytes of TFTP file data acknowledged by clients.').labels();
  const tftpRetransmits = registry.counter('sidereal_tftp_retransmits_total', 'TFTP DATA packets sent again after a timeout or a gap.').labels();
  const watched: Array<{ readonly stats: { readonly active: number } }> = [];
  registry.gauge('sidereal_tftp_active_sessions', 'TFTP transfers in progress.', [], {
    collect: () => (watched.length ? [{ labels: {}, value: watched.reduce((n, s) => n + s.stats.active, 0) }] : []),
  });
  const tftpByOutcome = new Map<string, BoundCounter>();
  for (const o of TFTP_OUTCOMES) tftpByOutcome.set(o, tftpTransfers.labels({ outcome: o }));
  const tftp: TftpMetricsHook = {
    transfer(ev) {
      const c = tftpByOutcome.get(ev.outcome);
      if (c) c.inc();
      else tftpTransfers.inc({ outcome: 'other' });
      if (ev.bytes > 0) tftpBytes.inc(ev.bytes);
      if (ev.retransmits) tftpRetransmits.inc(ev.retransmits);
    },
    watch(server) {
      watched.push(server);
    },
  };

  // HTTP boot
  const httpFetches = registry.counter('sidereal_http_boot_fetches_total',
    'HTTP boot responses by kind (ipxe: per-machine script, file: /files/...) and status.', ['kind', 'status']);
  const httpBytes = registry.counter('sidereal_http_boot_bytes_total', 'Bytes of HTTP boot response bodies.').labels();
  const httpSeries = new Map<string, BoundCounter>();
  const http: HttpMetricsHook = {
    fetch(kind, status, bytes) {
      const key = `${kind} ${status}`;
      let c = httpSeries.get(key);
      if (!c) {
        c = httpFetches.labels({ kind: kind === 'ipxe' ? 'ipxe' : 'file', status: httpStatusLabel(status) });
        httpSeries.set(key, c);
      }
      c.inc();
      if (bytes > 0) httpBytes.inc(bytes);
    },
  };

  // Inventory
  registry.gauge('sidereal_machines', 'Registered machines by state.', ['state'], {
    collect: () => opts.machinesByState().map((s) => ({ labels: { state: s.state }, value: s.count })),
  });

  return { registry, dhcp, tftp, http, rogueDhcpReply: () => rogueReplies.inc() };
}
