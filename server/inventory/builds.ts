/**
 * Root build jobs: queued -> running -> succeeded | failed | cancelled. The runner is
 * server/roots/jobs.ts; this file only keeps the record. At most one queued-or-running build per
 * root, enforced by a partial unique index so that two processes cannot both start one.
 */
import type { Db } from './db.js';
import { InventoryError } from './errors.js';
import { checkName } from './checks.js';

export type BuildState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const ACTIVE_STATES: readonly BuildState[] = ['queued', 'running'];

export interface BuildOutcome {
  kernel: string;
  initrd: string;
  kver: string;
  seconds: number;
  treeBytes: number;
  initrdBytes: number;
  pruned: string[];
}

export interface Build {
  id: number;
  root: string;
  recipe: string;
  state: BuildState;
  step: string | null;
  stepTitle: string | null;
  /** 0..1, by the plan's step weights. */
  progress: number;
  generation: string | null;
  error: string | null;
  logFile: string;
  requestedBy: string;
  owner: string | null;
  /** A cancel asked from another process than the owner: who asked (the owner polls this). */
  cancelRequestedBy: string | null;
  result: BuildOutcome | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

interface Row {
  id: number; root: string; recipe: string; state: BuildState; step: string | null; step_title: string | null;
  progress: number; generation: string | null; error: string | null; log_file: string; requested_by: string;
  owner: string | null; cancel_requested_by: string | null; result: string | null; created_at: number; started_at: number | null; finished_at: number | null;
}

const toBuild = (r: Row): Build => ({
  id: r.id, root: r.root, recipe: r.recipe, state: r.state, step: r.step, stepTitle: r.step_title, progress: r.progress,
  generation: r.generation, error: r.error, logFile: r.log_file, requestedBy: r.requested_by, owner: r.owner,
  cancelRequestedBy: r.cancel_requested_by,
  result: r.result ? (JSON.parse(r.result) as BuildOutcome) : null,
  createdAt: r.created_at, startedAt: r.started_at, finishedAt: r.finished_at,
});

export class Builds {
  private readonly getStmt;
  constructor(private readonly db: Db) {
    this.getStmt = db.prepare<[number], Row>('SELECT * FROM builds WHERE id = ?');
  }

  get(id: number): Build | undefined {
    const r = this.getStmt.get(id);
    return r ? toBuild(r) : undefined;
  }

  /** Newest first. */
  list(opts: { root?: string; limit?: number } = {}): Build[] {
    const limit = Math.min(Math.max(opts.limit ?? 50, 1), 500);
    const rows = opts.root
      ? this.db.prepare('SELECT * FROM builds WHERE root = ? ORDER BY id DESC LIMIT ?').all(opts.root, limit)
      : this.db.prepare('SELECT * FROM builds ORDER BY id DESC LIMIT ?').all(limit);
    return (rows as Row[]).map(toBuild);
  }

  /** The queued or running build of a root, if any. */
  active(root: string): Build | undefined {
    const r = this.db.prepare<[string], Row>("SELECT * FROM builds WHERE root = ? AND state IN ('queued', 'running')").get(root);
    return r ? toBuild(r) : undefined;
  }

  /** All queued and running builds, oldest first. */
  allActive(): Build[] {
    return (this.db.prepare("SELECT * FROM builds WHERE state IN ('queued', 'running') ORDER BY id").all() as Row[]).map(toBuild);
  }

  /**
   * A new queued build; `logFile(id)` names its log once the id is known. Refused (conflict,
   * naming the build) while the root has one queued or running.
   */
  create(input: { root: string; recipe: string; requestedBy: string; logFile: (id: number) => string }): Build {
    const root = checkName('root', input.root);
    return this.db.transaction(() => {
      const busy = this.active(root);
      if (busy) throw new InventoryError('conflict', 'root', `root ${root} already has build ${busy.id} ${busy.state}: wait for it or cancel it`);
      const now = Date.now();
      const id = Number(this.db.prepare(`INSERT INTO builds (root, recipe, state, log_file, requested_by, created_at)
        VALUES (?, ?, 'queued', '', ?, ?)`).run(root, input.recipe, input.requestedBy, now).lastInsertRowid);
      this.db.prepare('UPDATE builds SET log_file = ? WHERE id = ?').run(input.logFile(id), id);
      return this.get(id)!;
    }).immediate();
  }

  /** queued -> running, by `owner`; false when the build is no longer queued (cancelled meanwhile). */
  start(id: number, owner: string): boolean {
    return this.db.prepare("UPDATE builds SET state = 'running', owner = ?, started_at = ? WHERE id = ? AND state = 'queued'")
      .run(owner, Date.now(), id).changes === 1;
  }

  /** Ask the process running the build to cancel it (it polls); false when the build is not running. */
  requestCancel(id: number, actor: string): boolean {
    return this.db.prepare("UPDATE builds SET cancel_requested_by = ? WHERE id = ? AND state = 'running'").run(actor, id).changes === 1;
  }

  setGeneration(id: number, generation: string): void {
    this.db.prepare('UPDATE builds SET generation = ? WHERE id = ?').run(generation, id);
  }

  setStep(id: number, step: string, title: string, progress: number): void {
    this.db.prepare("UPDATE builds SET step = ?, step_title = ?, progress = ? WHERE id = ? AND state = 'running'")
      .run(step, title, Math.min(1, Math.max(0, progress)), id);
  }

  /** Ends an active build; false when it had already ended. */
  finish(id: number, state: Exclude<BuildState, 'queued' | 'running'>, fields: { error?: string; result?: BuildOutcome } = {}): boolean {
    return this.db.prepare(`UPDATE builds SET state = ?, error = ?, result = ?, finished_at = ?,
        progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END
      WHERE id = ? AND state IN ('queued', 'running')`)
      .run(state, fields.error ?? null, fields.result ? JSON.stringify(fields.result) : null, Date.now(), state, id).changes === 1;
  }

  /** The last successful build of a root. */
  lastSucceeded(root: string): Build | undefined {
    const r = this.db.prepare<[string], Row>("SELECT * FROM builds WHERE root = ? AND state = 'succeeded' ORDER BY id DESC LIMIT 1").get(root);
    return r ? toBuild(r) : undefined;
  }
}
