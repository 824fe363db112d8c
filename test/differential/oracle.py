#!/usr/bin/env python3
"""oracle.py: what other mail readers extract from a message (the differential oracles).

Input (stdin): JSON lines, one per case:
  {"id": str, "raw": base64 message,
   "payloads": [{"oracle": str, "where": str, "name": str|null, "data": base64}],  # e.g. mailparser's
   "tools": ["ripmime", "munpack"]}                                                  # external readers to run
  or a single raw message when run as `oracle.py --one < mail.eml` (prints one JSON object).
Output (stdout): JSON lines, one per case, in input order:
  {"id": str, "oracles": {ORACLE: {"eicar": [where...], "names": [name...], "errors": [str...]}}}
Oracles: py-default and py-compat32 (email package, both policies: walk() every part,
get_payload(decode=True), get_filename() and the Content-Type name), every "oracle" named
in payloads (mailparser's attachments and bodies, parsed in Node), ripmime and munpack
(Debian packages, one process per case, run two at a time). Every extracted payload is
walked recursively through zipfile (central directory names and the Info-ZIP 0x7075
Unicode-path extra, as unzip reads it), tarfile (every member, link names, pax path and
GNU.sparse.name), gzip (FNAME, as `gunzip -N` and 7-Zip show it) and bz2.
Limits: archive depth 8, 64 MiB decompressed per payload, 200 names and 50 hits per
oracle. Errors: a reader that raises is recorded in "errors" and the case goes on.
Gaps: no 7z/rar/cab readers; uuencode inside text bodies only as ripmime/munpack do it.
"""
import base64
import bz2
import concurrent.futures
import email
import email.policy
import email.utils
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MAX_DEPTH = 8
MAX_OUT = 64 << 20
MAX_NAMES = 200
MAX_HITS = 50
TOOL_TIMEOUT = 20


class Report:
    def __init__(self):
        self.eicar = []
        self.names = []
        self.errors = []

    def name(self, n):
        if n is None:
            return
        if isinstance(n, bytes):
            n = n.decode("latin-1")
        n = str(n)
        if n and n not in self.names and len(self.names) < MAX_NAMES:
            self.names.append(n)

    def err(self, where, e):
        if len(self.errors) < 20:
            self.errors.append(f"{where}: {type(e).__name__}: {str(e)[:120]}")

    def as_json(self):
        return {"eicar": self.eicar, "names": self.names, "errors": self.errors}


def unicode_path_names(extra):
    """Info-ZIP Unicode Path extra fields (0x7075) in a zip extra block."""
    out = []
    i = 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + size]
        if hid == 0x7075 and len(body) > 5 and body[0] == 1:
            out.append(body[5:].decode("utf-8", "replace"))
        i += 4 + size
    return out


def gzip_fname(data):
    """FNAME of the first gzip member (RFC 1952), latin-1."""
    if len(data) < 10 or data[3] & 8 == 0:
        return None
    i = 10
    if data[3] & 4:
        if len(data) < 12:
            return None
        i += 2 + struct.unpack_from("<H", data, 10)[0]
    end = data.find(b"\0", i)
    return data[i:end].decode("latin-1") if end > i else None


