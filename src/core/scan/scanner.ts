/**
 * scanner.ts — the Scanner interface both engines implement.
 *
 * A scan stream receives one file's bytes (a decoded MIME leaf or archive member,
 * or the raw message in clamd whole-message mode). Built-in streams answer
 * synchronously from write(); clamd streams buffer up to a bound and report
 * backpressure through `needsDrain`/`drain()`.
 */
import type { FileInfo, ScanResult } from '../types.js';

export interface ScanStream {
  /**
   * Push bytes. May return an early result (built-in engine) or null. Never throws for peer input.
   * `chunk` is borrowed (chunk-ownership.ts): copy what you keep, unless the scanner declares keepsChunks.
   */
  write(chunk: Uint8Array): ScanResult | null;
  /**
   * Optional: bytes of an archive the core unpacks whose content reaches the archive's
   * members (FileInfo.unpacked): deflate data it decoded, stored data it passed on. This
   * engine sees that content again, as the members; an engine that scans those may skip
   * reading these (they still count for offsets and hashes). Without it: write().
   */
  writeUnpacked?(chunk: Uint8Array): ScanResult | null;
  /** True while the stream buffers more than it should; the caller awaits drain() before pushing more. */
  readonly needsDrain: boolean;
  /**
   * Optional: bytes it can take now before needsDrain turns true (0 when it is true;
   * Infinity once ended; absent = unbounded). MessageSession.room() takes the least of
   * them, so a front can size its socket reads to keep buffering streams at their marks.
   */
  readonly room?: number;
  /** Resolves when needsDrain is over (a buffering stream may wait for its low-water mark). */
  drain(): Promise<void>;
  /** No more bytes. Resolves with the final result for this file. */
  end(): Promise<ScanResult> | ScanResult;
  /** Stop now (message aborted, verdict already final). Idempotent. */
  abort(): void;
  /**
   * The signature version this stream's result comes from (clamd: the VERSION of the
   * endpoint that scans it), for cache keys; null = unknown. Absent = not cacheable.
   */
  signatureVersion?(): Promise<string | null>;
}

export interface Scanner {
  /** 'builtin' or 'clamd' — recorded in verdicts and logs. */
  readonly name: string;
  /** What the engine wants to see: each decoded file, or the raw message once. */
  readonly mode: 'per-file' | 'whole-message';
  /** Its streams keep references to written chunks: the session hands them private copies. */
  readonly keepsChunks?: boolean;
  /**
   * How far before the byte that reports a detection its evidence can begin (bytes), for
   * fronts that deliver a file while it is scanned (release-gate.ts). Absent or Infinity:
   * the engine answers only at the end of the file, so the whole file is evidence.
   */
  readonly reach?: number;
  /** Optional: the room (ScanStream.room) a stream opened now would start with; absent = unbounded. */
  readonly openRoom?: number;
  open(file: FileInfo, signal?: AbortSignal): ScanStream;
}

/** A raw-message stream beside per-file scanning (clamd `raw_message`). */
export interface RawMessageStream extends ScanStream {
  /** Resolves once the stream holds its scanner slot (or has failed): the session waits for it before parsing in 'always' mode. */
  ready(): Promise<void>;
}

/**
 * Where raw-message streams come from. 'anomaly': speculative streams, finished (end())
 * only when the message showed an anomaly, else aborted unscanned; 'always': every message.
 * open(signal, false) never waits and returns null when no slot is free; open(signal, true)
 * queues for a slot (bounded by the scanner's own deadline) and never returns null.
 */
export interface RawMessageSource {
  readonly engine: string;
  readonly mode: 'anomaly' | 'always';
  open(signal: AbortSignal, wait: boolean): RawMessageStream | null;
}
