/**
 * builtin-scanner.ts — the embedded signature engine as a Scanner ('builtin', per-file).
 *
 * Each open() gets a fresh Matcher from the shared SignatureDb; write() answers
 * synchronously (a body signature is reported from the write that completes it),
 * end() decides hash / EOF-anchored / allow-listed outcomes. Nothing is buffered
 * beyond the matcher's bounded carry, so needsDrain is always false.
 * Errors: a throw from the matcher is a bug, reported as {error, internal}, never thrown.
 */
import type { FileInfo, ScanResult } from '../types.js';
import type { ScanStream, Scanner } from './scanner.js';
import type { Matcher, SignatureDb } from './sigs/signature-db.js';

export class BuiltinScanner implements Scanner {
  readonly name = 'builtin';
  readonly mode = 'per-file' as const;

  constructor(readonly db: SignatureDb) {}

  /** A body hit is reported by the write that completes it; see SignatureDb.reach. */
  get reach(): number {
    return this.db.reach;
  }

  open(file: FileInfo, signal?: AbortSignal): ScanStream {
    return new BuiltinStream(this.db.createMatcher({ unpacked: file.unpacked === true }), signal);
  }
}

class BuiltinStream implements ScanStream {
  readonly needsDrain = false;
  private done: ScanResult | null = null;
  private aborted = false;

  /**
   * The signal is read, not listened to: the stream does nothing between calls, so
   * checking `aborted` at each one is the same, and an AbortSignal listener added and
   * removed per file cost ~5 % of the CPU of a mail with many small files.
   */
  constructor(
    private readonly matcher: Matcher,
    private readonly signal?: AbortSignal,
  ) {}

  write(chunk: Uint8Array): ScanResult | null {
    return this.take(chunk, false);
  }

  writeUnpacked(chunk: Uint8Array): ScanResult | null {
    return this.take(chunk, true);
  }

  private take(chunk: Uint8Array, unpacked: boolean): ScanResult | null {
    if (this.done !== null) return this.done.kind === 'clean' ? null : this.done;
    if (this.aborted || this.signal?.aborted) return null;
    try {
      const m = this.matcher;
      const name = unpacked && m.writeUnpacked ? m.writeUnpacked(chunk) : m.write(chunk);
      if (name !== null) this.done = { kind: 'infected', name };
    } catch (e) {
      this.done = { kind: 'error', errorKind: 'internal', detail: 'builtin matcher: ' + (e as Error).message };
    }
    return this.done;
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  end(): ScanResult {
    if (this.done !== null) return this.done;
    if (this.aborted || this.signal?.aborted) return (this.done = { kind: 'error', errorKind: 'aborted' });
    try {
      const name = this.matcher.end();
      this.done = name === null ? { kind: 'clean' } : { kind: 'infected', name };
    } catch (e) {
      this.done = { kind: 'error', errorKind: 'internal', detail: 'builtin matcher: ' + (e as Error).message };
    }
    return this.done;
  }

  abort(): void {
    this.aborted = true;
  }
}
