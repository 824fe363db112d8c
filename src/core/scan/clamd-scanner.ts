/**
 * clamd-scanner.ts — the `Scanner` for clamd: each open() is one INSTREAM connection.
 *
 * Input: the bytes of one file (mode 'per-file': each decoded MIME leaf / archive member)
 * or of the raw message (mode 'whole-message': clamd does its own MIME decoding).
 * Output: ScanResult from ClamdClient (clean / infected(name) / error(kind)).
 * write() always returns null: clamd answers only after the end of the stream.
 * Limits, deadlines and failover are the client's (see clamd-client.ts).
 * Default mode is 'per-file' (bench/clamd-modes.ts: clamd spends most of its time in its
 * own MIME parser on raw messages; decoded parts are several times cheaper).
 * Known gap: per-file mode opens one connection per file (no IDSESSION).
 */
import type { FileInfo, ScanResult } from '../types.js';
import type { ScanStream, Scanner } from './scanner.js';
import { ClamdClient, type ClamdClientOptions } from './clamd-client.js';

export type ClamdMode = 'per-file' | 'whole-message';

export type ClamdScannerOptions = { mode?: ClamdMode } & ({ client: ClamdClient } | ClamdClientOptions);

export class ClamdScanner implements Scanner {
  readonly name = 'clamd';
  readonly mode: ClamdMode;
  readonly client: ClamdClient;

  constructor(opts: ClamdScannerOptions) {
    const mode = opts.mode ?? 'per-file';
    if (mode !== 'per-file' && mode !== 'whole-message') throw new RangeError(`clamd mode must be 'per-file' or 'whole-message', got ${String(mode)}`);
    this.mode = mode;
    this.client = 'client' in opts ? opts.client : new ClamdClient(opts);
  }

  open(_file: FileInfo, signal?: AbortSignal): ScanStream {
    const s = this.client.openStream(signal);
    return {
      write(chunk: Uint8Array): ScanResult | null {
        s.write(chunk);
        return null;
      },
      get needsDrain() {
        return s.needsDrain;
      },
      drain: () => s.drain(),
      end: () => s.end(),
      abort: () => s.abort(),
    };
  }

  /** Stops the client's health timers. */
  close(): void {
    this.client.close();
  }
}
