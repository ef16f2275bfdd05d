/**
 * Boots one QEMU guest from the network inside a lab namespace and waits for
 * a marker on its serial console. Always TCG (no KVM here); the guest is
 * always killed by PID when the call returns, whatever happened.
 *
 * Firmware:
 *  - bios: SeaBIOS with the virtio-net option ROM QEMU ships, which is iPXE.
 *  - uefi: OVMF (read-only code + a throw-away copy of the variable store);
 *    with uefiRom 'none' the NIC has no option ROM (`romfile=`) so OVMF's own
 *    PXE client asks for `efi64/syslinux.efi`; with 'ipxe' QEMU's EFI iPXE ROM.
 */
import { execa } from 'execa';
import { createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { stopChild, track } from './proc.js';

export type Firmware = 'bios' | 'uefi';

export interface BootNodeOptions {
  ns: string;
  tap: string;
  mac: string;
  firmware: Firmware;
  /** UEFI only: the NIC's option ROM. Default 'none' (OVMF's own PXE). */
  uefiRom?: 'ipxe' | 'none';
  marker: string | RegExp;
  timeoutMs: number;
  /** File that receives everything the guest writes on its serial port. */
  serialLog: string;
  memoryMb?: number;
  /**
   * A serial line that means the boot has failed for good, so the call returns
   * at once instead of waiting for the timeout. Default for UEFI: OVMF's IPv4
   * PXE option failed (it would go on to IPv6 PXE, HTTP boot and its shell,
   * minutes under TCG, none of which the lab serves), or its shell started.
   */
  failOn?: RegExp | null;
  /** Called once per serial line as it arrives (progress display). */
  onLine?: (line: string) => void;
  /** Leave the guest running after the marker (the result's `stop()` powers it off). */
  keep?: boolean;
  /** The marker is a prompt (no newline after it): match it in the line still being written too. */
  markerIsPrompt?: boolean;
}

export interface BootResult {
  /** Seconds from spawning QEMU to the marker (or to the end, when not ok). */
  seconds: number;
  serial: string;
  ok: boolean;
  /** The serial line that held the marker. */
  markerLine?: string;
  /** Why it failed: timeout, qemu exit, spawn error. */
  error?: string;
  /** With `keep` and a marker seen: the guest still runs; this powers it off (by PID). */
  stop?: () => Promise<void>;
}

/** OVMF's boot manager lines when network boot over IPv4 failed, or when it fell back to its shell. */
export const UEFI_FAILED = /BdsDxe: failed to (?:load|start) Boot\d+ "UEFI PXEv4|UEFI Interactive Shell|EFI Internal Shell/;

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** The QEMU argument list (without the `ip netns exec NS` prefix). */
export function qemuArgs(o: BootNodeOptions, varsFile?: string): string[] {
  const rom = o.firmware === 'uefi' && (o.uefiRom ?? 'none') === 'none' ? ',romfile=' : '';
  const args = [
    '-accel', 'tcg',
    '-m', String(o.memoryMb ?? 512),
    '-smp', '1',
    '-display', 'none',
    '-monitor', 'none',
    '-serial', 'stdio',
    '-no-reboot',
    '-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=n0,mac=${o.mac},bootindex=1${rom}`,
    '-boot', 'n',
  ];
  if (o.firmware === 'uefi') {
    if (!varsFile) throw new Error('uefi needs a variable store copy');
    args.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${varsFile}`,
    );
  }
  return args;
}

export async function bootNode(o: BootNodeOptions): Promise<BootResult> {
  let tmp: string | undefined;
  let varsFile: string | undefined;
  if (o.firmware === 'uefi') {
    for (const f of [OVMF_CODE, OVMF_VARS]) {
      if (!existsSync(f)) throw new Error(`${f} not found: apt-get install ovmf`);
    }
    // Beside the serial log (the caller's work dir), so a cleanup of that dir after Ctrl-C removes it too.
    tmp = await mkdtemp(path.join(path.dirname(path.resolve(o.serialLog)), 'ovmf-'));
    varsFile = path.join(tmp, 'OVMF_VARS.fd');
    await copyFile(OVMF_VARS, varsFile);
  }
  const log = createWriteStream(o.serialLog);
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
  const child = track(execa('ip', ['netns', 'exec', o.ns, 'qemu-system-x86_64', ...qemuArgs(o, varsFile)], {
    reject: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
  }));
  let serial = '';
  let stderr = '';
  let pending = '';
  const failOn = o.failOn === undefined ? (o.firmware === 'uefi' ? UEFI_FAILED : null) : o.failOn;
  const test = (line: string) => (typeof o.marker === 'string' ? line.includes(o.marker) : o.marker.test(line));
  let kept = false;

  try {
    const result = await new Promise<BootResult>((resolve) => {
      let settled = false;
      const finish = (r: BootResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(
        () => finish({ seconds: elapsed(), serial, ok: false, error: `timeout after ${o.timeoutMs} ms` }),
        o.timeoutMs,
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        const s = chunk.toString('latin1');
        serial += s;
        log.write(chunk);
        pending += s;
        let i: number;
        while ((i = pending.search(/\r?\n/)) >= 0) {
          const line = pending.slice(0, i).replace(/\r$/, '');
          pending = pending.slice(pending[i] === '\r' ? i + 2 : i + 1);
          o.onLine?.(line);
          if (test(line)) finish({ seconds: elapsed(), serial, ok: true, markerLine: line });
          else if (failOn?.test(line)) finish({ seconds: elapsed(), serial, ok: false, error: `boot failed: ${line.trim()}` });
        }
        // A prompt ends without a newline (`node01 login: `): with markerIsPrompt, look in the unfinished line too.
        if (o.markerIsPrompt && pending && test(pending)) finish({ seconds: elapsed(), serial, ok: true, markerLine: pending });
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('error', (err) => finish({ seconds: elapsed(), serial, ok: false, error: `spawn: ${err.message}` }));
      child.on('exit', (code, signal) => {
        // A marker still in the buffer without its newline counts.
        if (pending && test(pending)) finish({ seconds: elapsed(), serial, ok: true, markerLine: pending });
        finish({
          seconds: elapsed(),
          serial,
          ok: false,
          error: `qemu exited (code ${code}, signal ${signal})${stderr ? `: ${stderr.trim()}` : ''}`,
        });
      });
    });
    if (o.keep && result.ok) {
      kept = true;
      result.stop = async () => {
        await stopChild(child, 2000);
        await new Promise<void>((r) => log.end(r));
        if (tmp) await rm(tmp, { recursive: true, force: true });
      };
    }
    return result;
  } finally {
    if (!kept) {
      await stopChild(child, 2000);
      await new Promise<void>((r) => log.end(r));
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  }
}

/** True when qemu-system-x86_64 is on PATH. */
export async function haveQemu(): Promise<boolean> {
  const r = await execa('qemu-system-x86_64', ['--version'], { reject: false });
  return r.exitCode === 0;
}
