/**
 * The `sidereal` command line. Errors name the field and exit 1; usage
 * errors exit 2. Global options come before the command:
 *   sidereal [--config FILE] [--json] COMMAND ...
 */
import { type CliContext, type GlobalOptions, UsageError, createContext } from './context.js';
import { ApiCallError, ApiUnreachableError } from './api-client.js';
import { discoveredCommand } from './discovered.js';
import { statusCommand } from './status.js';
import { ConfigError } from '../config/config.js';
import { InventoryError } from '../inventory/index.js';
import { machineCommand } from './machine.js';
import { rootCommand } from './root.js';
import { BUILD_HELP } from './root-build.js';
import { groupCommand } from './group.js';
import { explainCommand } from './explain.js';
import { serveCommand } from './serve.js';
import { bootloadersCommand } from './bootloaders.js';
import { tokenCommand } from './token.js';

const HELP = `usage: sidereal [--config FILE] [--url URL] [--token TOKEN] [--offline] [--json] COMMAND

  serve [--insecure]                 run DHCP, TFTP, HTTP boot and the admin API from the inventory
                                     (--insecure: the API may listen off loopback without api.tls)
  status                             is the daemon up, what it serves, inventory counts
  machine add MAC [--hostname H] [--ip A.B.C.D] [--group G] [--root R]
              [--mode root|maintenance|local] [--kernel-args "..."]
  machine set MAC [same options; '' clears a field]
  machine list [--group G] [--root R] [--status online|offline] [--limit N] [--offset N]
  machine show MAC | rm MAC | events MAC     (also: sidereal events MAC)
  machine import FILE [--dry-run] [--format dhcpd|dnsmasq|ethers|csv] [--group G] [--root R]
  group add|set NAME [--root R] [--mode M] [--loader pxelinux|lpxelinux|ipxe] [--kernel-args "..."]
  group list | show NAME | rm NAME
  root add NAME --kernel F --initrd F --nfs-path P [--arch A] [--kernel-args "..."]
  root list | rm NAME
  root exec NAME -- CMD [ARG...]     run a command in the root's tree (chroot, proc/sys/devpts bound,
                                     services blocked), on the server; exits with the command's code
  root shell NAME                    an interactive shell there (the SIDUS \`sidus\` alias)
${BUILD_HELP}
  discovered list | adopt MAC [--hostname H] [--ip A] [--group G] [--root R]
  explain MAC --arch bios|efi32|efi64|http|ipxe   what DHCP answers and the menu it leads to
  token create --name N [--role admin|read] | list | revoke NAME   (on the server, on the inventory file)
  bootloaders install [--tftp-root DIR]           copy pxelinux/syslinux/iPXE from Debian packages

Commands go through the admin API: --url, else $SIDEREAL_URL, else the config's api.listen:api.port;
the token is --token or $SIDEREAL_TOKEN. --offline runs the same API in this process on the
inventory file (on the server, daemon stopped or not). The config file is --config, else
$SIDEREAL_CONFIG, else /etc/sidereal/sidereal.yaml.

Exit codes: 0 ok, 1 refused (the message names the field), 2 usage, 3 import partly refused,
4 authentication or permission, 5 server unreachable or failing.`;

const COMMANDS: Record<string, (ctx: CliContext, args: string[]) => Promise<number>> = {
  machine: machineCommand,
  root: rootCommand,
  group: groupCommand,
  explain: explainCommand,
  serve: (ctx, args) => serveCommand(ctx, args),
  bootloaders: bootloadersCommand,
  token: tokenCommand,
  discovered: discoveredCommand,
  status: (ctx) => statusCommand(ctx),
  // `sidereal events MAC`: the boot timeline, as `machine events`.
  events: (ctx, args) => machineCommand(ctx, ['events', ...args]),
};

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, refused: 1, usage: 2, partial: 3, auth: 4, unavailable: 5 } as const;

export async function main(argv: string[]): Promise<number> {
  const opts: GlobalOptions = { json: false, offline: false };
  const args: string[] = [];
  // Global options may come before or after the command.
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    // After `--` everything belongs to the command (`root exec NAME -- CMD --json`).
    if (a === '--') {
      args.push(...argv.slice(i));
      break;
    }
    try {
      if (a === '--config' || a === '-c') opts.configPath = value();
      else if (a.startsWith('--config=')) opts.configPath = a.slice('--config='.length);
      else if (a === '--url') opts.url = value();
      else if (a === '--token') opts.token = value();
      else if (a === '--json') opts.json = true;
      else if (a === '--offline') opts.offline = true;
      else if ((a === '--help' || a === '-h') && args.length === 0) { process.stdout.write(HELP + '\n'); return EXIT.ok; }
      else args.push(a);
    } catch (e) {
      process.stderr.write(`usage: ${(e as Error).message}\n`);
      return EXIT.usage;
    }
  }
  const [command, ...rest] = args;
  if (!command) { process.stdout.write(HELP + '\n'); return EXIT.usage; }
  const run = COMMANDS[command];
  if (!run) { process.stderr.write(`unknown command ${command}\n${HELP}\n`); return EXIT.usage; }
  const ctx = createContext(opts);
  const fail = (code: number, body: { error: string; field: string | null; message: string }) => {
    process.stderr.write(opts.json ? JSON.stringify(body) + '\n' : `error: ${body.field ? `${body.field}: ` : ''}${body.message}\n`);
    return code;
  };
  try {
    return await run(ctx, rest);
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`usage: sidereal ${e.message}\n`); return EXIT.usage; }
    if (e instanceof ApiCallError) {
      const code = e.status === 401 || e.status === 403 ? EXIT.auth : e.status >= 500 && e.status !== 507 ? EXIT.unavailable : EXIT.refused;
      return fail(code, e.body);
    }
    if (e instanceof ApiUnreachableError) return fail(EXIT.unavailable, { error: 'unreachable', field: null, message: e.message });
    if (e instanceof InventoryError) return fail(EXIT.refused, { error: e.code, field: e.field, message: e.message.replace(/^[^:]+: /, '') });
    if (e instanceof ConfigError) return fail(EXIT.refused, { error: 'config', field: e.key, message: e.problem });
    const code = (e as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      process.stderr.write(`usage: ${(e as Error).message}\n`);
      return EXIT.usage;
    }
    if (code === 'ENOENT') return fail(EXIT.refused, { error: 'not_found', field: 'file', message: (e as Error).message });
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return EXIT.unavailable;
  } finally {
    await ctx.close();
  }
}
