/**
 * Root build jobs: the queue behind `sidereal root build` and POST /api/v1/roots/:name/builds.
 *
 * A request checks the recipe and the free disk, then records a queued build (one per root: the
 * inventory refuses a second); builds run one at a time (two debootstraps on a small server only
 * slow each other down), in this process, with buildRoot. Every step change lands in the builds
 * table and reaches subscribers (the SSE route, the CLI with --offline); every line the commands
 * print goes to the build's log file and to subscribers. A cancel aborts the build, whose cleanup
 * unmounts and removes the new generation; `current` only ever moves in the publish step.
 *
 * After a crash, `recover()` (daemon start) marks the builds whose owner process is gone as
 * failed and removes their half-built generations (mounts are undone before, by recoverLeftovers).
 */
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SiderealConfig } from '../config/config.js';
import { InventoryError, type Build, type BuildOutcome, type Inventory } from '../inventory/index.js';
import type { Logger } from '../log.js';
import { BuildError, buildRoot, treeBytes } from './build.js';
import { CURRENT, currentGeneration, listGenerations, removeGeneration, rootDir, type Generation } from './generations.js';
import { killBuildProcesses, ownerAlive, ownerToken } from './owner.js';
import { unmountAll } from './mounts.js';
import { activateGeneration, publishedMatch, readGenerationInfo, rollbackTarget, type GenerationInfo, type PublishedRoot } from './publish.js';
import { loadRecipe } from './recipe.js';

export type BuildEvent =
  | { type: 'build'; build: Build }
  | { type: 'step'; id: number; step: string; title: string; progress: number }
  | { type: 'log'; id: number; step: string; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'end'; build: Build };

/** The disk lacks room for a build (HTTP 507). */
export class DiskSpaceError extends Error {
  constructor(readonly needBytes: number, readonly freeBytes: number, message: string) {
    super(message);
    this.name = 'DiskSpaceError';
  }
}

/** Without an earlier build to go by: a minbase root with a kernel and dracut is ~0.9 GiB here. */
export const FIRST_BUILD_NEED = 2 * 2 ** 30;

const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

export class BuildJobs {
  private readonly controllers = new Map<number, AbortController>();
  private readonly listeners = new Map<number, Set<(e: BuildEvent) => void>>();
  private readonly queue: number[] = [];
  private runningNow: Promise<void> | undefined;
  private closed = false;
  readonly owner = ownerToken();

  constructor(private readonly inv: Inventory, private readonly config: SiderealConfig, private readonly logger: Logger) {}

  /** `<recipes>/<root>.yaml`. */
  recipeFile(root: string): string {
    return path.join(this.config.roots.recipes, `${root}.yaml`);
  }

  logDir(): string {
    return this.config.dataDir === ':memory:' ? path.join(tmpdir(), 'sidereal-build-logs') : path.join(this.config.dataDir, 'builds');
  }

  /**
   * Queue a build of `root` from its recipe. Throws InventoryError (not_found: no recipe;
   * conflict: a build of it is queued or running), RecipeError (the recipe is wrong, naming the
   * key) or DiskSpaceError, all before anything is recorded.
   */
  async request(root: string, actor: string): Promise<Build> {
    if (this.closed) throw new Error('the build queue is shut down');
    const file = this.recipeFile(root);
    if (!existsSync(file)) throw new InventoryError('not_found', 'name', `no recipe for ${root}: ${file} does not exist`);
    const recipe = loadRecipe(file);
    if (recipe.name !== root) throw new InventoryError('invalid', 'name', `${file} names its root ${recipe.name}, not ${root}`);
    const busy = this.inv.builds.active(root);
    if (busy) throw new InventoryError('conflict', 'root', `root ${root} already has build ${busy.id} ${busy.state}: wait for it or cancel it`);
    await this.checkDisk(root);
    await mkdir(this.logDir(), { recursive: true, mode: 0o750 });
    const build = this.inv.db.transaction(() => {
      const b = this.inv.builds.create({ root, recipe: file, requestedBy: actor, logFile: (id) => path.join(this.logDir(), `${id}.log`) });
      this.inv.audit.record(actor, 'root.build', root, null, { build: b.id, recipe: file });
      return b;
    }).immediate();
    this.logger.info({ root, build: build.id, actor }, 'root build queued');
    this.queue.push(build.id);
    this.pump();
    return build;
  }

