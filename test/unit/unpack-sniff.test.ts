import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { SNIFF_HEAD_BYTES, sniffArchive, sniffType } from '../../src/core/unpack/sniff.js';
import { buildTar } from '../helpers/unpack-harness.js';

const CLAM = '/usr/share/clamav-testfiles/';
const head = (f: string) => readFileSync(CLAM + f).subarray(0, SNIFF_HEAD_BYTES);
const bytes = (...xs: (number | string)[]) => Buffer.concat(xs.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : Buffer.from([x]))));

describe('sniffArchive', () => {
  it('recognises the formats we unpack, from generated and real files', () => {
    assert.equal(sniffArchive(gzipSync('x')), 'gzip');
    assert.equal(sniffArchive(zipSync({ a: new Uint8Array(1) })), 'zip');
    assert.equal(sniffArchive(zipSync({})), 'zip'); // empty: end record only
    assert.equal(sniffArchive(bytes('PK', 7, 8, 'PK', 3, 4)), 'zip'); // spanned marker
    assert.equal(sniffArchive(buildTar([{ name: 'a', data: new Uint8Array(3) }])), 'tar');
    assert.equal(sniffArchive(buildTar([{ name: 'a', format: 'gnu' }])), 'tar');
    assert.equal(sniffArchive(head('clam.zip')), 'zip');
    assert.equal(sniffArchive(head('clam.tar.gz')), 'gzip');
    assert.equal(sniffArchive(head('clam.exe.bz2')), 'bzip2');
    assert.equal(sniffArchive(bytes('BZh9', 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0, 0, 0, 0)), 'bzip2'); // empty stream
  });

  it('does not claim look-alikes', () => {
    assert.equal(sniffArchive(bytes(0x1f, 0x8b, 7)), null); // not deflate
    assert.equal(sniffArchive(bytes('PK', 1, 2)), null); // central record alone
    assert.equal(sniffArchive(bytes('BZh0', 0x31, 0x41, 0x59, 0x26, 0x53, 0x59)), null);
    assert.equal(sniffArchive(bytes('BZh9 not a block')), null);
    assert.equal(sniffArchive(buildTar([{ name: 'a', format: 'v7' }])), 'tar'); // no magic: a valid checksum
    assert.equal(sniffArchive(buildTar([{ name: 'a', format: 'v7', badChecksum: true }])), null);
    assert.equal(sniffArchive(head('clam.7z')), null);
    assert.equal(sniffArchive(new Uint8Array(0)), null);
  });
});

describe('sniffType', () => {
  it('names executables and containers from real files', () => {
    const cases: [string, string][] = [
      ['clam.exe', 'pe'], ['clam.7z', '7z'], ['clam.cab', 'cab'], ['clam.arj', 'arj'], ['clam.zip', 'zip'],
      ['clam.ole.doc', 'ole'], ['clam.pdf', 'pdf'], ['clam.chm', 'chm'], ['clam.exe.rtf', 'rtf'],
      ['clam.newc.cpio', 'cpio'], ['clam.exe.szdd', 'szdd'], ['clam.exe.bz2', 'bzip2'], ['clam.tar.gz', 'gzip'],
    ];
    for (const [f, t] of cases) assert.equal(sniffType(head(f)), t, f);
  });

  it('names ELF, Mach-O, Java, MSI, RAR, xz, scripts', () => {
    assert.equal(sniffType(bytes(0x7f, 'ELF', 2, 1, 1)), 'elf');
    assert.equal(sniffType(bytes(0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1)), 'macho');
    assert.equal(sniffType(bytes(0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2)), 'macho'); // universal, 2 archs
    assert.equal(sniffType(bytes(0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52)), 'java-class');
    assert.equal(sniffType(bytes('Rar!', 0x1a, 7, 1, 0)), 'rar');
    assert.equal(sniffType(bytes(0xfd, '7zXZ', 0)), 'xz');
    assert.equal(sniffType(bytes('#!/bin/sh\n')), 'script-shebang');
    assert.equal(sniffType(bytes('xx-lh5-')), 'lzh');
    assert.equal(sniffType(bytes('junk\n%PDF-1.7')), 'pdf');
    assert.equal(sniffType(bytes('MZ')), 'pe');
    // OLE2 with the Windows Installer CLSID in the root entry (512-byte sectors, directory at sector 0).
    const msi = new Uint8Array(1024);
    msi.set([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
    msi.set([9, 0], 0x1e);
    msi.set([0x84, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46], 512 + 0x50);
    assert.equal(sniffType(msi), 'msi');
    msi[512 + 0x50] = 0x85;
    assert.equal(sniffType(msi), 'ole');
    assert.equal(sniffType(bytes('hello world')), null);
    assert.equal(sniffType(new Uint8Array(0)), null);
  });
});
