/**
 * sig-errors.ts — the typed error for bad signature configuration.
 *
 * Signature files are configuration: a syntax error is fatal at startup and the
 * message names the file, the line (1-based, 0 when not line-specific) and why.
 * Valid ClamAV syntax that this engine does not implement is NOT an error: such
 * signatures are skipped and counted on the SignatureDb (see `skipped`).
 */
import { ERROR_CODES, MidstreamError } from '../../errors.js';

export const SIG_ERROR_CODES = {
  notFound: ERROR_CODES.sigNotFound, // a configured path does not exist
  read: ERROR_CODES.sigRead, // I/O error reading a file or directory
  syntax: ERROR_CODES.sigSyntax, // a line that does not parse
  container: ERROR_CODES.sigContainer, // a .cvd/.cld that is not a valid header + (gzip) tar
  checksum: ERROR_CODES.sigChecksum, // a .cvd whose header MD5 does not match its body
} as const;

export type SigErrorCode = (typeof SIG_ERROR_CODES)[keyof typeof SIG_ERROR_CODES];

export class SignatureFileError extends MidstreamError {
  declare readonly code: SigErrorCode;
  constructor(
    code: SigErrorCode,
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(code, `${file}${line > 0 ? ':' + line : ''}: ${reason}`);
    this.name = 'SignatureFileError';
  }
}
