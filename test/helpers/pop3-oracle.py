#!/usr/bin/env python3
"""pop3-oracle.py -- the client side of the POP3 tests: Python's poplib fetches, Python's
email and zipfile packages read what arrived (the oracles are not our code).

  pop3-oracle.py fetch HOST PORT USER PASS OUTDIR [stls|ssl]
      LIST, UIDL, TOP n 0 and RETR of every message; OUTDIR/<n>.eml holds each message as
      poplib returns it (lines joined with CRLF, final CRLF), OUTDIR/meta.json the rest.
  pop3-oracle.py inspect FILE...
      one JSON line per file: every MIME part with its type, file name, decoded size and
      whether the EICAR string is in it; for zip parts what zipfile can open and read;
      the parser's defects; whether a midstream notice is there.
"""
import email
import email.policy
import io
import json
import os
import poplib
import ssl
import sys
import zipfile

EICAR = b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'


def fetch(host, port, user, password, outdir, mode=None):
    os.makedirs(outdir, exist_ok=True)
    if mode == 'ssl':
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
    else:
        p = poplib.POP3(host, int(port), timeout=30)
    capa = p.capa()
    if mode == 'stls':
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        p.stls(ctx)
    p.user(user)
    p.pass_(password)
    count, size = p.stat()
    meta = {
        'capa': sorted(capa.keys()),
        'stat': [count, size],
        'list': [l.decode('latin1') for l in p.list()[1]],
        'uidl': [l.decode('latin1') for l in p.uidl()[1]],
        'top': [],
        'retr': [],
    }
    for n in range(1, count + 1):
        top = p.top(n, 0)[1]
        meta['top'].append(b'\r\n'.join(top).decode('latin1'))
        resp, lines, octets = p.retr(n)
        raw = b'\r\n'.join(lines) + b'\r\n'
        with open(os.path.join(outdir, '%d.eml' % n), 'wb') as f:
            f.write(raw)
        meta['retr'].append(resp.decode('latin1'))
    p.quit()
    with open(os.path.join(outdir, 'meta.json'), 'w') as f:
        json.dump(meta, f)


def inspect(path):
    raw = open(path, 'rb').read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    defects = [type(d).__name__ for d in msg.defects]
    for part in msg.walk():
        defects += [type(d).__name__ for d in part.defects]
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b''
        info = {
            'type': part.get_content_type(),
            'filename': part.get_filename(),
            'size': len(payload),
            'eicar': EICAR in payload,
            'notice': b'midstream removed the rest of this message' in payload,
            'status': part.get('X-Virus-Status'),
        }
        if payload[:2] == b'PK':
            try:
                z = zipfile.ZipFile(io.BytesIO(payload))
                members = {}
                for name in z.namelist():
                    try:
                        members[name] = EICAR in z.read(name)
                    except Exception as e:  # a member that cannot be read is no payload
                        members[name] = 'unreadable: %s' % type(e).__name__
                info['zip'] = members
            except Exception as e:
                info['zip'] = 'cannot open: %s' % type(e).__name__
        parts.append(info)
    return {
        'file': os.path.basename(path),
        'subject': msg.get('Subject'),
        'multipart': msg.is_multipart(),
        'status': msg.get('X-Virus-Status'),
        'parts': parts,
        'defects': defects,
        'eicarRaw': EICAR in raw,
    }


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'fetch':
        fetch(*sys.argv[2:])
    elif cmd == 'inspect':
        for p in sys.argv[2:]:
            print(json.dumps(inspect(p)))
    else:
        sys.exit('unknown command ' + cmd)
