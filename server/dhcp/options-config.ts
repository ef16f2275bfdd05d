/**
 * The DHCP server's options. Relayed requests (giaddr != 0) are served from
 * the subnet whose range contains giaddr (RFC 2131 4.3.1): the listening
 * subnet first, then `relays`.
 */
import type { Logger } from 'pino';
import type { DhcpBackend } from './backend.js';
import type { Range, Subnet } from '../net/ipv4.js';

export interface RelaySubnetConfig {
  subnet: Subnet;
  router?: string;
  /** No pool: only machines with a reservation in this subnet are served. */
  pool?: Range;
}

export interface DhcpServerOptions {
  /** Provisioning interface: the socket is bound to it (SO_BINDTODEVICE). */
  interface?: string;
  /** Listen address, usually 0.0.0.0 (a socket bound to a unicast address never sees broadcasts). */
  address: string;
  port: number;
  clientPort?: number;
  serverId: string;
  subnet: Subnet;
  router?: string;
  dns?: string[];
  domain?: string;
  /** Seconds. */
  leaseTime: number;
  pool?: Range;
  unknownClients: 'pool' | 'ignore';
  /** Pool addresses only registered machines get (drawn before `pool`): a starvation flood cannot take them. */
  registeredPool?: Range;
  relays?: RelaySubnetConfig[];
  backend: DhcpBackend;
  logger: Logger;
  /** Seconds an address stays out of the pool after a DHCPDECLINE (default 600). */
  declineTime?: number;
  /** Milliseconds an OFFER holds its address in memory (default 60 000). */
  offerTtlMs?: number;
  /** OFFERs held at once (default 4096): beyond, unregistered MACs get none until some expire or are taken. */
  maxPendingOffers?: number;
  /** Counts each message as its log line is written (e.g. `createSiderealMetrics(...).dhcp`). */
  metrics?: DhcpMetricsHook;
  /** Packets per second one client MAC may send (burst as many); beyond, dropped. Default 10; 0: no limit. */
  maxPacketsPerMac?: number;
  /** MACs whose packets are dropped unanswered: the rogue DHCP check's probe (it asks every server but us). */
  ignoreMacs?: string[];
}

/** What the server reports per datagram: the log line's type and outcome, or an undecodable packet. */
export interface DhcpMetricsHook {
  message(type: string, outcome: string): void;
  malformed(): void;
}

/** What the pure handler needs: everything but the socket and logger. */
export type DhcpHandlerOptions = Omit<DhcpServerOptions, 'interface' | 'address' | 'port' | 'logger' | 'metrics' | 'maxPacketsPerMac' | 'ignoreMacs'>;
