#!/usr/bin/env python3
"""bz2-make.py: bzip2 streams for the hostile-mail generator (Node has no bzip2 encoder).

Input (stdin): JSON list of {"data": base64, "randomised": bool}.
Output (stdout): JSON list of base64 bzip2 streams (level 9, deterministic).
"randomised" sets the block header's randomised bit (bzip2 0.9.0 wrote such blocks;
libbzip2 still reads them). The mask first flips output byte 618 of the block (the
first entry of BZ2_rNums is 619), so inputs shorter than that decompress unchanged
and their CRCs stay valid; longer inputs are refused here rather than written wrong.
"""
import base64
import bz2
import json
import sys

out = []
for item in json.load(sys.stdin):
    data = base64.b64decode(item["data"])
    c = bytearray(bz2.compress(data, 9))
    if item.get("randomised"):
        if len(data) >= 618 or c[4:10] != bytes.fromhex("314159265359"):
            sys.exit("bz2-make: randomised blocks only for inputs under 618 bytes")
        c[14] |= 0x80  # first bit after magic(48) + block CRC(32), byte aligned in block 1
        assert bz2.decompress(bytes(c)) == data
    out.append(base64.b64encode(bytes(c)).decode())
json.dump(out, sys.stdout)
