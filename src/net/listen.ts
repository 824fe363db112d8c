/**
 * listen.ts — bind a net.Server to a SocketAddress: the one listen helper of every front.
 *
 * TCP: listen on host:port (port 0 = any free port). Unix sockets:
 *   - an existing path is removed only if it is a socket nobody answers on (a stale one
 *     from a dead process); a live socket is LISTEN_IN_USE (another instance runs), a
 *     non-socket is LISTEN_NOT_SOCKET — never unlinked;
 *   - the socket is created under a narrowed umask and then chmod'ed to `mode`, so it
 *     never exists with laxer bits, then chown'ed to `owner`/`group` if given (names from
 *     /etc/passwd and /etc/group, or numeric ids);
 *   - removeSocket() unlinks it on close, only if it is still ours (same inode).
 * Errors: MidstreamError LISTEN_* / SOCKET_OWNER with the path or address and the errno.
 * Gaps: no socket activation (systemd LISTEN_FDS); no abstract-namespace sockets.
 */
import { chmodSync, chownSync, lstatSync, readFileSync, unlinkSync, type Stats } from 'node:fs';
import { connect, type Server } from 'node:net';
import { ERROR_CODES, MidstreamError, osErrno } from '../core/errors.js';
import { formatAddress, type SocketAddress } from '../core/address.js';

export interface UnixSocketOptions {
  /** Permission bits (default 0o660: the MTA's group may connect, others not). */
  mode?: number;
  /** User name or uid to own the socket ("" / undefined = the process's user). */
  owner?: string;
  /** Group name or gid ("" / undefined = the process's group), e.g. "postfix". */
  group?: string;
}

export interface Bound {
  /** "127.0.0.1:10025" (real port) or "unix:/path". */
  address: SocketAddress;
  /** Unlink a unix socket if it is still the one we created. No-op for TCP. */
  removeSocket(): void;
}

/**
 * uid/gid for a name or a number, from /etc/passwd or /etc/group. Node has no getpwnam(),
 * and src/ spawns no processes (security policy), so NSS-only accounts (LDAP) need their
 * numeric id here.
 */
function resolveId(db: 'passwd' | 'group', name: string): number {
  if (/^[0-9]+$/.test(name)) return Number(name);
  const what = db === 'passwd' ? 'user' : 'group';
  let text = '';
  try {
    text = readFileSync(`/etc/${db}`, 'utf8');
  } catch (e) {
    throw new MidstreamError(ERROR_CODES.socketOwner, `cannot read /etc/${db} to find ${what} ${name}`, { cause: e });
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3 && /^[0-9]+$/.test(f[2]!)) return Number(f[2]);
  }
  throw new MidstreamError(ERROR_CODES.socketOwner, `no such ${what} in /etc/${db}: ${name} (use its numeric id for NSS-only accounts)`);
}

/** Is something accepting connections on this unix socket? */
function alive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    const done = (v: boolean) => {
      c.destroy();
      resolve(v);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(2000, () => done(true)); // a listener too busy to accept is still alive
  });
}

/** Remove a stale socket at `path`; refuse a live one or a non-socket. */
async function clearStale(path: string): Promise<void> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  const endpoint = `unix:${path}`;
  if (!st.isSocket()) throw new MidstreamError(ERROR_CODES.listenNotSocket, `${path} exists and is not a socket; not removing it`, { endpoint });
  if (await alive(path)) {
    throw new MidstreamError(ERROR_CODES.listenInUse, `${path} is in use by a running process (another midstream?)`, { endpoint });
  }
  unlinkSync(path);
}

function listenTcp(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function listenUnixPath(server: Server, path: string, mode: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    // The bind inside listen() is synchronous: the narrowed umask covers exactly it.
    const old = process.umask(~mode & 0o777);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
}

/** Bind `server` to `address`. Rejects with a MidstreamError naming the address and errno. */
export async function listenOn(server: Server, address: SocketAddress, unix: UnixSocketOptions = {}): Promise<Bound> {
  const text = formatAddress(address);
  if (address.kind === 'tcp') {
    try {
      await listenTcp(server, address.host, address.port);
    } catch (e) {
      throw new MidstreamError(ERROR_CODES.listenFailed, `cannot listen on ${text}: ${(e as Error).message}`, { cause: e, endpoint: text });
    }
    const a = server.address();
    const port = a && typeof a === 'object' ? a.port : address.port;
    return { address: { kind: 'tcp', host: address.host, port }, removeSocket() {} };
  }
  const { path } = address;
  const mode = unix.mode ?? 0o660;
  // Resolve owner and group before creating anything: a typo must not leave a socket behind.
  const uid = unix.owner ? resolveId('passwd', unix.owner) : -1;
  const gid = unix.group ? resolveId('group', unix.group) : -1;
  await clearStale(path);
  try {
    await listenUnixPath(server, path, mode);
  } catch (e) {
    throw new MidstreamError(ERROR_CODES.listenFailed, `cannot listen on ${text}: ${(e as Error).message}`, { cause: e, endpoint: text });
  }
  let ino = 0;
  try {
    chmodSync(path, mode);
    if (uid !== -1 || gid !== -1) chownSync(path, uid, gid);
    ino = lstatSync(path).ino;
  } catch (e) {
    server.close();
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
    throw new MidstreamError(ERROR_CODES.socketOwner, `cannot set owner/mode of ${path}: ${(e as Error).message}`, { cause: e, endpoint: text, ...(osErrno(e) ? { errno: osErrno(e)! } : {}) });
  }
  return {
    address,
    removeSocket() {
      try {
        // Only our own socket: a successor may already have bound the same path.
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // gone already
      }
    },
  };
}
