/**
 * The JS side that both native pumps (tftp-pump, http-sendfile) share, as their C side shares
 * native/common/pump_base: a thread's end callbacks, and the pool of threads work is spread over.
 */

/** One pump thread's work in flight: the end callback of each, by the thread's own ids. */
export class PendingEnds<End> {
  private readonly ends = new Map<number, (end: End) => void>();

  get size(): number {
    return this.ends.size;
  }

  has(id: number): boolean {
    return this.ends.has(id);
  }

  add(id: number, onEnd: (end: End) => void): void {
    this.ends.set(id, onEnd);
  }

  /** Call the end callback of `id` once; false when it is not in flight. */
  deliver(id: number, end: End): boolean {
    const cb = this.ends.get(id);
    if (!cb) return false;
    this.ends.delete(id);
    cb(end);
    return true;
  }

  /** `closeNative` stops the thread, which still reports every end; resolves once they are all delivered. */
  async closeWith(closeNative: () => void): Promise<void> {
    const pending = [...this.ends.entries()].map(([id, cb]) => new Promise<void>((resolve) => {
      this.ends.set(id, (end) => { cb(end); resolve(); });
    }));
    closeNative();
    await Promise.all(pending);
  }
}

/**
 * Pump threads that work is spread over: one thread is one CPU. A piece of work goes to the
 * thread with the fewest in flight and stays there; its id is the pool's own.
 */
export class ThreadPool<T extends { readonly active: number; close(): Promise<void> }> {
  readonly threads: readonly T[];
  private readonly where = new Map<number, { thread: T; id: number }>();
  private nextId = 1;

  constructor(count: number, make: () => T) {
    if (!Number.isInteger(count) || count < 1) throw new Error(`threads must be a whole number >= 1, got ${count}`);
    this.threads = Array.from({ length: count }, make);
  }

  /** Work in flight, over every thread. */
  get active(): number {
    return this.where.size;
  }

  /** Work in flight per thread (for tests and the bench). */
  perThread(): number[] {
    return this.threads.map((t) => t.active);
  }

  /**
   * `begin` starts the work on `thread` and returns what the thread said (its own `id`);
   * the work's end callback must call `ended` first. Returns that, with the pool's id.
   */
  protected place<R extends { id: number }>(begin: (thread: T, ended: () => void) => R): R {
    let t = this.threads[0]!;
    for (const c of this.threads) if (c.active < t.active) t = c;
    const id = this.nextId++;
    const r = begin(t, () => this.where.delete(id));
    this.where.set(id, { thread: t, id: r.id });
    return { ...r, id };
  }

  /** The thread and its own id for the pool's `id`, while in flight. */
  protected find(id: number): { thread: T; id: number } | undefined {
    return this.where.get(id);
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
