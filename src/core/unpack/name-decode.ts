/**
 * name-decode.ts — member names from archive header bytes.
 *
 * Names are peer data used for banned-extension checks and logs: decoded as UTF-8 when
 * the bytes are valid UTF-8, else latin-1 (a lossless byte→char map, so nothing is
 * hidden behind U+FFFD). A NUL ends the name for C clients and Python (`a.exe\0.txt` is
 * `a.exe`); a client that keeps the whole string sees something else, so
 * nameCandidates() gives both readings and the caller policy-checks each.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The name as C clients read it: up to the first NUL. */
export function decodeName(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return decodeBytes(nul >= 0 ? bytes.subarray(0, nul) : bytes);
}

/**
 * Every reading of a name field: [cut at the first NUL, the whole field without its
 * trailing NUL padding] — the second only when something else follows the first NUL.
 */
export function nameCandidates(bytes: Uint8Array): string[] {
  const nul = bytes.indexOf(0);
  if (nul < 0) return [decodeBytes(bytes)];
  const cut = decodeBytes(bytes.subarray(0, nul));
  let end = bytes.length;
  while (end > nul && bytes[end - 1] === 0) end--; // NUL padding of fixed fields is no part of any reading
  return end > nul ? [cut, decodeBytes(bytes.subarray(0, end))] : [cut];
}

function decodeBytes(b: Uint8Array): string {
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
