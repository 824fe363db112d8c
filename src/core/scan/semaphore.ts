/**
 * semaphore.ts — a counting semaphore with FIFO waiters and AbortSignal support.
 *
 * Used by the clamd client to keep in-flight scans at or below clamd's MaxThreads
 * (clamd stops accept()ing when its queue is full, see reference/clamd-protocol.md §5).
 *
 *   const release = await sem.acquire(signal);   // rejects with signal.reason on abort
 *   const now = sem.tryAcquire();                 // a release function, or null when none is free
 *   try { … } finally { release(); }             // release is idempotent
 *
 * Limits: `permits` ≥ 1. Waiters are unbounded (each holds only a closure).
 * Errors: acquire() rejects with the signal's reason when aborted while waiting.
 */
export class Semaphore {
  private free: number;
  private readonly waiters: { grant: () => void }[] = [];

  constructor(readonly permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError(`semaphore permits must be an integer ≥ 1, got ${permits}`);
    this.free = permits;
  }

  /** Permits currently held. */
  get inUse(): number {
    return this.permits - this.free;
  }

  /** Callers waiting for a permit. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** A permit now, or null when none is free (never waits, never queues). */
  tryAcquire(): (() => void) | null {
    if (this.free === 0) return null;
    this.free--;
    return this.releaser();
  }

  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      // Hand the permit straight to the next waiter; `free` only grows when nobody waits.
      if (next) next.grant();
      else this.free++;
    };
  }
}
