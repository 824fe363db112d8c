/**
 * rules-match.test.ts — the [[rules]] conditions of issue #13 (sender address/domain/CIDR,
 * recipient address or domain, listen_port, daemon_name, if_addr), actions for every kind,
 * the lovers' exemptions and sender allow/block lists, the strictest merge with the new
 * actions, template/action validation at load, and what check-config says about rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, explainRules, parseConfigText, ruleFor, ruleWarnings } from '../../src/config/load-config.js';
import { addressListMatches, compileAddressList, checkAddressItem } from '../../src/config/address-list.js';

const cfg = (text: string) => parseConfigText(text, '/tmp/rules-match.toml');

test('address lists: address, domain, @domain, .domain, <>, CIDR (sender lists only)', () => {
  const l = compileAddressList(['ceo@example.org', 'partner.example', '.subs.example', '<>', '192.0.2.0/24'].map((s) => checkAddressItem(s, true)));
  assert.ok(addressListMatches(l, '<CEO@Example.ORG>'));
  assert.ok(!addressListMatches(l, 'cfo@example.org'));
  assert.ok(addressListMatches(l, 'x@partner.example'));
  assert.ok(!addressListMatches(l, 'x@sub.partner.example'), 'a bare domain is exact');
  assert.ok(addressListMatches(l, 'x@subs.example') && addressListMatches(l, 'x@a.b.subs.example'));
  assert.ok(addressListMatches(l, ''), '<> matches the null sender');
  assert.ok(addressListMatches(l, 'anyone@else.example', '192.0.2.77'), 'CIDR matches the client');
  assert.ok(!addressListMatches(l, 'anyone@else.example', '198.51.100.1'));
  assert.equal(checkAddressItem('@Example.NET.', false), 'example.net');
  assert.throws(() => checkAddressItem('10.0.0.0/8', false), /not an address/);
  assert.throws(() => checkAddressItem('two words', true), /not an address/);
});

const RULES = cfg(`
[policy]
virus_lovers = ["abuse@example.org"]
banned_lovers = ["dev.example.org"]
sender_allow = ["ci@build.example"]
sender_block = [".spam.example", "203.0.113.0/24"]

[[rules]]
name = "submission"
match = { listen_port = [10587] }
actions = { banned = "quarantine" }

[[rules]]
name = "msa"
match = { daemon_name = ["MSA", "ORIGINATING"] }
actions = { infected = "discard" }

[[rules]]
name = "if"
match = { if_addr = ["192.0.2.25/32"] }
actions = { anomaly = "tag" }

[[rules]]
name = "from partner"
match = { sender = ["partner.example", "198.51.100.0/24"] }
actions = { unparseable = "accept", limit = "tempfail" }

[[rules]]
name = "ceo"
match = { recipient = ["ceo@example.org"] }
actions = { infected = "quarantine" }
banned_names = ["*.docm"]
banned_mime_types = ["application/x-foo"]
`);

test('transaction conditions: listen_port, daemon_name, if_addr, sender (address/domain/CIDR)', () => {
  assert.deepEqual(ruleFor(RULES, { localPort: 10587, recipients: ['x@example.org'] }).rules, ['submission']);
  assert.equal(ruleFor(RULES, { localPort: 10587, recipients: ['x@example.org'] }).actions.banned, 'quarantine');
  assert.deepEqual(ruleFor(RULES, { localPort: 10025, recipients: ['x@example.org'] }).rules, []);
  assert.equal(ruleFor(RULES, { daemonName: 'ORIGINATING', recipients: ['x@example.org'] }).actions.infected, 'discard');
  assert.deepEqual(ruleFor(RULES, { daemonName: 'MTA', recipients: ['x@example.org'] }).rules, []);
  assert.equal(ruleFor(RULES, { localAddress: '192.0.2.25', recipients: ['x@example.org'] }).actions.anomaly, 'tag');
  assert.deepEqual(ruleFor(RULES, { localAddress: '192.0.2.26', recipients: ['x@example.org'] }).rules, []);
  assert.deepEqual(ruleFor(RULES, { sender: '<a@partner.example>', recipients: ['x@example.org'] }).rules, ['from partner']);
  assert.deepEqual(ruleFor(RULES, { sender: 'a@other.example', clientAddress: '198.51.100.9', recipients: ['x@example.org'] }).rules, ['from partner']);
  assert.deepEqual(ruleFor(RULES, { sender: 'a@other.example', clientAddress: '192.0.2.9', recipients: ['x@example.org'] }).rules, []);
});

test('recipient by full address; per-recipient rules merge strictest with the new actions', () => {
  const ceo = ruleFor(RULES, { recipients: ['<CEO@example.org>'] });
  assert.deepEqual(ceo.rules, ['ceo']);
  assert.equal(ceo.actions.infected, 'quarantine');
  assert.ok(ceo.bannedNames.includes('*.docm') && ceo.bannedMimeTypes.includes('application/x-foo'));
  // ceo (quarantine) + an ordinary recipient (reject): reject wins; the lists unite.
  const both = ruleFor(RULES, { recipients: ['ceo@example.org', 'x@example.org'] });
  assert.equal(both.actions.infected, 'reject');
  assert.ok(both.bannedNames.includes('*.docm'));
  assert.ok(both.bannedMimeTypes.includes('application/x-msdownload') && both.bannedMimeTypes.includes('application/x-foo'));
});

test('virus_lovers and banned_lovers: tagged for them, strictest across recipients', () => {
  const lover = ruleFor(RULES, { recipients: ['abuse@example.org'] });
  assert.equal(lover.actions.infected, 'tag');
  assert.equal(lover.actions.banned, 'reject');
  assert.deepEqual(lover.rules, ['virus_lovers']);
  const dev = ruleFor(RULES, { recipients: ['x@dev.example.org'] });
  assert.equal(dev.actions.banned, 'tag');
  assert.equal(dev.actions.infected, 'reject');
  // A lover and a non-lover in one transaction: one reply, the strictest.
  assert.equal(ruleFor(RULES, { recipients: ['abuse@example.org', 'x@example.org'] }).actions.infected, 'reject');
  // A lover whose rule is already laxer keeps it.
  const lax = cfg('[actions]\ninfected = "accept"\n[policy]\nvirus_lovers = ["a@b.example"]\n');
  assert.equal(ruleFor(lax, { recipients: ['a@b.example'] }).actions.infected, 'accept');
});

test('sender_block refuses (banned), sender_allow skips banned checks, block wins', () => {
  const blocked = ruleFor(RULES, { sender: 'x@mail.spam.example', recipients: ['y@example.org'] });
  assert.equal(blocked.blocked, 'sender blocked');
  assert.ok(blocked.rules.includes('sender_block'));
  assert.equal(ruleFor(RULES, { sender: 'ok@example.net', clientAddress: '203.0.113.5', recipients: ['y@example.org'] }).blocked, 'sender blocked', 'by client CIDR');
  const allowed = ruleFor(RULES, { sender: 'ci@build.example', recipients: ['y@example.org'] });
  assert.equal(allowed.skipBanned, true);
  assert.equal(allowed.blocked, undefined);
  const both = cfg('[policy]\nsender_allow = ["a.example"]\nsender_block = ["a.example"]\n');
  const p = ruleFor(both, { sender: 'x@a.example', recipients: ['y@b.example'] });
  assert.equal(p.blocked, 'sender blocked');
  assert.equal(p.skipBanned, false);
});

test('rules accept every kind and action; encrypted keeps its three values', () => {
  const c = cfg('[[rules]]\nactions = { infected = "tag", banned = "discard", limit = "quarantine", anomaly = "accept", unparseable = "tempfail", error = "reject" }\n');
  assert.deepEqual(c.rules[0]!.actions, { infected: 'tag', banned: 'discard', limit: 'quarantine', anomaly: 'accept', unparseable: 'tempfail', error: 'reject' });
  assert.throws(() => cfg('[[rules]]\nencrypted = "quarantine"\n'), (e: unknown) => e instanceof ConfigError && e.key === 'rules[0].encrypted');
  assert.throws(() => cfg('[[rules]]\nmatch = { listen_port = [0] }\n'), (e: unknown) => e instanceof ConfigError && e.key === 'rules[0].match.listen_port[0]');
  assert.throws(() => cfg('[[rules]]\nmatch = { if_addr = ["not-an-ip"] }\n'), (e: unknown) => e instanceof ConfigError && e.key === 'rules[0].match.if_addr[0]');
  assert.throws(() => cfg('[[rules]]\nmatch = { sender = ["a b"] }\n'), (e: unknown) => e instanceof ConfigError && e.key === 'rules[0].match.sender[0]');
});

test('a template must fit every action its kind can get, rules included', () => {
  assert.doesNotThrow(() => cfg('[reply]\ninfected = "550 5.7.1 Virus found: %v"\n'));
  assert.throws(
    () => cfg('[reply]\ninfected = "550 5.7.1 Virus found: %v"\n[[rules]]\nactions = { infected = "tempfail" }\n'),
    (e: unknown) => e instanceof ConfigError && e.key === 'reply.infected' && /rules\[0\]\.actions\.infected/.test(e.message),
  );
  assert.doesNotThrow(() => cfg('[reply]\ninfected = "Virus found: %v"\n[[rules]]\nactions = { infected = "tempfail" }\n'), 'no code: the action picks it');
});

test('check-config: how rules combine, and rules that can never match', () => {
  const text = explainRules(RULES).join('\n');
  assert.match(text, /first rule whose every condition holds/);
  assert.match(text, /1\. "submission": if came in on port 10587 then banned → quarantine/);
  assert.match(text, /5\. "ceo": if recipient is ceo@example\.org then infected → quarantine; banned names: \*\.docm/);
  assert.match(text, /virus_lovers \(abuse@example\.org\)/);
  assert.match(text, /reject > tempfail > discard > quarantine > tag > accept/);
  assert.match(text, /sender_block/);

  const c = cfg(`
[[rules]]
name = "all"
skip_banned = true
[[rules]]
name = "after all"
match = { recipient_domain = ["a.example"] }
[[rules]]
name = "impossible"
match = { recipient = ["x@b.example"], recipient_domain = ["a.example"] }
[[rules]]
name = "empty"
match = { sender = [] }
[[rules]]
name = "both fronts"
match = { listen_port = [25], daemon_name = ["MTA"] }
[[rules]]
name = "wrong port"
match = { listen_port = [9999] }
`);
  const w = (front?: 'proxy' | 'milter') => ruleWarnings(c, front).map((x) => `${x.key}: ${x.reason}`).join('\n');
  assert.match(w(), /rules\[1\]: rule "after all" can never match: rules\[0\] "all" before it matches everything/);
  assert.match(w(), /rules\[2\]\.match: rule "impossible" can never match: no recipient in it lies in its recipient_domain/);
  assert.match(w(), /rules\[3\]\.match\.sender: rule "empty" can never match: empty sender list/);
  assert.match(w(), /rules\[4\]\.match: rule "both fronts" can never match: listen_port \(proxy only\) with daemon_name/);
  assert.match(w('proxy'), /rules\[5\]\.match\.listen_port: rule "wrong port" can never match: the proxy listens on port 10025/);
  assert.match(w('milter'), /rules\[5\]\.match\.listen_port: rule "wrong port" never matches through the milter/);
  assert.equal(ruleWarnings(cfg('[[rules]]\nmatch = { recipient_domain = ["a.example"] }\n')).length, 0, 'a plain rule draws no warning');
});
