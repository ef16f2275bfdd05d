/** /api/v1/import: machines from dhcpd.conf host blocks, dnsmasq dhcp-host lines, /etc/ethers or CSV. */
import type { ApiContext } from './app.js';
import { actorOf } from './auth.js';
import { IMPORT_FORMATS, prepareImport, applyImport, type ImportFormat } from '../../import/index.js';
import { networkPolicy } from '../../daemon/network.js';

interface Body { text: string; format?: ImportFormat; filename?: string; group?: string; root?: string; dryRun?: boolean }

export function registerImportRoutes({ routes, inv, config }: ApiContext): void {
  routes.add({
    method: 'POST', url: '/api/v1/import', tag: 'machines',
    summary: 'Import machines; dryRun lists what would be added, changed or refused and why; the real run is one transaction',
    bodyLimit: 8 * 1024 * 1024,
    body: {
      type: 'object', additionalProperties: false, required: ['text'],
      properties: {
        text: { type: 'string', maxLength: 8 * 1024 * 1024 }, format: { type: 'string', enum: IMPORT_FORMATS },
        filename: { type: 'string', maxLength: 255 }, group: { type: 'string', maxLength: 63 }, root: { type: 'string', maxLength: 63 },
        dryRun: { type: 'boolean' },
      },
    },
    handler: async (req) => {
      const b = req.body as Body;
      const prepared = prepareImport(inv, b.text, { network: networkPolicy(config), format: b.format, filename: b.filename, group: b.group, root: b.root });
      if (b.dryRun) return { dryRun: true, ...prepared };
      const applied = applyImport(inv, prepared.plan, { actor: actorOf(req) });
      return {
        dryRun: false, format: prepared.format, problems: prepared.problems, refused: prepared.plan.refuse,
        added: applied.added.length, changed: applied.changed.length, unchanged: prepared.plan.unchanged.length,
      };
    },
  });
}
