import type { SiderealConfig } from '../config/config.js';
import type { NetworkPolicy } from '../inventory/index.js';

/** What the inventory checks a machine's address against: the served subnets, the server, the pools. */
export function networkPolicy(config: SiderealConfig): NetworkPolicy {
  return {
    subnets: [config.dhcp.subnet, ...config.dhcp.relays.map((r) => r.subnet)],
    serverAddress: config.serverAddress,
    pools: [config.dhcp.pool, config.dhcp.registeredPool, ...config.dhcp.relays.map((r) => r.pool)].filter((p): p is { start: string; end: string } => !!p),
    bootDefaults: { root: config.boot.defaults.root ?? null, bootMode: config.boot.defaults.bootMode },
  };
}
