/**
 * listen-unix.ts — bind a server to a unix socket path with a given mode and no window
 * in which the socket has a laxer one: the umask is narrowed around the synchronous
 * bind inside server.listen(), then the mode is set exactly with chmod (the umask can
 * only remove bits). Shared by the proxy and the milter listeners.
 */
import { chmodSync } from 'node:fs';
import type { Server } from 'node:net';

export function listenUnix(server: Server, path: string, mode: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    const old = process.umask(~mode & 0o777);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        try {
          chmodSync(path, mode);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      });
    } finally {
      process.umask(old);
    }
  });
}
