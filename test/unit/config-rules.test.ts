/**
 * config-rules.test.ts — CIDR matching (IPv4, IPv6, v4-mapped) and ruleFor: first
 * matching rule per recipient, strictest policy across recipients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, parseCidr, parseIp } from '../../src/config/cidr.js';
import { ConfigError, parseConfigText, ruleFor } from '../../src/config/load-config.js';
import { recipientDomain } from '../../src/config/rules.js';

test('parseIp: v4, v6 forms, rejects junk', () => {
  assert.deepEqual([...parseIp('10.1.2.3')!], [10, 1, 2, 3]);
  assert.deepEqual([...parseIp('::1')!], [...new Array(15).fill(0), 1]);
  assert.deepEqual([...parseIp('2001:db8::ff00:42:8329')!].slice(0, 4), [0x20, 0x01, 0x0d, 0xb8]);
  assert.deepEqual([...parseIp('::ffff:192.0.2.1')!].slice(10), [0xff, 0xff, 192, 0, 2, 1]);
  assert.equal(parseIp('fe80::1%eth0')!.length, 16);
  assert.equal(parseIp('[::1]')!.length, 16);
  for (const bad of ['256.1.1.1', '1.2.3', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '', 'example.org', '1.2.3.4.5']) {
    assert.equal(parseIp(bad), null, bad);
  }
});

test('CIDR v4: inside, outside, edges, /0 and host routes', () => {
  const c = parseCidr('192.168.16.0/20');
  assert.ok(cidrContains(c, '192.168.16.0'));
  assert.ok(cidrContains(c, '192.168.31.255'));
  assert.ok(!cidrContains(c, '192.168.32.0'));
  assert.ok(!cidrContains(c, '192.168.15.255'));
  assert.ok(cidrContains(parseCidr('0.0.0.0/0'), '8.8.8.8'));
  assert.ok(cidrContains(parseCidr('203.0.113.7'), '203.0.113.7'));
  assert.ok(!cidrContains(parseCidr('203.0.113.7'), '203.0.113.8'));
  assert.ok(cidrContains(parseCidr('10.1.2.3/8'), '10.200.0.1'), 'host bits are masked off');
  assert.ok(!cidrContains(c, 'not-an-ip'));
});

test('CIDR v6 and v4-mapped addresses', () => {
  const c = parseCidr('2001:db8::/32');
  assert.ok(cidrContains(c, '2001:db8:ffff::1'));
  assert.ok(!cidrContains(c, '2001:db9::1'));
  assert.ok(cidrContains(parseCidr('::1/128'), '::1'));
  assert.ok(!cidrContains(parseCidr('::1/128'), '::2'));
  assert.ok(cidrContains(parseCidr('2001:db8:0:0:8000::/65'), '2001:db8::8000:0:0:1'));
  assert.ok(!cidrContains(parseCidr('2001:db8:0:0:8000::/65'), '2001:db8::7fff:0:0:1'));
  // Node reports IPv4 peers on dual-stack sockets as ::ffff:a.b.c.d.
  assert.ok(cidrContains(parseCidr('127.0.0.0/8'), '::ffff:127.0.0.1'));
  assert.ok(!cidrContains(parseCidr('127.0.0.0/8'), '::ffff:10.0.0.1'));
  assert.ok(!cidrContains(parseCidr('10.0.0.0/8'), '::a00:1'), 'v4-compatible is not v4-mapped');
  assert.ok(!cidrContains(c, '10.0.0.1'), 'v4 address never inside a v6 prefix');
  assert.throws(() => parseCidr('::/129'), RangeError);
  assert.throws(() => parseCidr('10.0.0.0/33'), RangeError);
  assert.throws(() => parseCidr('10.0.0.0/x'), RangeError);
});

test('recipientDomain', () => {
  assert.equal(recipientDomain('<User@Example.ORG.>'), 'example.org');
  assert.equal(recipientDomain('a@b@sub.example.org'), 'sub.example.org');
  assert.equal(recipientDomain('postmaster'), undefined);
});

const CONFIG = parseConfigText(
  `[policy]
banned_extensions = ["exe", "js"]
[[rules]]
name = "inside"
match = { client = ["10.0.0.0/8", "2001:db8::/32"], authenticated = true }
skip_banned = true
[[rules]]
name = "lab"
match = { recipient_domain = [".lab.example.org"] }
skip_banned = true
actions = { banned = "accept", error = "reject" }
encrypted = "accept"
[[rules]]
name = "dev"
match = { recipient_domain = ["dev.example.org"] }
actions = { banned = "tempfail", infected = "tempfail" }
banned_extensions = ["scr"]
banned_types = ["elf"]
`,
  '/etc/midstream/midstream.toml',
);

test('no rule matches: the global policy', () => {
  const p = ruleFor(CONFIG, { clientAddress: '192.0.2.1', recipients: ['a@example.com'] });
  assert.deepEqual(p.rules, []);
  assert.equal(p.skipBanned, false);
  assert.deepEqual(p.bannedExtensions, ['exe', 'js']);
  assert.deepEqual(p.actions, { infected: 'reject', banned: 'reject', limit: 'reject', anomaly: 'reject', unparseable: 'reject', error: 'tempfail' });
  assert.equal(p.encrypted, 'reject');
  assert.ok(Object.isFrozen(p));
});

test('client CIDR (v4, v4-mapped, v6) and authenticated must all hold', () => {
  for (const clientAddress of ['10.9.8.7', '::ffff:10.9.8.7', '2001:db8::5']) {
    const p = ruleFor(CONFIG, { clientAddress, authenticated: 'alice', recipients: ['x@example.com'] });
    assert.deepEqual(p.rules, ['inside'], clientAddress);
    assert.equal(p.skipBanned, true);
  }
  assert.deepEqual(ruleFor(CONFIG, { clientAddress: '10.9.8.7', authenticated: '', recipients: ['x@example.com'] }).rules, []);
  assert.deepEqual(ruleFor(CONFIG, { clientAddress: '11.0.0.1', authenticated: true, recipients: ['x@example.com'] }).rules, []);
  assert.deepEqual(ruleFor(CONFIG, { authenticated: true }).rules, [], 'no client address: client rules do not match');
});

test('first matching rule wins for a recipient', () => {
  const p = ruleFor(CONFIG, { clientAddress: '10.0.0.1', authenticated: true, recipients: ['a@dev.example.org'] });
  assert.deepEqual(p.rules, ['inside']);
});

test('recipient_domain: exact and ".suffix" forms; no recipients → no domain rules', () => {
  assert.deepEqual(ruleFor(CONFIG, { recipients: ['<a@DEV.example.org>'] }).rules, ['dev']);
  assert.deepEqual(ruleFor(CONFIG, { recipients: ['a@x.dev.example.org'] }).rules, []);
  assert.deepEqual(ruleFor(CONFIG, { recipients: ['a@lab.example.org'] }).rules, ['lab']);
  assert.deepEqual(ruleFor(CONFIG, { recipients: ['a@deep.sub.lab.example.org'] }).rules, ['lab']);
  assert.deepEqual(ruleFor(CONFIG, { recipients: ['a@notlab.example.org'] }).rules, []);
  assert.deepEqual(ruleFor(CONFIG, {}).rules, []);
});

test('strictest of the recipients: reject > tempfail > accept, union of lists, skip_banned only if all', () => {
  const lab = ruleFor(CONFIG, { recipients: ['a@lab.example.org'] });
  assert.equal(lab.actions.banned, 'accept');
  assert.equal(lab.skipBanned, true);
  assert.equal(lab.encrypted, 'accept');

  const labDev = ruleFor(CONFIG, { recipients: ['a@lab.example.org', 'b@dev.example.org'] });
  assert.deepEqual(labDev.rules, ['lab', 'dev']);
  assert.equal(labDev.actions.banned, 'tempfail', 'accept vs tempfail → tempfail');
  assert.equal(labDev.actions.infected, 'reject', 'reject (lab inherits) vs tempfail (dev) → reject');
  assert.equal(labDev.actions.error, 'reject', 'reject (lab) vs tempfail (dev inherits) → reject');
  assert.equal(labDev.encrypted, 'reject');
  assert.equal(labDev.skipBanned, false, 'dev does not skip banned');
  assert.deepEqual([...labDev.bannedExtensions].sort(), ['exe', 'js', 'scr']);
  assert.deepEqual([...labDev.bannedTypes].sort(), ['elf', 'macho', 'msi', 'pe']);

  const labPlain = ruleFor(CONFIG, { recipients: ['a@lab.example.org', 'c@example.com'] });
  assert.equal(labPlain.skipBanned, false);
  assert.equal(labPlain.actions.banned, 'reject');
  assert.deepEqual(labPlain.rules, ['lab']);

  const twoLab = ruleFor(CONFIG, { recipients: ['a@lab.example.org', 'b@x.lab.example.org'] });
  assert.equal(twoLab.skipBanned, true, 'every recipient skips → skip');
});

test('rule validation errors name the rule index and key', () => {
  const cases: [string, string][] = [
    ['[[rules]]\nmatch = { client = ["300.0.0.0/8"] }\n', 'rules[0].match.client[0]'],
    ['[[rules]]\nmatch = { authenticated = "yes" }\n', 'rules[0].match.authenticated'],
    ['[[rules]]\nmatch = { recipient_domain = ["bad domain"] }\n', 'rules[0].match.recipient_domain[0]'],
    ['[[rules]]\n[[rules]]\nactions = { banned = "drop" }\n', 'rules[1].actions.banned'],
    ['[[rules]]\nactions = { virus = "reject" }\n', 'rules[0].actions.virus'],
    ['[[rules]]\nskip_banned = 1\n', 'rules[0].skip_banned'],
    ['[[rules]]\nskip_scanning = true\n', 'rules[0].skip_scanning'],
    ['[[rules]]\nbanned_types = ["exe"]\n', 'rules[0].banned_types[0]'],
    ['[[rules]]\nencrypted = "maybe"\n', 'rules[0].encrypted'],
    ['rules = 5\n', 'rules'],
  ];
  for (const [text, key] of cases) {
    assert.throws(() => parseConfigText(text, '/m.toml'), (e: unknown) => e instanceof ConfigError && e.key === key, key);
  }
});
