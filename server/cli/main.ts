/**
 * The `sidereal` command line. Errors name the field and exit 1; usage
 * errors exit 2. Global options come before the command:
 *   sidereal [--config FILE] [--json] COMMAND ...
 */
import { type CliContext, UsageError, createContext } from './context.js';
import { ConfigError } from '../config/config.js';
import { InventoryError } from '../inventory/index.js';
import { machineCommand } from './machine.js';
import { rootCommand } from './root.js';
import { groupCommand } from './group.js';
import { explainCommand } from './explain.js';
import { serveCommand } from './serve.js';
import { bootloadersCommand } from './bootloaders.js';
import { tokenCommand } from './token.js';

const HELP = `usage: sidereal [--config FILE] [--json] COMMAND

  serve                              run DHCP, TFTP and HTTP boot from the inventory
  machine add MAC [--hostname H] [--ip A.B.C.D] [--group G] [--root R]
              [--mode root|maintenance|local] [--kernel-args "..."]
  machine set MAC [same options; '' clears a field]
  machine list [--group G] [--root R]
  machine show MAC | rm MAC | events MAC
  machine import FILE [--dry-run] [--format dhcpd|dnsmasq|ethers|csv] [--group G] [--root R]
                                     exit 3 when some records were refused
  root add NAME --kernel F --initrd F --nfs-path P [--arch A] [--kernel-args "..."]
  root list | rm NAME
  group add NAME [--root R] [--mode M] [--loader pxelinux|lpxelinux|ipxe] [--kernel-args "..."]
  group list | rm NAME
  explain MAC --arch bios|efi32|efi64|http|ipxe   what DHCP answers and the menu it leads to
  bootloaders install [--tftp-root DIR]           copy pxelinux/syslinux/iPXE from Debian packages
  token create --name N [--role admin|read]       an admin API token (printed once)
  token list | revoke NAME

The config file is --config, else $SIDEREAL_CONFIG, else /etc/sidereal/sidereal.yaml.`;

const COMMANDS: Record<string, (ctx: CliContext, args: string[]) => Promise<number>> = {
  machine: machineCommand,
  root: rootCommand,
  group: groupCommand,
  explain: explainCommand,
  serve: (ctx) => serveCommand(ctx),
  bootloaders: bootloadersCommand,
  token: tokenCommand,
};

export async function main(argv: string[]): Promise<number> {
  let configPath: string | undefined;
  let json = false;
  const args = [...argv];
  while (args[0]?.startsWith('-')) {
    const a = args.shift()!;
    if (a === '--config' || a === '-c') configPath = args.shift();
    else if (a.startsWith('--config=')) configPath = a.slice('--config='.length);
    else if (a === '--json') json = true;
    else if (a === '--help' || a === '-h') { process.stdout.write(HELP + '\n'); return 0; }
    else { process.stderr.write(`unknown option ${a}\n${HELP}\n`); return 2; }
  }
  // Allow global options after the command too (`machine list --json --config F`).
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--json') { json = true; args.splice(i--, 1); }
    else if (args[i] === '--config' && i + 1 < args.length) { configPath = args[i + 1]; args.splice(i--, 2); }
  }
  const [command, ...rest] = args;
  if (!command) { process.stdout.write(HELP + '\n'); return 2; }
  const run = COMMANDS[command];
  if (!run) { process.stderr.write(`unknown command ${command}\n${HELP}\n`); return 2; }
  const ctx = createContext(configPath, json);
  try {
    return await run(ctx, rest);
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`usage: sidereal ${e.message}\n`); return 2; }
    if (e instanceof InventoryError || e instanceof ConfigError) {
      process.stderr.write(json ? JSON.stringify({ error: e instanceof InventoryError ? e.code : 'config', field: e instanceof InventoryError ? e.field : e.key, message: e.message }) + '\n' : `error: ${e.message}\n`);
      return 1;
    }
    if ((e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`usage: ${(e as Error).message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  } finally {
    ctx.close();
  }
}
