#!/bin/sh
# install.sh — install midstream on a Debian host, as root:
#   1. the `midstream` command: npm pack, then npm install -g into $PREFIX (/usr/local),
#      so /usr/local/bin/midstream is what the systemd units run;
#   2. the system user and group `midstream` (and membership of group postfix, if Postfix
#      is installed, so the milter may hand its unix socket to that group);
#   3. /etc/midstream/proxy.toml, milter.toml and pop3.toml — one config per unit (they cannot share
#      listen, log or metrics addresses), made from the sample midstream.toml; an existing
#      file is never overwritten;
#   4. the systemd units midstream-proxy.service, midstream-milter.service and
#      midstream-pop3.service;
#   5. /etc/logrotate.d/midstream (SIGUSR1 makes the daemon reopen its log file);
#   6. /var/spool/postfix/midstream (owner midstream, group postfix, 0750) for a milter
#      socket inside Postfix's chroot, if Postfix is installed.
# Idempotent. Environment: PREFIX (default /usr/local); DESTDIR (default empty: a staging
# root for every file, e.g. for packaging or tests; the user is still created on this
# host); MIDSTREAM_TGZ (an already packed tarball: skip npm pack and its build).
# Then: systemctl enable --now midstream-proxy (and/or midstream-milter).
set -eu
cd "$(dirname "$0")/.."
PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

# --- 1. the command -------------------------------------------------------------------
tgz="${MIDSTREAM_TGZ:-}"
if [ -z "$tgz" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # prepack builds dist/ with tsc; the tarball holds the compiled CLI, not the sources.
  npm pack --pack-destination "$work" >/dev/null
  tgz="$(ls "$work"/midstream-*.tgz)"
fi
mkdir -p "$DESTDIR$PREFIX"
npm install -g --prefix "$DESTDIR$PREFIX" --no-audit --no-fund --loglevel=error "$tgz"
echo "install.sh: $DESTDIR$PREFIX/bin/midstream ($("$DESTDIR$PREFIX/bin/midstream" --version))"

# --- 2. user and group ----------------------------------------------------------------
if ! getent passwd midstream >/dev/null; then
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin midstream
  echo "install.sh: created system user midstream"
fi
if getent group postfix >/dev/null && ! id -nG midstream | tr ' ' '\n' | grep -qx postfix; then
  usermod -a -G postfix midstream
  echo "install.sh: added midstream to group postfix (socket_group = \"postfix\" works)"
fi

# --- 3. configs, one per unit -----------------------------------------------------------
install -d -m 0750 -o root -g midstream "$DESTDIR/etc/midstream"
for front in proxy milter pop3; do
  conf="$DESTDIR/etc/midstream/$front.toml"
  if [ -e "$conf" ]; then
    echo "install.sh: keeping existing $conf"
    continue
  fi
  port=9357
  [ "$front" = milter ] && port=9358
  [ "$front" = pop3 ] && port=9359
  {
    echo "# /etc/midstream/$front.toml — used by midstream-$front.service; made by scripts/install.sh"
    echo "# from the sample midstream.toml (every option with its default and one-line comment)."
    echo "# Check after editing: midstream check-config $front.toml; apply: systemctl reload midstream-$front"
    echo
    # Only this front's log file and metrics port differ from the defaults.
    sed -e "s|^file = \"\" |file = \"/var/log/midstream/$front.log\" |" \
        -e "s|^listen = \"\"  |listen = \"127.0.0.1:$port\"  |" midstream.toml
  } > "$conf.tmp"
  grep -q "^file = \"/var/log/midstream/$front.log\"" "$conf.tmp" && grep -q "^listen = \"127.0.0.1:$port\"" "$conf.tmp" || {
    echo "install.sh: could not set log.file / metrics.listen in $conf (sample config changed?)" >&2
    rm -f "$conf.tmp"
    exit 1
  }
  chown root:midstream "$conf.tmp"
  chmod 0640 "$conf.tmp"
  mv "$conf.tmp" "$conf"
  echo "install.sh: wrote $conf"
done

# --- 4. systemd units -------------------------------------------------------------------
install -d -m 0755 "$DESTDIR/etc/systemd/system"
for u in deploy/systemd/midstream-proxy.service deploy/systemd/midstream-milter.service deploy/systemd/midstream-pop3.service; do
  # The units name /usr/local/bin/midstream; a different PREFIX is written into them.
  sed "s|/usr/local/bin/midstream|$PREFIX/bin/midstream|g" "$u" > "$DESTDIR/etc/systemd/system/$(basename "$u")"
  chmod 0644 "$DESTDIR/etc/systemd/system/$(basename "$u")"
done

# --- 5. logrotate -------------------------------------------------------------------------
install -d -m 0755 "$DESTDIR/etc/logrotate.d"
install -m 0644 deploy/logrotate/midstream "$DESTDIR/etc/logrotate.d/midstream"

# --- 6. a socket directory inside Postfix's chroot ---------------------------------------
if getent group postfix >/dev/null; then
  install -d -m 0750 -o midstream -g postfix "$DESTDIR/var/spool/postfix/midstream"
fi

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
echo "install.sh: done. Next: edit /etc/midstream/proxy.toml, milter.toml or pop3.toml, then"
echo "  systemctl enable --now midstream-proxy    # Postfix before-queue (smtpd_proxy_filter)"
echo "  systemctl enable --now midstream-milter   # Sendmail or Postfix smtpd_milters"
echo "  systemctl enable --now midstream-pop3     # POP3 front before Dovecot (or any POP3 server)"
