/**
 * banned.ts — banned attachment names and types.
 *
 * Names: the extension that Windows would act on decides, after normalising what
 * mailers and archivers let through: any case, trailing dots and spaces
 * ("a.exe. ."), NUL and control characters, and bidi overrides (U+202E makes
 * "invoice\u202Egpj.exe" display as "invoiceexe.jpg"). A name is read both whole and cut
 * at its first NUL (C clients stop there: "a.exe\0.txt" is a.exe). Double extensions
 * such as "invoice.pdf.exe" are caught by their last extension; a bidi override in a
 * name is banned on its own. Types come from magic bytes (sniffType), whatever the name.
 * Callers pass every candidate name a client could use (mime/names.ts).
 * Beside extensions: name globs (`*.pdf.exe`, matched against the normalised name) and
 * declared MIME types of parts (`application/x-msdownload`, globs too; what the sender
 * claims, checked beside the magic-byte types, which do not trust the claim).
 */
import type { GlobList } from './name-glob.js';

/** The original list: executables, scripts, installers, shortcuts, disk images. */
const CLASSIC = [
  'exe', 'scr', 'pif', 'com', 'bat', 'cmd', 'js', 'jse', 'vbs', 'vbe', 'wsf', 'wsh', 'jar',
  'ps1', 'hta', 'lnk', 'cpl', 'msi', 'msp', 'reg', 'vb', 'iso', 'img', 'chm', 'scf', 'inf',
];

/**
 * Added after reviewing what malware campaigns attach (one line each: why).
 * HTML is on it: HTML smuggling (a page that assembles and "downloads" the payload in
 * the browser) is how Qakbot, IcedID and many phishing kits got past gateways since
 * 2022; let a rule allow .html for senders who need it.
 */
const REVIEWED: readonly (readonly [string, string])[] = [
  ['one', 'OneNote notebook with embedded scripts/executables (Qakbot, AsyncRAT, early 2023)'],
  ['onepkg', 'OneNote package: the same OneNote lure, packed'],
  ['xll', 'Excel add-in, a native DLL that Excel loads on open (2021-2022 loader campaigns)'],
  ['wll', 'Word add-in, a native DLL, same technique as .xll'],
  ['url', 'Internet shortcut that opens a remote payload or SMB share (CVE-2024-21412, DarkGate)'],
  ['website', 'pinned-site shortcut, the same shortcut abuse as .url'],
  ['msc', 'MMC console that runs commands on open (GrimResource, 2024)'],
  ['appx', 'Windows app package installed by a click (2023 app-installer campaigns)'],
  ['msix', 'Windows app package, same as .appx'],
  ['appxbundle', 'bundle of .appx packages'],
  ['msixbundle', 'bundle of .msix packages'],
  ['appinstaller', 'App Installer file that fetches an .msix from the web (ms-appinstaller abuse, 2023)'],
  ['vhd', 'virtual disk that Windows mounts on a double-click; hides its files from Mark-of-the-Web'],
  ['vhdx', 'virtual disk, same as .vhd'],
  ['html', 'HTML smuggling: the attachment builds and drops the payload in the browser'],
  ['htm', 'HTML smuggling, as .html'],
  ['shtml', 'HTML smuggling, as .html'],
  ['xhtml', 'HTML smuggling, as .html'],
  ['mht', 'MHTML web archive: HTML smuggling and old IE script bugs'],
  ['mhtml', 'MHTML web archive, as .mht'],
  ['svg', 'SVG image with embedded script: SVG smuggling (2024-2025 phishing and malware drops)'],
  ['library-ms', 'Windows library file pointing Explorer at a remote WebDAV share (2023-2024)'],
  ['searchconnector-ms', 'search connector pointing Explorer at a remote share (2023 campaigns)'],
  ['settingcontent-ms', 'settings shortcut that runs a command (2018)'],
  ['diagcab', 'troubleshooter package that runs scripts (DogWalk, 2022)'],
  ['rdp', 'Remote Desktop file connecting to an attacker server and sharing drives (APT29, 2024)'],
  ['iqy', 'Excel web query that pulls and runs content (Necurs, 2018)'],
  ['slk', 'SYLK spreadsheet with macro/DDE formulas that bypass Office macro blocking'],
  ['jnlp', 'Java Web Start file that downloads and runs a jar'],
  ['wsc', 'Windows script component, run by scrobj/regsvr32'],
  ['sct', 'scriptlet file, run by regsvr32 (Squiblydoo)'],
  ['application', 'ClickOnce deployment manifest that installs and runs an app'],
  ['appref-ms', 'ClickOnce application reference, runs the app'],
  ['gadget', 'Windows sidebar gadget, runs script'],
  ['dll', 'native library; sideloaded next to a signed .exe in archives and disk images'],
  ['cab', 'cabinet archive expanded by Windows (Follina-era CAB droppers)'],
];

export const DEFAULT_BANNED_EXTENSIONS: readonly string[] = Object.freeze([...CLASSIC, ...REVIEWED.map(([e]) => e)]);

/** Why each reviewed default was added (for the README and --help style docs). */
export const BANNED_EXTENSION_REASONS: Readonly<Record<string, string>> = Object.freeze(Object.fromEntries(REVIEWED));

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

/** The extension a client acts on ('' when none), as bannedNameReason sees it. */
export function extensionOf(name: string): string {
  const n = normalizeName(name);
  const dot = n.lastIndexOf('.');
  return dot < 0 ? '' : n.slice(dot + 1);
}

/** Returns a human reason when the name is banned (by extension, or by one of `globs`), else null. */
export function bannedNameReason(name: string, banned: ReadonlySet<string>, globs?: GlobList): string | null {
  if (/[\u202a-\u202e\u2066-\u2069]/u.test(name)) return 'banned file name (bidi override)';
  const nul = name.indexOf('\0');
  if (nul > 0) {
    const cut = bannedNameReason(name.slice(0, nul), banned, globs);
    if (cut) return cut;
  }
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
