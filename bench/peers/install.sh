#!/bin/sh
# bench/peers/install.sh — install the peer filters for the benchmark, idempotently.
#   Debian packages: postfix, clamav-daemon, clamav-testfiles, clamsmtp, clamav-milter,
#   amavisd-new (no recommends: no spamassassin), m4, libwrap0; Sendmail unpacked by
#   scripts/install-deps.sh. Services are not started (policy-rc.d); anything a postinst
#   may still have started is stopped by PID afterwards.
set -eu
cd "$(dirname "$0")/../.."
# The same idempotent installer as the tests, with the peers added (no recommends: no
# spamassassin for amavisd-new).
MIDSTREAM_EXTRA_PKGS="clamsmtp clamav-milter amavisd-new" sh scripts/install-deps.sh
# A postinst must not leave daemons running; stop only those whose pid files the packages wrote.
for pf in /run/clamsmtp/clamsmtpd.pid /run/clamav/clamav-milter.pid /run/amavis/amavisd.pid /var/run/amavis/amavisd.pid; do
  if [ -f "$pf" ]; then pid=$(cat "$pf" 2>/dev/null || true); [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; fi
done
echo "peers/install: ok"
