/**
 * decoder.ts — the streaming transfer-decoder interface shared by decode/*.
 *
 * write() may call `out` zero or more times; `out` must not keep the array it is given
 * beyond the call (copy if needed). Output is independent of how the input is chunked.
 * Decoders never throw on malformed input: they decode what they can.
 */
export interface Decoder {
  write(chunk: Uint8Array, out: (b: Uint8Array) => void): void;
  end(out: (b: Uint8Array) => void): void;
}
