/**
 * MAC addresses arrive in every spelling admins and tools use
 * (`aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, Cisco `aabb.ccdd.eeff`, bare
 * `aabbccddeeff`); the inventory stores one: lower-case with colons.
 */
export class MacError extends Error {
  constructor(public readonly value: string, problem: string) {
    super(`mac: ${JSON.stringify(value)} ${problem}`);
    this.name = 'MacError';
  }
}

export function normalizeMac(input: string): string {
  const s = input.trim().toLowerCase();
  let hex: string | undefined;
  if (/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/.test(s) && (s.includes(':') !== s.includes('-'))) hex = s.replace(/[:-]/g, '');
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) hex = s.replace(/\./g, '');
  else if (/^[0-9a-f]{12}$/.test(s)) hex = s;
  if (!hex) throw new MacError(input, 'is not a MAC address (aa:bb:cc:dd:ee:ff, aa-bb-..., aabb.ccdd.eeff or aabbccddeeff)');
  if (/^0{12}$/.test(hex)) throw new MacError(input, 'is the all-zero MAC');
  if (parseInt(hex.slice(0, 2), 16) & 1) throw new MacError(input, 'is a multicast MAC, not a network card');
  return hex.match(/../g)!.join(':');
}

/** `01-aa-bb-cc-dd-ee-ff`: the pxelinux.cfg file name of a MAC (ARP type 1 = Ethernet). */
export function pxelinuxMacName(mac: string): string {
  return `01-${mac.replace(/:/g, '-')}`;
}
