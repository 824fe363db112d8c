#!/bin/sh
# bench/peers/install.sh — install the peer filters for the benchmark, idempotently.
#   Debian packages: postfix, clamav-daemon, clamav-testfiles, clamsmtp, clamav-milter,
#   amavisd-new (no recommends: no spamassassin), m4, libwrap0; Sendmail unpacked by
#   scripts/install-deps.sh. Services are not started (policy-rc.d); anything a postinst
#   may still have started is stopped by PID afterwards.
set -eu
cd "$(dirname "$0")/../.."
sh scripts/install-deps.sh
PKGS="postfix clamav-daemon clamav-testfiles clamsmtp clamav-milter amavisd-new m4 libwrap0 procps"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then echo "peers/install: need root to install:$missing" >&2; exit 1; fi
  echo "peers/install: apt-get install$missing"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
  # A postinst must not leave daemons running; stop only those whose pid files the packages wrote.
  for pf in /run/clamsmtp/clamsmtpd.pid /run/clamav/clamav-milter.pid /run/amavis/amavisd.pid /var/run/amavis/amavisd.pid; do
    if [ -f "$pf" ]; then pid=$(cat "$pf" 2>/dev/null || true); [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; fi
  done
fi
echo "peers/install: ok"
