/**
 * sig-loader.ts — finds and reads signature sources: files, directories, .cvd/.cld.
 *
 * Input: paths (files or directories; directories are read one level deep, sorted).
 * Output: SigSource texts tagged by kind (ndb / hash / allow), the files skipped
 *   (unsupported ClamAV types such as .ldb .cdb .ftm .info .ign2, or a container
 *   superseded by a newer one of the same name), and version parts.
 * Containers (.cvd, .cld, .cud): a 512-byte ASCII header
 *   `ClamAV-VDB:buildtime:version:sigs:flevel:md5:dsig:builder:stime` (space padded),
 *   then a tar archive, gzip-compressed for .cvd; .cld may be plain tar or gzip, so
 *   we sniff the gzip magic. For .cvd the header MD5 is checked against the body;
 *   the RSA digital signature is NOT verified (known gap). Members are dispatched by
 *   extension exactly like files in a directory. When a directory holds both
 *   X.cvd and X.cld, the one with the higher header version is used (as ClamAV does).
 * Limits: a container is decompressed in memory (startup only).
 * Errors: SignatureFileError — SIG_NOT_FOUND, SIG_READ, SIG_CONTAINER, SIG_CHECKSUM.
 */
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SIG_ERROR_CODES, SignatureFileError } from './sig-errors.js';

export type SourceKind = 'ndb' | 'hash' | 'allow';

export interface SigSource {
  /** For messages: path, or `container!member`. */
  label: string;
  kind: SourceKind;
  text: string;
}

export interface SkippedFile {
  file: string;
  reason: 'unsupported-type' | 'superseded';
}

export interface LoadedSources {
  sources: SigSource[];
  skippedFiles: SkippedFile[];
  /** e.g. ['daily-27000', 'local-1a2b3c4d5e6f'] */
  versionParts: string[];
}

const KIND_BY_EXT: Record<string, SourceKind | 'container'> = {
  '.ndb': 'ndb',
  '.ndu': 'ndb',
  '.hdb': 'hash',
  '.hdu': 'hash',
  '.hsb': 'hash',
  '.hsu': 'hash',
  '.fp': 'allow',
  '.sfp': 'allow',
  '.cvd': 'container',
  '.cld': 'container',
  '.cud': 'container',
};

export const CVD_HEADER_LEN = 512;

export interface CvdHeader {
  version: number;
  md5: string;
  raw: string;
}

/** Parse the 512-byte container header; throws SIG_CONTAINER. */
export function parseCvdHeader(data: Uint8Array, file: string): CvdHeader {
  if (data.length < CVD_HEADER_LEN) throw new SignatureFileError(SIG_ERROR_CODES.container, file, 0, 'shorter than the 512-byte header');
  const raw = Buffer.from(data.buffer, data.byteOffset, CVD_HEADER_LEN).toString('latin1').replace(/[\s\0]+$/, '');
  if (!raw.startsWith('ClamAV-VDB:')) throw new SignatureFileError(SIG_ERROR_CODES.container, file, 0, "header does not start with 'ClamAV-VDB:'");
  const f = raw.split(':');
  const version = Number(f[2]);
  if (!Number.isInteger(version) || version < 0) throw new SignatureFileError(SIG_ERROR_CODES.container, file, 0, `bad version field '${f[2] ?? ''}'`);
  return { version, md5: (f[5] ?? '').toLowerCase(), raw };
}

/** Regular files of a ustar/v7 tar archive. */
export function readTar(tar: Uint8Array, file: string): { name: string; data: Uint8Array }[] {
  const out: { name: string; data: Uint8Array }[] = [];
  const bad = (why: string): never => {
    throw new SignatureFileError(SIG_ERROR_CODES.container, file, 0, `bad tar: ${why}`);
  };
  const str = (off: number, len: number) => {
    let end = off;
    while (end < off + len && tar[end] !== 0) end++;
    return Buffer.from(tar.buffer, tar.byteOffset + off, end - off).toString('latin1');
  };
  let off = 0;
  let sawEnd = false;
  while (off + 512 <= tar.length) {
    if (tar[off] === 0) {
      sawEnd = true; // end-of-archive block
      break;
    }
    const name = str(off, 100);
    const sizeText = str(off + 124, 12).trim();
    if (!/^[0-7]+$/.test(sizeText)) bad(`member '${name}' has size field '${sizeText}'`);
    const size = parseInt(sizeText, 8);
    const type = tar[off + 156];
    const prefix = str(off + 257, 6).startsWith('ustar') ? str(off + 345, 155) : '';
    const dataOff = off + 512;
    if (dataOff + size > tar.length) bad(`member '${name}' runs past the end`);
    if (type === 0 || type === 0x30) out.push({ name: prefix ? prefix + '/' + name : name, data: tar.subarray(dataOff, dataOff + size) });
    off = dataOff + Math.ceil(size / 512) * 512;
  }
  // A cut-off archive must not load as a silently smaller database.
  if (!sawEnd && off !== tar.length) bad('truncated archive');
  return out;
}