def walk(data, where, rep, depth=0):
    """Record EICAR and every name in `data`, recursing into archives."""
    if not data:
        return
    if EICAR in data and len(rep.eicar) < MAX_HITS:
        rep.eicar.append(where)
    if depth >= MAX_DEPTH:
        return
    if data[:2] == b"\x1f\x8b":
        rep.name(gzip_fname(data))
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                out = g.read(MAX_OUT)
            walk(out, where + "!(gzip)", rep, depth + 1)
        except Exception as e:
            rep.err(where + " gzip", e)
    if data[:3] == b"BZh":
        try:
            d = bz2.BZ2Decompressor()
            out = d.decompress(data, MAX_OUT)
            # Concatenated streams: go on while input is left and output room remains.
            while d.eof and d.unused_data and len(out) < MAX_OUT:
                rest = d.unused_data
                d = bz2.BZ2Decompressor()
                out += d.decompress(rest, MAX_OUT - len(out))
            walk(out, where + "!(bzip2)", rep, depth + 1)
        except Exception as e:
            rep.err(where + " bz2", e)
    if b"PK\x05\x06" in data[-66000:]:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for info in z.infolist():
                    if info.is_dir():
                        continue
                    rep.name(info.filename)
                    for n in unicode_path_names(info.extra):
                        rep.name(n)
                    try:
                        with z.open(info) as f:
                            out = f.read(MAX_OUT)
                        walk(out, f"{where}!{info.filename}", rep, depth + 1)
                    except Exception as e:
                        rep.err(f"{where}!{info.filename}", e)
        except Exception as e:
            rep.err(where + " zip", e)
    if len(data) >= 512:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
                for m in t.getmembers():
                    for k in ("path", "GNU.sparse.name", "linkpath"):
                        rep.name(m.pax_headers.get(k))
                    if m.isdir():
                        continue
                    rep.name(m.name)
                    if m.issym() or m.islnk():
                        rep.name(m.linkname)
                    try:
                        f = t.extractfile(m)
                        if f is not None:
                            walk(f.read(MAX_OUT), f"{where}!{m.name}", rep, depth + 1)
                    except Exception as e:
                        rep.err(f"{where}!{m.name}", e)
        except tarfile.ReadError:
            pass
        except Exception as e:
            rep.err(where + " tar", e)


def email_oracle(raw, policy):
    rep = Report()
    try:
        msg = email.message_from_bytes(raw, policy=policy)
    except Exception as e:
        rep.err("parse", e)
        return rep
    for i, part in enumerate(msg.walk()):
        where = str(i)
        try:
            fn = part.get_filename()
            rep.name(fn)
            if fn:
                where += "/" + str(fn)
        except Exception as e:
            rep.err(where + " filename", e)
        try:
            rep.name(email.utils.collapse_rfc2231_value(part.get_param("name")) if part.get_param("name") else None)
        except Exception as e:
            rep.err(where + " name", e)
        try:
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
        except Exception as e:
            rep.err(where + " payload", e)
            continue
        if isinstance(payload, bytes):
            walk(payload, where, rep)
    return rep


def run_tool(tool, raw):
    """ripmime or munpack on one message in a private temp dir; walk what it wrote."""
    rep = Report()
    with tempfile.TemporaryDirectory(prefix="midstream-oracle-") as d:
        src = os.path.join(d, "in.eml")
        out = os.path.join(d, "out")
        os.mkdir(out)
        with open(src, "wb") as f:
            f.write(raw)
        env = dict(os.environ, TMPDIR=d, HOME=d)
        if tool == "ripmime":
            cmd = ["ripmime", "-i", src, "-d", out, "-q", "--no-paranoid", "--overwrite"]
        else:
            cmd = ["munpack", "-q", "-t", "-f", "-C", out, src]
        try:
            subprocess.run(cmd, env=env, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
        except Exception as e:
            rep.err(tool, e)
        for root, _dirs, files in os.walk(out):
            for fn in sorted(files):
                p = os.path.join(root, fn)
                rel = os.path.relpath(p, out)
                rep.name(rel)
                try:
                    with open(p, "rb") as f:
                        walk(f.read(MAX_OUT), rel, rep)
                except Exception as e:
                    rep.err(rel, e)
    return rep


def one_case(case, pool):
    raw = base64.b64decode(case["raw"])
    futures = {t: pool.submit(run_tool, t, raw) for t in case.get("tools", [])}
    oracles = {
        "py-default": email_oracle(raw, email.policy.default),
        "py-compat32": email_oracle(raw, email.policy.compat32),
    }
    for p in case.get("payloads", []):
        rep = oracles.setdefault(p["oracle"], Report())
        rep.name(p.get("name"))
        walk(base64.b64decode(p["data"]), p["where"], rep)
    for t, fut in futures.items():
        oracles[t] = fut.result()
    return {"id": case["id"], "oracles": {k: v.as_json() for k, v in oracles.items()}}


def main():
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        if "--one" in sys.argv:
            raw = sys.stdin.buffer.read()
            case = {"id": "-", "raw": base64.b64encode(raw).decode(), "tools": ["ripmime", "munpack"]}
            print(json.dumps(one_case(case, pool), indent=1))
            return
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(one_case(json.loads(line), pool)), flush=True)


if __name__ == "__main__":
    main()
