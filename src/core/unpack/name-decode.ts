/**
 * name-decode.ts — member names from archive header bytes.
 *
 * Names are peer data used for banned-extension checks and logs: decoded as UTF-8 when
 * the format says so or the bytes are valid UTF-8, else latin-1 (a lossless byte→char
 * map, so nothing is hidden behind U+FFFD). NULs end the name (C strings in tar).
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeName(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  const b = nul >= 0 ? bytes.subarray(0, nul) : bytes;
  let ascii = true;
  for (let i = 0; i < b.length; i++)
    if (b[i]! >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) return latin1(b);
  try {
    return utf8.decode(b);
  } catch {
    return latin1(b);
  }
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}
