/**
 * banned.ts — banned attachment names and types.
 *
 * Names: the extension that Windows would act on decides, after normalising what
 * mailers and archivers let through: any case, trailing dots and spaces
 * ("a.exe. ."), NUL and control characters, and bidi overrides (U+202E makes
 * "invoice\u202Egpj.exe" display as "invoiceexe.jpg"). Double extensions such as
 * "invoice.pdf.exe" are caught by their last extension; a bidi override in a name
 * is banned on its own. Types come from magic bytes (sniffType), whatever the name.
 * Beside extensions: name globs (`*.pdf.exe`, matched against the normalised name) and
 * declared MIME types of parts (`application/x-msdownload`, globs too; what the sender
 * claims, checked beside the magic-byte types, which do not trust the claim).
 */
import type { GlobList } from './name-glob.js';

export const DEFAULT_BANNED_EXTENSIONS: readonly string[] = Object.freeze([
  'exe', 'scr', 'pif', 'com', 'bat', 'cmd', 'js', 'jse', 'vbs', 'vbe', 'wsf', 'wsh', 'jar',
  'ps1', 'hta', 'lnk', 'cpl', 'msi', 'msp', 'reg', 'vb', 'iso', 'img', 'chm', 'scf', 'inf',
]);

export const DEFAULT_BANNED_TYPES: readonly string[] = Object.freeze(['pe', 'elf', 'macho', 'msi']);

/** Declared types that name Windows programs (amavisd-new's defaults ban these too). */
export const DEFAULT_BANNED_MIME_TYPES: readonly string[] = Object.freeze([
  'application/x-msdownload', 'application/x-msdos-program', 'application/x-ms-dos-executable', 'application/hta',
]);

/** Strip what Windows ignores at the end of a name and what can hide the real extension. */
export function normalizeName(name: string): string {
  let n = name.replace(/[\u0000-\u001f\u007f]/g, '');
  n = n.replace(/[. \u00a0]+$/u, '');
  // Only the last path component counts (archive members carry directories).
  const slash = Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\'));
  if (slash >= 0) n = n.slice(slash + 1);
  return n.toLowerCase();
}

/** Returns a human reason when the name is banned (by extension, or by one of `globs`), else null. */
export function bannedNameReason(name: string, banned: ReadonlySet<string>, globs?: GlobList): string | null {
  if (/[\u202a-\u202e\u2066-\u2069]/u.test(name)) return 'banned file name (bidi override)';
  const n = normalizeName(name);
  const dot = n.lastIndexOf('.');
  if (dot >= 0 && banned.has(n.slice(dot + 1))) return `banned file name .${n.slice(dot + 1)}`;
  const g = globs && globs.size > 0 ? globs.first(n) : null;
  if (g !== null) return `banned file name (${g})`;
  return null;
}

/** A banned declared MIME type (Content-Type of a part, lower case), else null. */
export function bannedMimeReason(contentType: string, globs: GlobList | undefined): string | null {
  if (!contentType || !globs || globs.size === 0) return null;
  return globs.first(contentType) !== null ? `banned declared type ${contentType.slice(0, 80)}` : null;
}

export function bannedTypeReason(type: string | null, banned: ReadonlySet<string>): string | null {
  if (type && banned.has(type)) return `banned file type ${type}`;
  return null;
}
