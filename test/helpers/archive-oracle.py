#!/usr/bin/env python3
"""archive-oracle.py — what real clients extract from archive files (test oracle).

Usage: archive-oracle.py FILE...   → one JSON object on stdout: {FILE: views}, where views
has, for each reader that accepts the file, the members it would extract:
  "zipfile": Python's zipfile (central directory; names cut at NUL)
  "tarfile": Python's tarfile ('r:*': plain, gzip, bz2; regular, unknown and sparse
             members, hard and symbolic links resolved to their targets; devices,
             FIFOs and directories are not files)
  "unzip":   Info-ZIP unzip (central directory), when installed
  "bsdtar":  libarchive bsdtar reading the file as a stream (zip: local headers), when installed
Each view is {"ok": bool, "error": str|null, "members": [{"name", "sha256"} | {"name", "error"}]}.
Per-member errors (bad CRC, password, overlap) do not hide the other members.
"""
import hashlib, json, os, shutil, subprocess, sys, tarfile, tempfile, zipfile

def sha(b):
    return hashlib.sha256(b).hexdigest()

def view_zipfile(path):
    out = {"ok": False, "error": None, "members": []}
    try:
        with zipfile.ZipFile(path) as z:
            out["ok"] = True
            for info in z.infolist():
                m = {"name": info.filename, "orig": info.orig_filename}
                if info.is_dir():
                    continue
                try:
                    m["sha256"] = sha(z.read(info))
                except Exception as e:  # noqa: BLE001 - any reader failure is an outcome
                    m["error"] = type(e).__name__ + ": " + str(e)
                out["members"].append(m)
    except Exception as e:  # noqa: BLE001
        out["error"] = type(e).__name__ + ": " + str(e)
    return out

def view_tarfile(path):
    out = {"ok": False, "error": None, "members": []}
    try:
        with tarfile.open(path, "r:*") as t:
            out["ok"] = True
            for info in t:
                if info.isdir() or info.ischr() or info.isblk() or info.isfifo():
                    continue
                m = {"name": info.name, "type": info.type.decode("latin-1")}
                try:
                    f = t.extractfile(info)
                    if f is None:
                        continue
                    m["sha256"] = sha(f.read())
                except Exception as e:  # noqa: BLE001
                    m["error"] = type(e).__name__ + ": " + str(e)
                out["members"].append(m)
    except Exception as e:  # noqa: BLE001
        out["error"] = type(e).__name__ + ": " + str(e)
    return out

def view_unzip(path):
    out = {"ok": False, "error": None, "members": []}
    r = subprocess.run(["unzip", "-Z1", path], capture_output=True)
    if r.returncode not in (0, 1):
        out["error"] = r.stderr.decode("latin-1")[-300:] or "exit %d" % r.returncode
        return out
    out["ok"] = True
    for name in r.stdout.decode("latin-1").splitlines():
        if name.endswith("/"):
            continue
        p = subprocess.run(["unzip", "-p", path, name], capture_output=True)
        m = {"name": name}
        if p.returncode in (0, 1):
            m["sha256"] = sha(p.stdout)
        else:
            m["error"] = "exit %d" % p.returncode
        out["members"].append(m)
    return out

def view_bsdtar(path):
    out = {"ok": False, "error": None, "members": []}
    d = tempfile.mkdtemp(prefix="oracle-bsdtar-")
    try:
        with open(path, "rb") as f:
            r = subprocess.run(["bsdtar", "-x", "-f", "-", "-C", d], stdin=f, capture_output=True)
        out["ok"] = r.returncode == 0
        if r.returncode != 0:
            out["error"] = r.stderr.decode("latin-1")[-300:]
        for root, _dirs, files in os.walk(d):
            for fn in files:
                p = os.path.join(root, fn)
                if os.path.islink(p):
                    continue
                with open(p, "rb") as g:
                    out["members"].append({"name": os.path.relpath(p, d), "sha256": sha(g.read())})
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out

def main():
    res = {}
    for path in sys.argv[1:]:
        v = {"zipfile": view_zipfile(path), "tarfile": view_tarfile(path)}
        if shutil.which("unzip"):
            v["unzip"] = view_unzip(path)
        if shutil.which("bsdtar"):
            v["bsdtar"] = view_bsdtar(path)
        res[path] = v
    json.dump(res, sys.stdout)

main()
