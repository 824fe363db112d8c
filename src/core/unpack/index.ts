/**
 * index.ts — the unpack module's entry point: pick the push unpacker for a sniffed format.
 *
 * createUnpacker(format, handler, budget) → Unpacker (a ByteSink). See unpack-types.ts
 * for the contract and unpack-base.ts for the guarantees every unpacker gives.
 */
import { Bzip2Unpacker } from './bzip2-unpacker.js';
import { GzipUnpacker } from './gzip-unpacker.js';
import { TarUnpacker } from './tar-unpacker.js';
import type { ArchiveFormat, UnpackBudget, UnpackHandler, Unpacker } from './unpack-types.js';
import { ZipUnpacker } from './zip-unpacker.js';

export { sniffArchive, sniffType, SNIFF_HEAD_BYTES } from './sniff.js';
export { EocdWatch, opensAsZip } from './zip-eocd-watch.js';
export type { ArchiveFormat, EntryMeta, UnpackBudget, UnpackHandler, Unpacker } from './unpack-types.js';
/** Unpacker.decided lags the input by less than this: one inflate slice (zip's descriptor look-behind is shorter). */
export { SLICE_BYTES as MAX_UNDECIDED } from './inflate-stream.js';

export function createUnpacker(format: ArchiveFormat, handler: UnpackHandler, budget: UnpackBudget): Unpacker {
  switch (format) {
    case 'gzip':
      return new GzipUnpacker(handler, budget);
    case 'zip':
      return new ZipUnpacker(handler, budget);
    case 'tar':
      return new TarUnpacker(handler, budget);
    case 'bzip2':
      return new Bzip2Unpacker(handler, budget);
  }
}

/** A zip reading of a file that was not sniffed as zip: it searches for archives inside (zip-unpacker.ts). */
export function createEmbeddedZipUnpacker(handler: UnpackHandler, budget: UnpackBudget): Unpacker {
  return new ZipUnpacker(handler, budget, { embedded: true });
}
