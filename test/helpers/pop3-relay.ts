/**
 * pop3-relay.ts — one RETR/TOP response through RetrRelay and an engine, in process (no
 * sockets), framed by the real ResponseReader and pushed in the given chunk sizes (cycled):
 * what the relay wrote to the client and its outcome. Defaults: built-in actions, hold_bytes
 * 4 MiB with "replace", no X-Virus-Status, RETR (not TOP); `o` overrides any of them.
 */
import { DEFAULT_ACTIONS, type Engine } from '../../src/core/index.js';
import { ResponseReader } from '../../src/pop3/response-reader.js';
import { RetrRelay, type Outcome, type RelayOptions } from '../../src/pop3/retr-relay.js';

export async function relayResponse(engine: Engine, wire: Buffer, sizes: number[], o: Partial<RelayOptions> = {}): Promise<{ out: Buffer; outcome: Outcome }> {
  const reader = new ResponseReader();
  reader.expect('multi');
  const out: Buffer[] = [];
  const r = new RetrRelay({
    session: engine.begin({}),
    actions: DEFAULT_ACTIONS,
    write: (b) => (out.push(Buffer.from(b)), true),
    drain: async () => {},
    holdBytes: 4 * 1024 * 1024,
    holdExceeded: 'replace',
    xVirusStatus: false,
    top: false,
    ...o,
  });
  let outcome: Outcome | null = null;
  let i = 0;
  let k = 0;
  while (i < wire.length) {
    const n = sizes[k++ % sizes.length]!;
    reader.push(wire.subarray(i, i + n));
    i += n;
    for (let ev = reader.next(); ev; ev = reader.next()) {
      if (ev.type === 'data') await r.data(ev.pieces);
      else if (ev.type === 'end') outcome = await r.end(ev.line);
    }
  }
  return { out: Buffer.concat(out), outcome: outcome! };
}