  /** Free space on the roots' filesystem against the last build's tree (+25%), or FIRST_BUILD_NEED. */
  async checkDisk(root: string): Promise<{ needBytes: number; freeBytes: number }> {
    const last = this.inv.builds.lastSucceeded(root)?.result?.treeBytes;
    const needBytes = last ? Math.ceil(last * 1.25) : FIRST_BUILD_NEED;
    let dir = this.config.roots.dir;
    while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    const s = await statfs(dir);
    const freeBytes = s.bavail * s.bsize;
    if (freeBytes < needBytes) {
      throw new DiskSpaceError(needBytes, freeBytes,
        `${this.config.roots.dir} has ${gib(freeBytes)} free; building ${root} needs about ${gib(needBytes)} `
        + `(${last ? 'its last tree plus 25%' : 'a first build'}): free some space or set roots.dir elsewhere`);
    }
    return { needBytes, freeBytes };
  }

  /**
   * Cancel a queued or running build. A build another process runs (the daemon's, seen from a
   * `--offline` CLI, or the reverse) is flagged in its row; its owner polls the flag and aborts.
   */
  cancel(id: number, actor: string): Build {
    const b = this.inv.builds.get(id);
    if (!b) throw new InventoryError('not_found', 'id', `no build ${id}`);
    if (b.state !== 'queued' && b.state !== 'running') throw new InventoryError('conflict', 'state', `build ${id} has already ended: ${b.state}`);
    this.inv.audit.record(actor, 'root.build.cancel', b.root, { build: id, state: b.state }, null);
    const ac = this.controllers.get(id);
    if (ac) {
      ac.abort(new Error(`cancelled by ${actor}`));
    } else if (b.state === 'queued' || !ownerAlive(b.owner)) {
      this.inv.builds.finish(id, 'cancelled', { error: `cancelled by ${actor}` });
      this.emitEnd(id);
    } else {
      this.inv.builds.requestCancel(id, actor);
    }
    return this.inv.builds.get(id)!;
  }

