#!/usr/bin/python3
"""dkim-tool.py — DKIM sign and verify with Debian's python3-dkim (dkimpy), for the fidelity test.

  dkim-tool.py sign KEY.pem SELECTOR DOMAIN < message > signed-message
  dkim-tool.py verify SELECTOR DOMAIN PUBKEY_BASE64 < message     (exit 0 and "pass", else 1)

Signing uses simple/simple canonicalization: any changed body or header byte breaks it.
Verification answers the key query itself (no DNS): the TXT record for
SELECTOR._domainkey.DOMAIN is "v=DKIM1; k=rsa; p=PUBKEY_BASE64".
"""
import sys
import dkim

HEADERS = [b'from', b'to', b'subject', b'date', b'message-id', b'mime-version', b'content-type']


def main():
    cmd = sys.argv[1]
    msg = sys.stdin.buffer.read()
    if cmd == 'sign':
        key = open(sys.argv[2], 'rb').read()
        sig = dkim.sign(msg, sys.argv[3].encode(), sys.argv[4].encode(), key,
                        canonicalize=(b'simple', b'simple'), include_headers=HEADERS)
        sys.stdout.buffer.write(sig + msg)
        return 0
    if cmd == 'verify':
        name = (sys.argv[2] + '._domainkey.' + sys.argv[3] + '.').encode()
        record = ('v=DKIM1; k=rsa; p=' + sys.argv[4]).encode()

        def dns(qname, timeout=5):
            return record if qname.rstrip(b'.') == name.rstrip(b'.') else None

        try:
            ok = dkim.DKIM(msg).verify(dnsfunc=dns)
            why = ''
        except dkim.DKIMException as e:
            ok, why = False, str(e)
        print('pass' if ok else 'fail ' + why)
        return 0 if ok else 1
    print('usage: dkim-tool.py sign|verify ...', file=sys.stderr)
    return 2


sys.exit(main())