const isGzip = (d: Uint8Array) => d.length >= 2 && d[0] === 0x1f && d[1] === 0x8b;

/** Unpack a .cvd/.cld/.cud buffer into its members. */
export function unpackContainer(data: Uint8Array, file: string): { header: CvdHeader; members: { name: string; data: Uint8Array }[] } {
  const header = parseCvdHeader(data, file);
  const body = data.subarray(CVD_HEADER_LEN);
  if (extname(file).toLowerCase() === '.cvd' && /^[0-9a-f]{32}$/.test(header.md5)) {
    const got = createHash('md5').update(body).digest('hex');
    if (got !== header.md5) throw new SignatureFileError(SIG_ERROR_CODES.checksum, file, 0, `body MD5 ${got} does not match header ${header.md5}`);
  }
  let tar: Uint8Array;
  try {
    tar = isGzip(body) ? gunzipSync(body) : body;
  } catch (e) {
    throw new SignatureFileError(SIG_ERROR_CODES.container, file, 0, `gzip: ${(e as Error).message}`);
  }
  return { header, members: readTar(tar, file) };
}

async function readOne(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new SignatureFileError(SIG_ERROR_CODES.read, path, 0, (e as Error).message);
  }
}

/** Collect all signature sources under `paths`. */
export async function loadSources(paths: readonly string[]): Promise<LoadedSources> {
  const out: LoadedSources = { sources: [], skippedFiles: [], versionParts: [] };
  const plain = createHash('sha256');
  let plainCount = 0;

  const addText = (label: string, name: string, data: Uint8Array, inContainer: boolean): boolean => {
    const kind = KIND_BY_EXT[extname(name).toLowerCase()];
    if (kind === undefined || kind === 'container') return false;
    const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    out.sources.push({ label, kind, text });
    if (!inContainer) {
      plain.update(label + '\0').update(data);
      plainCount++;
    }
    return true;
  };

  const addFile = async (path: string) => {
    const kind = KIND_BY_EXT[extname(path).toLowerCase()];
    if (kind === undefined) {
      out.skippedFiles.push({ file: path, reason: 'unsupported-type' });
      return;
    }
    const data = await readOne(path);
    if (kind !== 'container') {
      addText(path, path, data, false);
      return;
    }
    const { header, members } = unpackContainer(data, path);
    const stem = basename(path).replace(/\.[^.]+$/, '');
    out.versionParts.push(`${stem}-${header.version}`);
    for (const m of members) {
      const label = `${path}!${m.name}`;
      if (!addText(label, m.name, m.data, true)) out.skippedFiles.push({ file: label, reason: 'unsupported-type' });
    }
  };

  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SignatureFileError(code === 'ENOENT' ? SIG_ERROR_CODES.notFound : SIG_ERROR_CODES.read, p, 0, (e as Error).message);
    }
    if (!st.isDirectory()) {
      await addFile(p);
      continue;
    }
    let names: string[];
    try {
      names = (await readdir(p)).sort();
    } catch (e) {
      throw new SignatureFileError(SIG_ERROR_CODES.read, p, 0, (e as Error).message);
    }
    const superseded = await pickContainers(p, names);
    for (const name of names) {
      const full = join(p, name);
      const s = await stat(full).catch(() => null);
      if (!s || !s.isFile()) continue;
      if (superseded.has(name)) {
        out.skippedFiles.push({ file: full, reason: 'superseded' });
        continue;
      }
      await addFile(full);
    }
  }
  if (plainCount > 0) out.versionParts.push('local-' + plain.digest('hex').slice(0, 12));
  return out;
}

/** Names of containers in `dir` superseded by a same-stem container with a higher version. */
async function pickContainers(dir: string, names: string[]): Promise<Set<string>> {
  const byStem = new Map<string, { name: string; version: number }[]>();
  for (const name of names) {
    const ext = extname(name).toLowerCase();
    if (ext !== '.cvd' && ext !== '.cld' && ext !== '.cud') continue;
    const stem = name.slice(0, -ext.length);
    let version = -1;
    try {
      const fh = await open(join(dir, name), 'r');
      try {
        const buf = Buffer.alloc(CVD_HEADER_LEN);
        await fh.read(buf, 0, CVD_HEADER_LEN, 0);
        version = parseCvdHeader(buf, join(dir, name)).version;
      } finally {
        await fh.close();
      }
    } catch {
      version = -1; // a broken container is reported when it is loaded
    }
    const list = byStem.get(stem) ?? [];
    list.push({ name, version });
    byStem.set(stem, list);
  }
  const drop = new Set<string>();
  for (const list of byStem.values()) {
    if (list.length < 2) continue;
    list.sort((a, b) => b.version - a.version);
    for (const x of list.slice(1)) drop.add(x.name);
  }
  return drop;
}
