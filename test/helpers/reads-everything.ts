/**
 * reads-everything.ts — a scanner wrapper without writeUnpacked: the session hands the
 * wrapped engine every byte of an archive through write(), so floating body signatures read
 * the bytes its members carry too. The reference that archive-level skipping is compared with.
 */
import type { Scanner, ScanStream } from '../../src/core/scan/scanner.js';
import type { FileInfo } from '../../src/core/types.js';

export class ReadsEverything implements Scanner {
  readonly name: string;
  readonly mode = 'per-file' as const;
  constructor(private readonly inner: Scanner) {
    this.name = inner.name;
  }
  open(file: FileInfo, signal?: AbortSignal): ScanStream {
    const s = this.inner.open(file, signal);
    return {
      write: (c) => s.write(c),
      end: () => s.end(),
      get needsDrain() {
        return s.needsDrain;
      },
      drain: () => s.drain(),
      abort: () => s.abort(),
    };
  }
}
