/**
 * clamd-scanner.ts — the `Scanner` for clamd: each open() is one INSTREAM connection.
 *
 * Input: the bytes of one file (mode 'per-file': each decoded MIME leaf / archive member)
 * or of the raw message (mode 'whole-message': clamd does its own MIME decoding).
 * Output: ScanResult from ClamdClient (clean / infected(name) / error(kind)).
 * write() always returns null: clamd answers only after the end of the stream.
 * Limits, deadlines and failover are the client's (see clamd-client.ts).
 * Default mode is 'per-file'. bench/clamd-modes.ts (tiny test DB, 2-core box, noisy): a raw
 * 1 MB message with a 750 KB base64 attachment took ~10–13.5 ms wall / ~5.5–7 ms clamd CPU,
 * the decoded 750 KB alone ~7.7–9.7 ms / ~4.5–5 ms (×1.2–1.4), but every extra part costs
 * one more connection (~1–3 ms wall). 'whole-message' remains useful as a second opinion
 * on our own MIME parsing (clamd decodes the raw message itself).
 * rawSource(): in per-file mode, the raw message beside the per-file streams (`raw_message`,
 * see clamd-client.ts openRawStream and session.ts): 'anomaly' streams it speculatively and
 * finishes it only for messages that showed an anomaly, 'always' for every message.
 * Connections: per-file mode sends one INSTREAM per file; with keepalive they reuse
 * IDSESSION connections (clamd-client.ts).
 */
import type { FileInfo, ScanResult } from '../types.js';
import type { RawMessageSource, RawMessageStream, ScanStream, Scanner } from './scanner.js';
import { ClamdClient, type ClamdClientOptions, type ClamdStream } from './clamd-client.js';

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

  /** See ClamdClient.openRoom (fronts size their reads by it; per-file streams open mid-message). */
  get openRoom(): number {
    return this.client.openRoom;
  }

  open(_file: FileInfo, signal?: AbortSignal): ScanStream {
    return wrap(this.client.openStream(signal));
  }

  /** Raw-message streams for the session ('off' = none). */
  rawSource(mode: 'anomaly' | 'always' | 'off'): RawMessageSource | null {
    if (mode === 'off' || this.mode !== 'per-file') return null;
    const client = this.client;
    return {
      engine: this.name,
      mode,
      open(signal: AbortSignal, wait: boolean): RawMessageStream | null {
        const s = client.openRawStream(signal, { wait });
        return s ? wrap(s) : null;
      },
    };
  }

  /** Stops the client's health timers. */
  close(): void {
    this.client.close();
  }
}

/** A ClamdStream as a ScanStream (clamd answers only at the end: write() never has a result). */
function wrap(s: ClamdStream): RawMessageStream {
  return {
    write(chunk: Uint8Array): ScanResult | null {
      s.write(chunk);
      return null;
    },
    get needsDrain() {
      return s.needsDrain;
    },
    get room() {
      return s.room;
    },
    drain: () => s.drain(),
    end: () => s.end(),
    abort: () => s.abort(),
    ready: () => s.ready(),
    signatureVersion: () => s.signatureVersion(),
  };
}
