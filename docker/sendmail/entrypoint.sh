#!/bin/sh
# docker/sendmail/entrypoint.sh — render sendmail/midstream.mc.in for the lab, build the .cf
# with m4 and run Sendmail 8.17 (unpacked under /opt/sendmail) in the foreground on port 25.
#
# Lab-only edits after rendering (each checked, so a changed template fails loudly):
#   listen on all container addresses (the template binds 127.0.0.1);
#   relay to the sink service by name (the template relays to [127.0.0.1]).
# Names: the milter (S=inet:PORT@midstream-milter) and the sink ([sink]) are resolved by
#   Sendmail when it connects, through glibc (nsswitch "hosts: files dns": /etc/hosts, then
#   Docker's DNS), so a restarted service with a new address is found. Sendmail's own name
#   must be qualified and in /etc/hosts or it waits on DNS at start (compose gives it
#   hostname + domainname; this script checks); the network's gateway goes in /etc/hosts
#   too (below). compose's dns_opt bounds any other lookup that DNS cannot answer.
# Logs: Sendmail logs only through syslog; busybox syslogd turns /dev/log into lines on
#   stdout, so they show in `docker logs`.
set -eu
: "${MILTER_HOST:=midstream-milter}"
: "${MILTER_PORT:=7357}"
: "${SINK_HOST:=sink}"
: "${DIR:=/var/lib/midstream-lab/sendmail}"
: "${PORT:=25}"
: "${SINKPORT:=1025}"
: "${MILTER:=inet:$MILTER_PORT@$MILTER_HOST}"
: "${SENDMAIL_ROOT:=/opt/sendmail}"
export DIR PORT SINKPORT MILTER
die() { echo "entrypoint: $*" >&2; exit 1; }

fqdn=$(hostname -f 2>/dev/null || true)
case "$fqdn" in
  *.*) ;;
  *) die "host name '$fqdn' is not qualified: give the service a domainname (Sendmail would wait on DNS)" ;;
esac
grep -qw "$fqdn" /etc/hosts || die "$fqdn is not in /etc/hosts"
# Sendmail looks up every client's address (PTR). Mail from the host arrives through
# docker-proxy from this network's gateway, whose PTR query Docker's DNS forwards to a
# resolver that may never answer (each greeting ~10 s late): name the gateway here. The
# gateway cannot change while the container lives. (/proc/net/route: hex, little-endian.)
gw=$(awk '$2 == "00000000" && $3 != "00000000" { g = $3 } END { if (g != "") printf "%d.%d.%d.%d", "0x" substr(g, 7, 2), "0x" substr(g, 5, 2), "0x" substr(g, 3, 2), "0x" substr(g, 1, 2) }' /proc/net/route)
if [ -n "$gw" ] && ! grep -q "^$gw[[:space:]]" /etc/hosts; then
  printf '%s\tgateway.%s gateway\n' "$gw" "${fqdn#*.}" >> /etc/hosts
fi
printf 'hosts: files dns\n' > /etc/nsswitch.conf.hosts
grep -v '^hosts:' /etc/nsswitch.conf >> /etc/nsswitch.conf.hosts && mv /etc/nsswitch.conf.hosts /etc/nsswitch.conf

mkdir -p "$DIR/queue"
chmod 0700 "$DIR/queue"
# Sendmail's own service switch: host names from files only (no MX lookups; the sink is a
# bracketed SMART_HOST), aliases from files.
printf 'hosts files\naliases files\n' > "$DIR/service.switch"
cp /etc/hosts "$DIR/hosts"
printf 'postmaster: root\n' > "$DIR/aliases"
: > "$DIR/statistics"

/opt/midstream/docker/lab-render.sh /opt/midstream/sendmail/midstream.mc.in "$DIR/midstream.mc"
grep -q 'Addr=127.0.0.1' "$DIR/midstream.mc" || die "template no longer has Addr=127.0.0.1; update the lab"
grep -q "SMART_HOST', \`\[127.0.0.1\]'" "$DIR/midstream.mc" || die "template SMART_HOST changed; update the lab"
sed -i -e 's/Addr=127\.0\.0\.1/Addr=0.0.0.0/' -e "s/\[127\.0\.0\.1\]/[$SINK_HOST]/" "$DIR/midstream.mc"

CF="$SENDMAIL_ROOT/usr/share/sendmail/cf"
m4 -D_CF_DIR_="$CF/" "$CF/m4/cf.m4" "$DIR/midstream.mc" > "$DIR/sendmail.cf"
chmod 0644 "$DIR/sendmail.cf"
SM="$SENDMAIL_ROOT/usr/libexec/sendmail/sendmail"
"$SM" -C "$DIR/sendmail.cf" -bi >/dev/null 2>&1 || die "building the alias database failed"

busybox syslogd -n -O /dev/stdout &
echo "entrypoint: sendmail $fqdn on :$PORT, milter $MILTER, relaying to [$SINK_HOST]:$SINKPORT"
exec "$SM" -C "$DIR/sendmail.cf" -bD
