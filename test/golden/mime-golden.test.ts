/**
 * mime-golden.test.ts — every test/fixtures/mime/*.eml through the MIME splitter must give
 * exactly its reviewed .trace (see test/helpers/mime-trace.ts for the format). A missing
 * trace is a failure, never written here: traces are generated once, read, and committed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fixture } from '../helpers/paths.js';
import { traceMime } from '../helpers/mime-trace.js';

const dir = fixture('mime');
const emls = readdirSync(dir).filter((f) => f.endsWith('.eml')).sort();

test('there are golden MIME fixtures', () => {
  assert.ok(emls.length >= 15, `only ${emls.length} fixtures`);
});

for (const eml of emls) {
  test(`golden trace: ${eml}`, () => {
    const tracePath = fixture('mime', eml.replace(/\.eml$/, '.trace'));
    assert.ok(existsSync(tracePath), `missing ${tracePath}`);
    const expected = readFileSync(tracePath, 'utf8');
    const actual = traceMime(readFileSync(fixture('mime', eml)));
    assert.equal(actual, expected);
  });
}
