/**
 * index.ts — the core's only public entry point. src/smtp/ and milter/ import from
 * here and nowhere else under src/core.
 *
 *   const engine = await createEngine({ ...options, policyFor, onVerdict });  // loads signatures, clamd client
 *   const s = engine.begin(envelope, { policy, onVerdict });   // one per message; hooks are options
 *   s.onFinal(v => …);                              // fires once, as soon as a reject verdict is certain
 *   await s.push(chunk); …                          // raw RFC 5322 bytes, CRLF or LF, un-dot-stuffed
 *   const verdict = await s.end();                  // final verdict (latched early verdict wins)
 *   s.abort();                                      // client gone: cancel scanners
 *   s.gate.releasable / s.gate.onStructure(cb)      // delivering while scanning (POP3): release-gate.ts
 */
export type { Verdict, VerdictKind, Envelope, LimitName, ErrorKind, AnomalyName } from './types.js';
export type { Limits } from './limits.js';
export { DEFAULT_LIMITS } from './limits.js';
export type { Reply, Action, Actions, ReplyTemplates, ReplyTemplate } from './policy-table.js';
export { replyFor, sanitize, DEFAULT_ACTIONS, ACTION_NAMES, ACTION_RANK, stricterAction, refuses, parseReplyTemplate, templateMisfit } from './policy-table.js';
export { GlobList, compileGlob } from './name-glob.js';
export type { EngineOptions, Engine, Session, SessionStats, BeginOptions, PolicyChoice, VerdictEvent, MessagePolicy, EngineEvents, CacheOptions } from './engine.js';
export { createEngine } from './engine.js';
export { PUSHED } from './session.js';
export { ERROR_CODES, MidstreamError, errorFields, osErrno, type ErrorCode } from './errors.js';
export { hostLookup } from './host-lookup.js';
export { AddressError, parseAddress, formatAddress, isHostname, isIPv4, isIPv6, type SocketAddress, type AddressUse } from './address.js';
export type { ReleaseGate, StructureEvent } from './release-gate.js';
