/**
 * sniff.ts — what a file really is, from its first bytes (names and MIME types lie).
 *
 * sniffArchive(head): the formats midstream unpacks itself, or null.
 * sniffType(head): a type name for banned-type policy, or null if unrecognised.
 * `head` should be the first SNIFF_HEAD_BYTES of the file (fewer if the file is
 * shorter); a signature that lies beyond `head` is not seen (e.g. a PE header whose
 * e_lfanew points past it: still 'pe' because of the MZ stub).
 * Type names: pe (MZ, with or without a PE header), elf, macho (thin or universal),
 * java-class, msi (OLE2 whose root CLSID, when within head, is the Windows Installer
 * one), ole (other OLE2 compound files: .doc/.xls/.msg/…), rar, 7z, cab, arj, xz, lzh,
 * ace, zstd, lz4, cpio, szdd, chm, rtf, pdf, lnk, swf, wasm, script-shebang, and the
 * archive formats zip, gzip, bzip2, tar (by magic, or for v7 by its header checksum).
 */
import { isTarHeader } from './tar-header.js';
import type { ArchiveFormat } from './unpack-types.js';

/** Enough for every signature here (tar's magic sits at 257). */
export const SNIFF_HEAD_BYTES = 1024;

const at = (h: Uint8Array, off: number, sig: readonly number[]): boolean => {
  if (off + sig.length > h.length) return false;
  for (let i = 0; i < sig.length; i++) if (h[off + i] !== sig[i]) return false;
  return true;
};
// Memoised: sniffing runs once per file (tens of thousands per hostile message), and
// building the magic arrays on every call was its main cost.
const ASCII_CACHE = new Map<string, number[]>();
const ascii = (s: string): number[] => {
  let a = ASCII_CACHE.get(s);
  if (!a) ASCII_CACHE.set(s, (a = Array.from(s, (c) => c.charCodeAt(0))));
  return a;
};

const PDF_MAGIC = Buffer.from('%PDF-', 'latin1');
/** Buffer's native search, called on plain Uint8Arrays too. */
const indexOf = Buffer.prototype.indexOf as (this: Uint8Array, value: Uint8Array, byteOffset: number) => number;

const BZ_BLOCK = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]; // pi
const BZ_EOS = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90]; // sqrt(pi): empty stream

export function sniffArchive(head: Uint8Array): ArchiveFormat | null {
  if (at(head, 0, [0x1f, 0x8b, 0x08])) return 'gzip';
  if (at(head, 0, [0x50, 0x4b])) {
    if (at(head, 2, [3, 4]) || at(head, 2, [5, 6])) return 'zip';
    // Spanned/split marker directly followed by the first local header.
    if ((at(head, 2, [7, 8]) || at(head, 2, [0x30, 0x30])) && at(head, 4, [0x50, 0x4b, 3, 4])) return 'zip';
  }
  if (at(head, 0, ascii('BZh')) && head.length >= 10 && head[3]! >= 0x31 && head[3]! <= 0x39)
    if (at(head, 4, BZ_BLOCK) || at(head, 4, BZ_EOS)) return 'bzip2';
  // "ustar\0" + "00" (POSIX, pax) or "ustar  \0" (GNU).
  if (at(head, 257, ascii('ustar')) && (at(head, 262, [0, 0x30, 0x30]) || at(head, 262, [0x20, 0x20, 0]))) return 'tar';
  // v7 (no magic) and odd writers: Python's tarfile and GNU tar take any block whose checksum is right.
  if (isTarHeader(head)) return 'tar';
  return null;
}

const u16le = (h: Uint8Array, o: number) => h[o]! | (h[o + 1]! << 8);
const u32le = (h: Uint8Array, o: number) => (u16le(h, o) | (u16le(h, o + 2) << 16)) >>> 0;
const u32be = (h: Uint8Array, o: number) => ((h[o]! << 24) | (h[o + 1]! << 16) | (h[o + 2]! << 8) | h[o + 3]!) >>> 0;

/** Windows Installer package/patch CLSIDs ({000C1084-…-46}, {000C1086-…-46}) as stored (little-endian GUID). */
const MSI_CLSIDS = [0x84, 0x86].map((b) => [b, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46]);

function oleKind(h: Uint8Array): 'msi' | 'ole' {
  if (h.length < 0x34) return 'ole';
  const sectorShift = u16le(h, 0x1e);
  if (sectorShift < 7 || sectorShift > 16) return 'ole';
  const dirSector = u32le(h, 0x30);
  const rootEntry = (dirSector + 1) * 2 ** sectorShift; // root storage is the first directory entry
  const clsid = rootEntry + 0x50;
  return MSI_CLSIDS.some((c) => at(h, clsid, c)) ? 'msi' : 'ole';
}

/** `archive`: sniffArchive(head), when the caller has it already. */
export function sniffType(head: Uint8Array, archive: ArchiveFormat | null = sniffArchive(head)): string | null {
  const h = head;
  if (archive) return archive;
  if (at(h, 0, ascii('MZ'))) return 'pe'; // with a PE header at e_lfanew or a bare DOS/NE/LE executable
  if (at(h, 0, [0x7f, 0x45, 0x4c, 0x46])) return 'elf';
  for (const m of [0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe]) if (h.length >= 4 && u32be(h, 0) === m) return 'macho';
  if (h.length >= 8 && u32be(h, 0) === 0xcafebabe) return u32be(h, 4) < 0x30 ? 'macho' : 'java-class'; // fat arch count vs class version
  if (at(h, 0, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])) return oleKind(h);
  if (at(h, 0, ascii('Rar!\x1a\x07'))) return 'rar';
  if (at(h, 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return '7z';
  if (at(h, 0, ascii('MSCF')) || at(h, 0, ascii('ISc('))) return 'cab';
  if (at(h, 0, [0x60, 0xea])) return 'arj';
  if (at(h, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (at(h, 2, ascii('-lh')) && h[6] === 0x2d) return 'lzh';
  if (at(h, 7, ascii('**ACE**'))) return 'ace';
  if (at(h, 0, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (at(h, 0, [0x04, 0x22, 0x4d, 0x18])) return 'lz4';
  if (at(h, 0, ascii('07070')) || at(h, 0, [0xc7, 0x71]) || at(h, 0, [0x71, 0xc7])) return 'cpio';
  if (at(h, 0, ascii('SZDD')) || at(h, 0, ascii('KWAJ'))) return 'szdd';
  if (at(h, 0, ascii('ITSF'))) return 'chm';
  if (at(h, 0, ascii('{\\rtf'))) return 'rtf';
  if (at(h, 0, [0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0])) return 'lnk';
  if ((at(h, 0, ascii('FWS')) || at(h, 0, ascii('CWS')) || at(h, 0, ascii('ZWS'))) && h.length > 3 && h[3]! < 64) return 'swf';
  if (at(h, 0, [0, 0x61, 0x73, 0x6d])) return 'wasm';
  if (at(h, 0, ascii('#!'))) return 'script-shebang';
  // Readers accept %PDF- anywhere in the first KiB; so do we.
  const first = h.length > 1024 ? h.subarray(0, 1024) : h;
  if (indexOf.call(first, PDF_MAGIC, 0) >= 0) return 'pdf';
  return null;
}
