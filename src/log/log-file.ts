/**
 * log-file.ts — the JSON-lines log file: append, reopen on SIGUSR1 (logrotate), and
 * never crash on a write error.
 *
 * Input: an absolute path. Lines are appended with one synchronous write each (one
 * line per message plus events: cheap, ordered, and nothing is lost in a buffer when
 * the process is killed). Output: write(line), reopen(), close().
 * Errors: open() throws MidstreamError LOG_WRITE (start-up: fatal with the reason;
 * check-config runs the same check). A write error later (disk full, file removed with
 * its directory, EIO) is reported on stderr once per kind of error and the line goes to
 * stderr instead; the next reopen() or a later successful write clears the state.
 * Gaps: no size-based rotation of our own (logrotate's job, see deploy/logrotate).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { ERROR_CODES, MidstreamError, osErrno } from '../core/errors.js';

export class LogFile {
  private fd: number;
  private failing: string | null = null;

  constructor(
    readonly path: string,
    private readonly report: (msg: string) => void = (m) => process.stderr.write(m + '\n'),
  ) {
    this.fd = LogFile.open(path);
  }

  /** Open `path` for appending (created 0640 if missing). Throws MidstreamError LOG_WRITE. */
  static open(path: string): number {
    try {
      return openSync(path, 'a', 0o640);
    } catch (e) {
      throw new MidstreamError(ERROR_CODES.logWrite, `cannot open log file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  write(line: string): void {
    try {
      writeSync(this.fd, line + '\n');
      if (this.failing) {
        this.report(JSON.stringify({ time: new Date().toISOString(), level: 'warn', event: 'log-write-recovered', file: this.path }));
        this.failing = null;
      }
    } catch (e) {
      const code = osErrno(e) ?? 'EIO';
      if (this.failing !== code) {
        this.failing = code;
        this.report(JSON.stringify({ time: new Date().toISOString(), level: 'error', event: 'log-write-failed', file: this.path, errno: code, error: (e as Error).message, note: 'log lines go to stderr until the file is writable again' }));
      }
      process.stderr.write(line + '\n');
    }
  }

  /** Open the path again (after logrotate moved the file) and close the old descriptor. */
  reopen(): void {
    const fd = LogFile.open(this.path);
    const old = this.fd;
    this.fd = fd;
    this.failing = null;
    try {
      closeSync(old);
    } catch {
      // already closed
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
