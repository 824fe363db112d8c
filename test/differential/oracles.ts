/**
 * oracles.ts — run every differential oracle over a batch of cases and say, per case,
 * which oracle extracted EICAR bytes or a banned name.
 *
 * Input: cases ({id, raw}). Output: Map id → OracleVerdicts (per oracle: EICAR hit
 * places, names seen, banned names, errors).
 * Oracles: mailparser (in-process; its attachments, text and html go to oracle.py for the
 * archive walk, embedded message/* attachments parsed again up to depth 4), and in ONE
 * python3 process for the whole batch: the email package under policy default and
 * compat32, ripmime and munpack (Debian packages; left out when not installed, which
 * the harness reports as a failure, so they cannot silently vanish).
 * Banned name: the oracle's own name, last path component (/ or \), with the trailing
 * dots and spaces Windows drops removed, whose last extension is in midstream's default
 * banned list; a name with a NUL is also read cut at the NUL, as C clients do.
 * Limits: mailparser gets 20 s per message; python3 runs under a 10-minute deadline.
 * Errors: a crashing oracle fails the batch (never a silent empty answer).
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { simpleParser, type Attachment } from 'mailparser';
import { ROOT } from '../helpers/paths.js';
import { PYTHON } from './python.js';
import { DEFAULT_BANNED_EXTENSIONS } from '../../src/core/banned.js';

export interface OracleReport {
  eicar: string[];
  names: string[];
  errors: string[];
}

export interface OracleVerdicts {
  /** oracle name → its report (py-default, py-compat32, mailparser, ripmime, munpack). */
  oracles: Record<string, OracleReport>;
  /** Oracles that extracted EICAR bytes. */
  eicarBy: string[];
  /** Oracle → banned names it saw. */
  bannedBy: Record<string, string[]>;
  /** True when any oracle extracted EICAR or a banned name. */
  flagged: boolean;
}

const BANNED = new Set(DEFAULT_BANNED_EXTENSIONS);
export const ORACLE_SCRIPT = join(ROOT, 'test', 'differential', 'oracle.py');

export function externalTools(): string[] {
  return ['ripmime', 'munpack'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
}

/** Is this name (as an oracle read it) banned by midstream's default list? */
export function bannedByName(name: string): boolean {
  const readings = [name];
  const nul = name.indexOf('\0');
  if (nul >= 0) readings.push(name.slice(0, nul));
  return readings.some((n) => {
    let s = n.replace(/[. \u00a0]+$/u, '');
    s = s.slice(Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\')) + 1).toLowerCase();
    const dot = s.lastIndexOf('.');
    return dot >= 0 && BANNED.has(s.slice(dot + 1));
  });
}

interface Payload {
  oracle: string;
  where: string;
  name: string | null;
  data: string;
}

/** mailparser's reading of one message: attachments, text and html bodies, embedded messages. */
async function mailparserPayloads(raw: Buffer, prefix = '', depth = 0): Promise<Payload[]> {
  const out: Payload[] = [];
  const parsed = await Promise.race([
    simpleParser(raw, { skipHtmlToText: true, skipImageLinks: true, skipTextToHtml: true, keepDeliveryStatus: true, ignoreEmbedded: true }),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error('mailparser timeout')), 20_000).unref()),
  ]);
  const body = (where: string, s: string | false | undefined) => {
    if (typeof s === 'string' && s) out.push({ oracle: 'mailparser', where: prefix + where, name: null, data: Buffer.from(s, 'utf8').toString('base64') });
  };
  body('(text)', parsed.text);
  body('(html)', parsed.html);
  for (const [i, a] of (parsed.attachments as Attachment[]).entries()) {
    const where = `${prefix}${i + 1}${a.filename ? '/' + a.filename : ''}`;
    out.push({ oracle: 'mailparser', where, name: a.filename ?? null, data: a.content.toString('base64') });
    if (depth < 4 && /^message\//i.test(a.contentType)) {
      try {
        out.push(...(await mailparserPayloads(a.content, where + '!', depth + 1)));
      } catch {
        /* an unparseable embedded message: the outer reading stands */
      }
    }
  }
  return out;
}

/** Run all oracles over the cases; one python3 process for the whole batch. */
export async function runOracles(cases: readonly { id: string; raw: Buffer }[], tools = externalTools()): Promise<Map<string, OracleVerdicts>> {
  const lines: string[] = [];
  const mpErrors = new Map<string, string>();
  for (const c of cases) {
    let payloads: Payload[] = [];
    try {
      payloads = await mailparserPayloads(c.raw);
    } catch (e) {
      mpErrors.set(c.id, String((e as Error)?.message ?? e));
    }
    lines.push(JSON.stringify({ id: c.id, raw: c.raw.toString('base64'), payloads, tools }));
  }
  const stdout = await runPython(lines.join('\n') + '\n');
  const result = new Map<string, OracleVerdicts>();
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { id: string; oracles: Record<string, OracleReport> };
    const oracles = r.oracles;
    if (!oracles.mailparser) oracles.mailparser = { eicar: [], names: [], errors: [] };
    const mpe = mpErrors.get(r.id);
    if (mpe) oracles.mailparser.errors.push(mpe);
    const eicarBy = Object.keys(oracles).filter((k) => oracles[k]!.eicar.length > 0).sort();
    const bannedBy: Record<string, string[]> = {};
    for (const [k, rep] of Object.entries(oracles)) {
      const b = rep.names.filter(bannedByName);
      if (b.length) bannedBy[k] = b;
    }
    result.set(r.id, { oracles, eicarBy, bannedBy, flagged: eicarBy.length > 0 || Object.keys(bannedBy).length > 0 });
  }
  for (const c of cases) if (!result.has(c.id)) throw new Error(`oracle.py gave no answer for ${c.id}`);
  return result;
}

function runPython(input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [ORACLE_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`oracle.py exited ${code}: ${err}`));
      else resolve(Buffer.concat(out).toString('utf8'));
    });
    child.stdin.end(input);
  });
}
