#!/bin/sh
# docker/sendmail/entrypoint.sh — render sendmail/midstream.mc.in for the lab, build
# the .cf with m4 and run Sendmail in the foreground on port 25.
# Lab-only edits after rendering (each checked, so a changed template fails loudly):
#   listen on all container addresses (the template binds 127.0.0.1);
#   relay to the mailpit sink instead of 127.0.0.1.
# Host names are resolved here because the instance's service.switch uses files only.
set -eu
resolve() { getent hosts "$1" | awk '{print $1; exit}'; }
: "${MILTER_HOST:=midstream-milter}"
: "${MILTER_PORT:=7357}"
: "${SINK_HOST:=sink}"
: "${DIR:=/var/lib/midstream-lab/sendmail}"
: "${PORT:=25}"
: "${SINKPORT:=1025}"
milter_ip=$(resolve "$MILTER_HOST") || true
sink_ip=$(resolve "$SINK_HOST") || true
[ -n "$milter_ip" ] && [ -n "$sink_ip" ] || { echo "entrypoint: cannot resolve $MILTER_HOST or $SINK_HOST" >&2; exit 1; }
: "${MILTER:=inet:$MILTER_PORT@$milter_ip}"
export DIR PORT SINKPORT MILTER

mkdir -p "$DIR/queue"
chmod 0700 "$DIR/queue"
printf 'hosts files\naliases files\n' > "$DIR/service.switch"
# Sendmail wants a qualified name for itself ($j): give the container one.
self_ip=$(hostname -i | awk '{print $1}')
printf '127.0.0.1 localhost\n%s %s.midstream.lab %s\n%s %s\n%s %s\n' "$self_ip" "$(hostname)" "$(hostname)" \
  "$milter_ip" "$MILTER_HOST" "$sink_ip" "$SINK_HOST" > "$DIR/hosts"
printf 'postmaster: root\n' > "$DIR/aliases"
: > "$DIR/statistics"

lab-render /opt/midstream/sendmail/midstream.mc.in "$DIR/midstream.mc"
grep -q 'Addr=127.0.0.1' "$DIR/midstream.mc" || { echo "entrypoint: template no longer has Addr=127.0.0.1; update the lab" >&2; exit 1; }
grep -q "SMART_HOST', \`\[127.0.0.1\]'" "$DIR/midstream.mc" || { echo "entrypoint: template SMART_HOST changed; update the lab" >&2; exit 1; }
sed -i -e 's/Addr=127\.0\.0\.1/Addr=0.0.0.0/' -e "s/\[127\.0\.0\.1\]/[$sink_ip]/" "$DIR/midstream.mc"

m4 -D_CF_DIR_=/usr/share/sendmail/cf/ /usr/share/sendmail/cf/m4/cf.m4 "$DIR/midstream.mc" > "$DIR/sendmail.cf"
chmod 0644 "$DIR/sendmail.cf"
/usr/sbin/sendmail -C "$DIR/sendmail.cf" -bi || true   # build the aliases db
echo "entrypoint: sendmail on :$PORT, milter $MILTER, relaying to $sink_ip:$SINKPORT"
exec /usr/sbin/sendmail -C "$DIR/sendmail.cf" -bD -O LogLevel=14
