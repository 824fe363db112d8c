/**
 * index.ts — createDecoder(cte): the transfer decoder for a Content-Transfer-Encoding.
 *
 * base64 and quoted-printable decode; everything else (7bit, 8bit, binary, '', unknown
 * tokens, x-uuencode) is identity — uuencoded content is found by UuExtractor watching
 * the decoded text, whatever the declared CTE. The token is matched case-insensitively.
 */
import type { Decoder } from './decoder.js';
import { Base64Decoder } from './base64-decoder.js';
import { QpDecoder } from './qp-decoder.js';

export type { Decoder } from './decoder.js';
export { Base64Decoder } from './base64-decoder.js';
export { QpDecoder } from './qp-decoder.js';
export { UuExtractor } from './uu-extractor.js';

class IdentityDecoder implements Decoder {
  write(chunk: Uint8Array, out: (b: Uint8Array) => void): void {
    if (chunk.length > 0) out(chunk);
  }
  end(): void {}
}

export function createDecoder(cte: string): Decoder {
  switch (cte.trim().toLowerCase()) {
    case 'base64':
      return new Base64Decoder();
    case 'quoted-printable':
      return new QpDecoder();
    default:
      return new IdentityDecoder();
  }
}
