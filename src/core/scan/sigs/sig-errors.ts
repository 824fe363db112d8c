/**
 * sig-errors.ts — the typed error for bad signature configuration.
 *
 * Signature files are configuration: a syntax error is fatal at startup and the
 * message names the file, the line (1-based, 0 when not line-specific) and why.
 * Valid ClamAV syntax that this engine does not implement is NOT an error: such
 * signatures are skipped and counted on the SignatureDb (see `skipped`).
 */

export const SIG_ERROR_CODES = {
  notFound: 'SIG_NOT_FOUND', // a configured path does not exist
  read: 'SIG_READ', // I/O error reading a file or directory
  syntax: 'SIG_SYNTAX', // a line that does not parse
  container: 'SIG_CONTAINER', // a .cvd/.cld that is not a valid header + (gzip) tar
  checksum: 'SIG_CHECKSUM', // a .cvd whose header MD5 does not match its body
} as const;

export type SigErrorCode = (typeof SIG_ERROR_CODES)[keyof typeof SIG_ERROR_CODES];

export class SignatureFileError extends Error {
  override readonly name = 'SignatureFileError';
  constructor(
    readonly code: SigErrorCode,
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}${line > 0 ? ':' + line : ''}: ${reason}`);
  }
}
