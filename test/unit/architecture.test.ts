/**
 * The module boundary the design rests on, checked: the core knows nothing of SMTP,
 * milter, config or CLI, and the fronts reach the core only through src/core/index.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { ROOT } from '../helpers/paths.js';

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const specs: string[] = [];
  for (const m of src.matchAll(/(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) specs.push((m[1] ?? m[2])!);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(ROOT, resolve(dirname(file), s)));
}

test('src/core imports nothing from the fronts, config, CLI, logging or metrics', () => {
  const bad: string[] = [];
  for (const f of tsFiles(join(ROOT, 'src', 'core'))) {
    for (const i of imports(f)) if (!i.startsWith('src/core/')) bad.push(`${relative(ROOT, f)} -> ${i}`);
  }
  assert.deepEqual(bad, []);
});

test('src/smtp, milter and src/pop3 reach the core only through src/core/index.ts', () => {
  const bad: string[] = [];
  const files = [...tsFiles(join(ROOT, 'src', 'smtp')), ...tsFiles(join(ROOT, 'milter')), ...tsFiles(join(ROOT, 'src', 'pop3'))];
  assert.ok(files.length >= 15, 'front files found');
  assert.ok(files.some((f) => f.endsWith('retr-relay.ts')), 'the POP3 front is among them');
  let viaIndex = 0;
  for (const f of files) {
    for (const i of imports(f)) {
      if (i === 'src/core/index.js') viaIndex++;
      if (i.startsWith('src/core/') && i !== 'src/core/index.js') bad.push(`${relative(ROOT, f)} -> ${i}`);
      if (i.startsWith('src/cli/') || i.startsWith('src/config/')) bad.push(`${relative(ROOT, f)} -> ${i}`);
    }
  }
  assert.ok(viaIndex >= 2, 'the import scanner sees the fronts importing the core');
  assert.deepEqual(bad, []);
});

test('the fronts do not import each other', () => {
  const bad: string[] = [];
  const fronts = { 'src/smtp/': join(ROOT, 'src', 'smtp'), 'milter/': join(ROOT, 'milter'), 'src/pop3/': join(ROOT, 'src', 'pop3') };
  for (const [own, dir] of Object.entries(fronts)) {
    for (const f of tsFiles(dir)) {
      for (const i of imports(f)) if (Object.keys(fronts).some((p) => p !== own && i.startsWith(p))) bad.push(`${relative(ROOT, f)} -> ${i}`);
    }
  }
  assert.deepEqual(bad, []);
});
