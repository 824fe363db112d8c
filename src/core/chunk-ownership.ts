/**
 * chunk-ownership.ts — who may keep a reference to a chunk of bytes, and for how long;
 * and the scratch buffers that rule makes possible.
 *
 * THE RULE. Every chunk handed down the core is *borrowed*: it is valid only until the
 * call that received it returns. That covers Session.push(), ByteSink.write(),
 * ScanStream.write(), a Decoder's `out` callback, an unpacker's member sinks and
 * InflateStream's onData. The producer may overwrite the bytes as soon as the call
 * returns — the base64 decoder and the inflater do, they write into scratch buffers
 * from this pool. A consumer that needs bytes later copies exactly what it needs, into
 * storage of its own:
 *   - the matcher its carry (longest pattern − 1 bytes) and the EOF tail window;
 *   - a FileNode its 1 KiB sniffing head; the MIME splitter its delimiter carry and
 *     header lines; the uuencode extractor its line; unpackers their header, staging
 *     and look-behind buffers;
 *   - a clamd stream the bytes not yet sent (clamd-client copies on write());
 *   - hashes consume the bytes during update().
 * Exception, by declaration only: a Scanner with `keepsChunks = true` receives private
 * copies that never change, so its streams may keep them as long as they like.
 * Session.push(): the caller may reuse its buffer once push() has returned (before its
 * promise settles) — nothing in the core keeps it.
 *
 * SCRATCH. takeScratch() lends a SCRATCH_BYTES buffer; giveScratch() returns it after the
 * consumer's call has returned. Lending is strictly nested (a decoder's `out` may drive a
 * nested message's decoder, which takes a second buffer), so the pool holds as many
 * buffers as the deepest nesting in progress, at most MAX_FREE kept: memory per process,
 * not per connection, and nothing is held between pushes.
 *
 * POISON (tests only). With `ownership.poison = true`, giveScratch() overwrites the whole
 * buffer, so a consumer that kept a reference against the rule reads garbage and a test
 * that compares verdicts and scanned bytes with and without poisoning catches it.
 */

export const SCRATCH_BYTES = 65536;
const MAX_FREE = 8;
const free: Uint8Array[] = [];

/** Test switch: overwrite scratch buffers when they are given back. */
export const ownership = { poison: false };

/**
 * Borrow a SCRATCH_BYTES buffer (contents undefined). A plain Uint8Array, never a Buffer:
 * consumers may rely on `slice()` copying, which Buffer#slice does not.
 */
export function takeScratch(): Uint8Array {
  return free.pop() ?? new Uint8Array(SCRATCH_BYTES);
}

/** Give a buffer back once every consumer of its bytes has returned. */
export function giveScratch(b: Uint8Array): void {
  if (ownership.poison) b.fill(0xa5);
  if (free.length < MAX_FREE) free.push(b);
}
