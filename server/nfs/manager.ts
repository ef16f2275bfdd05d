/**
 * Keeps the NFS server's exports equal to what the inventory wants (wanted.ts), live:
 * recomputed after every change Sidereal makes (`changed()`), and on a short poll that catches
 * what another process did (a `--offline` CLI write, a rollback) and trees that vanished.
 * Applied only when the rendered file differs from the one applied last, each change logged as
 * the lines it adds and removes; applied unconditionally at start. A failing backend is an
 * error in the log and in `sidereal status`, retried, and never stops the other services.
 */
import type { SiderealConfig } from '../config/config.js';
import type { Inventory } from '../inventory/index.js';
import type { Logger } from '../log.js';
import { backendFor, type ExportBackend } from './backends.js';
import { renderGaneshaExports, renderKernelExports } from './render.js';
import { wantedExports, type ExportProblem, type WantedExport } from './wanted.js';

export interface NfsStatus {
  backend: 'kernel' | 'ganesha' | 'none';
  file: string | null;
  ok: boolean;
  error: string | null;
  appliedAt: number | null;
  exports: WantedExport[];
  problems: ExportProblem[];
}

const POLL_MS = 2000;
const RETRY_MS = 30_000;
const COALESCE_MS = 100;

export class ExportManager {
  private readonly backend: ExportBackend | undefined;
  private applied: string | undefined;
  private lastError: { text: string; at: number; message: string } | undefined;
  private state: NfsStatus;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private reportedProblems = '';

  constructor(private readonly inv: Inventory, private readonly config: SiderealConfig, private readonly logger: Logger, backend?: ExportBackend) {
    this.backend = backend ?? backendFor(config, logger);
    this.state = { backend: config.nfs.backend, file: this.backend?.file ?? null, ok: !this.backend, error: null, appliedAt: null, exports: [], problems: [] };
  }

  /** Apply now (whatever was applied before), then keep them in step. */
  async start(): Promise<void> {
    await this.reconcile('start', true);
    this.timer = setInterval(() => this.changed('poll'), POLL_MS);
    this.timer.unref();
  }

  status(): NfsStatus {
    return this.state;
  }

  /**
   * Something that may change the exports happened. Answered by a reconcile that starts after
   * the call; calls that come together (a burst of API writes, an import) share one, which
   * waits COALESCE_MS for the burst to land. Reconciles never overlap.
   */
  changed(reason: string): Promise<void> {
    this.next ??= (async () => {
      await this.running;
      await new Promise((r) => setTimeout(r, COALESCE_MS));
      this.next = undefined;
      this.running = this.reconcile(reason, false);
      try {
        await this.running;
      } finally {
        this.running = undefined;
      }
    })();
    return this.next;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.next;
    await this.running;
  }

  private async reconcile(reason: string, force: boolean): Promise<void> {
    try {
      const wanted = wantedExports(this.inv, this.config);
      this.state = { ...this.state, exports: wanted.exports, problems: wanted.problems };
      const problems = JSON.stringify(wanted.problems);
      if (problems !== this.reportedProblems) {
        for (const p of wanted.problems) this.logger.warn({ root: p.root, path: p.path }, p.message);
        this.reportedProblems = problems;
      }
      if (!this.backend) return;
      const text = this.backend.name === 'kernel'
        ? renderKernelExports(wanted.exports)
        : renderGaneshaExports(wanted.exports, (p) => this.inv.nfs.exportId(p));
      const sick = await this.backend.health?.();
      if (sick) {
        // Applied again once the server is back (a restarted ganesha rereads the file, a reload costs nothing).
        if (this.state.error !== sick) this.logger.error({ backend: this.backend.name, err: sick, reason }, 'nfs server not serving the exports');
        this.applied = undefined;
        this.state = { ...this.state, ok: false, error: sick };
        return;
      }
      if (!force && text === this.applied) return;
      // A failure is retried when the wanted file changes, or every RETRY_MS, not on every poll.
      if (!force && this.lastError?.text === text && Date.now() - this.lastError.at < RETRY_MS) return;
      const { added, removed } = lineDiff(this.applied ?? '', text);
      try {
        await this.backend.apply(text, wanted.exports.map((e) => e.path));
      } catch (err) {
        const message = (err as Error).message;
        this.lastError = { text, at: Date.now(), message };
        this.state = { ...this.state, ok: false, error: message };
        this.logger.error({ backend: this.backend.name, file: this.backend.file, err: message, reason }, 'nfs exports not applied');
        return;
      }
      this.applied = text;
      this.lastError = undefined;
      this.state = { ...this.state, ok: true, error: null, appliedAt: Date.now() };
      this.logger.info({ backend: this.backend.name, file: this.backend.file, reason, added, removed, exports: wanted.exports.length }, 'nfs exports applied');
    } catch (err) {
      this.state = { ...this.state, ok: false, error: (err as Error).message };
      this.logger.error({ err, reason }, 'nfs exports: cannot compute');
    }
  }
}

/** Lines only in `after` (added) and only in `before` (removed), comments left out. */
export function lineDiff(before: string, after: string): { added: string[]; removed: string[] } {
  const lines = (t: string) => new Set(t.split('\n').filter((l) => l.trim() && !l.startsWith('#')));
  const a = lines(before);
  const b = lines(after);
  return { added: [...b].filter((l) => !a.has(l)), removed: [...a].filter((l) => !b.has(l)) };
}
