#!/bin/sh
# install-deps.sh — install everything midstream's tests need, idempotently.
#   - npm packages (npm ci when node_modules is missing or stale)
#   - Debian packages: postfix, clamav-daemon, clamav-testfiles, miltertest, m4, libwrap0,
#     python3, ripmime, mpack (the differential harness's oracles), zip, unzip,
#     libarchive-tools (archive oracles and a real zip writer in the unpack tests),
#     redis-server (a real shared verdict cache for the scale-out tests; never run as a service),
#     dovecot-pop3d, fetchmail, openssl (the POP3 front's real server, client and test certificate),
#     python3-dkim (signs and verifies mail in the fidelity test)
#   - for the lab test (test/integration/lab.test.ts): docker.io, docker-compose, debootstrap, chromium
#   - Sendmail 8.17 unpacked (not installed: it conflicts with postfix) into $MIDSTREAM_CACHE/sendmail
#   - $MIDSTREAM_EXTRA_PKGS: more Debian packages (the peer benchmark's filters), no recommends
# Needs root for apt-get; skips apt entirely when every package is already there.
set -eu
cd "$(dirname "$0")/.."
CACHE="${MIDSTREAM_CACHE:-$HOME/.cache/midstream}"

# --- npm ----------------------------------------------------------------------
if [ -L node_modules ]; then
  # A worktree sharing another checkout's node_modules through a symlink: npm ci would
  # empty the shared directory under everyone using it. Its own checkout keeps it current.
  echo "install-deps: node_modules is a symlink ($(readlink node_modules)): not running npm ci here"
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- Debian packages ---------------------------------------------------------------
PKGS="postfix clamav-daemon clamav-testfiles miltertest m4 libwrap0 procps systemd logrotate prometheus python3 ripmime mpack zip unzip libarchive-tools redis-server dovecot-pop3d fetchmail openssl python3-dkim ${MIDSTREAM_EXTRA_PKGS:-}"
PKGS="$PKGS docker.io docker-compose debootstrap chromium"  # the lab test
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: need root to install:$missing" >&2; exit 1; fi
  echo "install-deps: apt-get install$missing"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- Sendmail, unpacked -------------------------------------------------------------
SM="$CACHE/sendmail"
if [ ! -x "$SM/usr/libexec/sendmail/sendmail" ] || [ ! -f "$SM/usr/share/sendmail/cf/m4/cf.m4" ]; then
  echo "install-deps: unpacking sendmail into $SM"
  mkdir -p "$SM" "$CACHE/debs"
  [ -f /var/lib/apt/lists/lock ] && ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || apt-get update -qq
  ( cd "$CACHE/debs" && apt-get download sendmail-bin sendmail-base sendmail-cf libmilter1.0.1 >/dev/null 2>&1 ) || {
    apt-get update -qq; ( cd "$CACHE/debs" && apt-get download sendmail-bin sendmail-base sendmail-cf libmilter1.0.1 >/dev/null ); }
  for d in "$CACHE"/debs/*.deb; do dpkg -x "$d" "$SM"; done
fi
echo "install-deps: ok"