  /** Events of one build, from now on; returns the unsubscribe. Ended builds get nothing. */
  subscribe(id: number, fn: (e: BuildEvent) => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(id);
    };
  }

  /** Resolves when the build `id` has ended (in this process). */
  whenDone(id: number): Promise<Build> {
    const b = this.inv.builds.get(id);
    if (!b || (b.state !== 'queued' && b.state !== 'running')) return Promise.resolve(b!);
    return new Promise((resolve) => {
      const off = this.subscribe(id, (e) => {
        if (e.type === 'end') { off(); resolve(e.build); }
      });
    });
  }

  /**
   * At daemon start: builds left queued or running by a process that is gone are marked failed
   * (succeeded, when the kill came after their generation went live), and every half-built
   * generation whose owner is gone (its `.gen-*.building` marker) removed.
   * Call after recoverLeftovers has unmounted what the dead build had mounted.
   */
  async recover(): Promise<Build[]> {
    const failed: Build[] = [];
    for (const b of this.inv.builds.allActive()) {
      if (ownerAlive(b.owner) && b.owner !== this.owner) continue;
      const result = await this.wentLive(b);
      if (result) {
        this.inv.builds.finish(b.id, 'succeeded', { result });
        this.logger.warn({ build: b.id, root: b.root, generation: b.generation }, 'root build interrupted by a crash after its generation went live: marked succeeded');
        continue;
      }
      const error = b.state === 'queued'
        ? 'interrupted: Sidereal stopped before the build started'
        : `interrupted: the process running it (${b.owner}) died during step ${b.step ?? 'start'}`;
      if (this.inv.builds.finish(b.id, 'failed', { error })) failed.push(this.inv.builds.get(b.id)!);
      this.logger.warn({ build: b.id, root: b.root, step: b.step, generation: b.generation }, 'root build interrupted by a crash: marked failed');
    }
    await this.removeOrphanGenerations();
    await this.republishCurrent();
    return failed;
  }

  /**
   * A build killed after it switched `current` (between the switch and its own record) finished
   * its work: its generation is whole and live. Its outcome, read back from the generation; or
   * undefined when the build did not get that far.
   */
  private async wentLive(b: Build): Promise<BuildOutcome | undefined> {
    const dir = this.config.roots.dir;
    if (b.state !== 'running' || !b.generation || (await currentGeneration(dir, b.root)) !== b.generation) return undefined;
    const info = await readGenerationInfo(dir, b.root, b.generation).catch(() => undefined);
    if (!info || info.files.length < 2) return undefined;
    const [kernel, initrd] = info.files.map((f) => f.name) as [string, string];
    const initrdBytes = await stat(path.join(this.config.tftp.root, initrd)).then((s) => s.size, () => 0);
    return {
      kernel, initrd, kver: info.kver, seconds: (Date.now() - (b.startedAt ?? b.createdAt)) / 1000,
      treeBytes: await treeBytes(path.join(rootDir(dir, b.root), b.generation)), initrdBytes, pruned: [],
    };
  }

  /**
   * A crash between publishing a generation's files, its inventory row and `current` leaves them
   * disagreeing: make every built root's row and TFTP files (compared byte for byte: a rebuild
   * publishes the same names) match its `current` again.
   */
  private async republishCurrent(): Promise<void> {
    const { dir } = this.config.roots;
    for (const root of this.inv.roots.list()) {
      if (root.nfsPath !== path.join(rootDir(dir, root.name), CURRENT)) continue; // registered by hand
      const gen = await currentGeneration(dir, root.name);
      const info = gen ? await readGenerationInfo(dir, root.name, gen).catch(() => undefined) : undefined;
      if (!gen || !info) continue;
      const names = info.files.map((f) => f.name);
      const treeDir = path.join(rootDir(dir, root.name), gen);
      if (root.kernel === names[0] && root.initrd === names[1] && await publishedMatch(treeDir, this.config.tftp.root, info.files)) continue;
      try {
        await activateGeneration({ rootsDir: dir, tftpRoot: this.config.tftp.root, name: root.name, generation: gen, register: (p) => this.register(p, 'sidereal:recovery') });
        this.logger.warn({ root: root.name, generation: gen }, 'republished the current generation: its files or inventory row did not match');
      } catch (err) {
        this.logger.error({ err, root: root.name, generation: gen }, 'cannot republish the current generation');
      }
    }
  }

  /** The generations of a root, newest last, with what each publishes. */
  async generations(root: string): Promise<Array<Generation & { info: GenerationInfo | null; building: boolean }>> {
    const gens = await listGenerations(this.config.roots.dir, root);
    const active = this.inv.builds.active(root);
    return Promise.all(gens.map(async (g) => ({
      ...g,
      info: (await readGenerationInfo(this.config.roots.dir, root, g.name).catch(() => undefined)) ?? null,
      building: active?.generation === g.name,
    })));
  }

  /**
   * Make an older generation (or `to`) the live one again: its own kernel and initrd are
   * republished, the root row updated, `current` switched. Refused while a build of it runs
   * (the build would move `current` again when it ends).
   */
  async rollback(root: string, to: string | undefined, actor: string): Promise<PublishedRoot> {
    const busy = this.inv.builds.active(root);
    if (busy) throw new InventoryError('conflict', 'name', `root ${root} has build ${busy.id} ${busy.state}: cancel it or wait before rolling back`);
    const generation = await rollbackTarget(this.config.roots.dir, root, to);
    const from = await currentGeneration(this.config.roots.dir, root);
    const p = await activateGeneration({
      rootsDir: this.config.roots.dir, tftpRoot: this.config.tftp.root, name: root, generation,
      register: (r) => this.register(r, actor, 'root.rollback'),
    });
    this.logger.info({ root, from, to: generation, actor }, 'root rolled back');
    return p;
  }

  private async removeOrphanGenerations(): Promise<void> {
    const dir = this.config.roots.dir;
    if (!existsSync(dir)) return;
    for (const name of await readdir(dir)) {
      let entries: string[];
      try {
        entries = await readdir(rootDir(dir, name));
      } catch {
        continue;
      }
      for (const e of entries) {
        const m = /^\.(gen-.+)\.building$/.exec(e);
        if (!m) continue;
        const marker = path.join(rootDir(dir, name), e);
        const token = (await readFile(marker, 'utf8').catch(() => '')).trim();
        if (ownerAlive(token) && token !== this.owner) continue;
        const genDir = path.join(rootDir(dir, name), m[1]!);
        try {
          // Its commands may outlive it (debootstrap runs on the host, in its own process group): stop
          // them, undo their mounts, then remove the tree.
          const killed = await killBuildProcesses(genDir);
          const unmounted = await unmountAll(genDir, { logger: this.logger });
          if (killed.length || unmounted.length) this.logger.warn({ root: name, generation: m[1], killed, unmounted }, 'stopped what a crashed build left running');
          if ((await currentGeneration(dir, name)) !== m[1]) await removeGeneration(dir, name, m[1]!);
          await rm(marker, { force: true });
          this.logger.warn({ root: name, generation: m[1] }, 'removed a generation a crashed build left half-built');
        } catch (err) {
          this.logger.error({ err, root: name, generation: m[1] }, 'cannot remove a half-built generation');
        }
      }
    }
  }

  /** Stop taking builds, cancel the running one and wait for its cleanup. */
  async close(): Promise<void> {
    this.closed = true;
    for (const id of this.queue.splice(0)) {
      this.inv.builds.finish(id, 'cancelled', { error: 'Sidereal stopped before the build started' });
      this.emitEnd(id);
    }
    for (const ac of this.controllers.values()) ac.abort(new Error('Sidereal is stopping'));
    await this.runningNow;
  }

  private pump(): void {
    if (this.runningNow || this.closed) return;
    const id = this.queue.shift();
    if (id === undefined) return;
    this.runningNow = this.runOne(id)
      .catch((err: unknown) => this.logger.error({ err, build: id }, 'root build job failed unexpectedly'))
      .finally(() => {
        this.runningNow = undefined;
        this.pump();
      });
  }

  private async runOne(id: number): Promise<void> {
    if (!this.inv.builds.start(id, this.owner)) return; // cancelled while queued
    const b = this.inv.builds.get(id)!;
    const log = createWriteStream(b.logFile, { flags: 'a', mode: 0o640 });
    const ac = new AbortController();
    this.controllers.set(id, ac);
    const logger = this.logger.child({ build: id, root: b.root });
    // A cancel asked from another process lands in the row: look every second.
    const poll = setInterval(() => {
      const by = this.inv.builds.get(id)?.cancelRequestedBy;
      if (by) ac.abort(new Error(`cancelled by ${by}`));
    }, 1000);
    this.emit(id, { type: 'build', build: b });
    writeLog(log, '-', `build ${id} of ${b.root} from ${b.recipe}, requested by ${b.requestedBy}`);
    try {
      const recipe = loadRecipe(b.recipe);
      const r = await buildRoot({
        recipe, buildId: id, logger, signal: ac.signal,
        rootsDir: this.config.roots.dir, tftpRoot: this.config.tftp.root, cacheDir: this.config.roots.cacheDir,
        ...(this.config.roots.proxy ? { proxy: this.config.roots.proxy } : {}),
        onGeneration: (gen) => this.inv.builds.setGeneration(id, gen),
        onProgress: (step, progress) => {
          if (progress >= 1) return;
          this.inv.builds.setStep(id, step.id, step.title, progress);
          writeLog(log, step.id, `== ${step.title}`);
          this.emit(id, { type: 'step', id, step: step.id, title: step.title, progress });
        },
        onLine: (line, step, stream) => {
          writeLog(log, step, line);
          this.emit(id, { type: 'log', id, step, stream, line });
        },
        register: (root) => this.register(root, b.requestedBy),
        inUse: (dir) => this.inv.nfs.bootedFrom(dir).length > 0,
      });
      const result = { kernel: r.kernel, initrd: r.initrd, kver: r.kver, seconds: r.seconds, ...r.sizes, pruned: r.pruned };
      this.inv.builds.finish(id, 'succeeded', { result });
      writeLog(log, '-', `succeeded in ${r.seconds.toFixed(1)} s: ${r.generation}, ${r.kernel}, ${r.initrd}`);
    } catch (err) {
      const cancelled = ac.signal.aborted;
      const message = err instanceof Error ? err.message : String(err);
      this.inv.builds.finish(id, cancelled ? 'cancelled' : 'failed', { error: cancelled ? String((ac.signal.reason as Error)?.message ?? 'cancelled') : message });
      writeLog(log, err instanceof BuildError ? err.step : '-', cancelled ? 'cancelled' : `FAILED: ${message}`);
      logger[cancelled ? 'warn' : 'error']({ err: message }, cancelled ? 'root build cancelled' : 'root build failed');
    } finally {
      clearInterval(poll);
      this.controllers.delete(id);
      await new Promise<void>((resolve) => log.end(resolve));
      this.emitEnd(id);
    }
  }

  /** The root row, audited, before `current` moves (publish.ts). */
  private register(root: PublishedRoot, actor: string, action = 'root.publish'): void {
    this.inv.audited(actor, action, root.name, () => {
      const before = this.inv.roots.get(root.name) ?? null;
      const after = this.inv.roots.put({ name: root.name, arch: root.arch, kernel: root.kernel, initrd: root.initrd, nfsPath: root.nfsPath, kernelArgs: root.kernelArgs });
      return { before, after: { ...after, generation: root.generation }, result: after };
    });
  }

  private emit(id: number, e: BuildEvent): void {
    for (const fn of this.listeners.get(id) ?? []) {
      try {
        fn(e);
      } catch (err) {
        this.logger.warn({ err, build: id }, 'a build event listener threw');
      }
    }
  }

  private emitEnd(id: number): void {
    const build = this.inv.builds.get(id);
    if (build) this.emit(id, { type: 'end', build });
  }
}

function writeLog(log: WriteStream, step: string, line: string): void {
  log.write(`${new Date().toISOString()} [${step}] ${line}\n`);
}

