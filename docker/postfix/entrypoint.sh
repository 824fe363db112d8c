#!/bin/sh
# docker/postfix/entrypoint.sh — configure Postfix for the lab from the repo's templates
# (the same postfix/main.cf.in and postfix/master.cf.in that test/helpers/postfix.ts
# renders) and run it in the foreground, logging to stdout.
#
# LAB_MODE=before-queue: front smtpd on :25 proxies to midstream-proxy (smtpd_proxy_filter),
#   after-filter smtpd on :10026 takes the clean mail back from midstream-proxy.
# LAB_MODE=milter: the same instance without the proxy filter, plus postfix/milter.cf.in
#   (smtpd_milters → midstream-milter) applied as main.cf settings.
# Lab-only changes after rendering (the templates describe a loopback test instance):
#   services listen on all container addresses, not 127.0.0.1; the relayhost is the
#   sink service (SINK_HOST, resolved at delivery time); mynetworks and the after-filter's XFORWARD trust cover the compose
#   networks; the proxy filter points at the midstream-proxy container. Each edit is
#   checked, so a changed template fails loudly here instead of half-working.
set -eu
T=/opt/midstream/postfix
lab_render() { /opt/midstream/docker/lab-render.sh "$@"; }
OUT=/etc/postfix
: "${LAB_MODE:=before-queue}"
: "${LAB_HOSTNAME:=$(hostname)}"
: "${SINK_HOST:=sink}"
: "${LAB_NETWORKS:=127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16}"  # commas: master.cf -o values cannot hold spaces
: "${MIDSTREAM_PROXY:=midstream-proxy}"
# Values for the templates' placeholders (keep in sync with postfix/*.in).
: "${BASE_DIR:=/var/lib/postfix}"
: "${CONFIG_DIR:=/etc/postfix}"
: "${QUEUE_DIR:=/var/spool/postfix}"
: "${DATA_DIR:=/var/lib/postfix}"
: "${MAILLOG:=/dev/stdout}"
: "${MYHOSTNAME:=$LAB_HOSTNAME.midstream.lab}"
: "${MYDOMAIN:=midstream.lab}"
: "${SINK_PORT:=1025}"
: "${SMTP_PORT:=25}"
: "${FILTER_PORT:=10025}"
: "${REINJECT_PORT:=10026}"
: "${MESSAGE_SIZE_LIMIT:=52428800}"
: "${AFTER_RECIPIENT_RESTRICTIONS:=permit_mynetworks,reject}"
: "${MILTER:=inet:midstream-milter:7357}"
# The after-filter smtpd's smtpd_milters (midstream proxy's after-filter milter); empty = none.
: "${AFTER_FILTER_MILTER:=}"
export BASE_DIR CONFIG_DIR QUEUE_DIR DATA_DIR MAILLOG MYHOSTNAME MYDOMAIN SINK_PORT SMTP_PORT \
  FILTER_PORT REINJECT_PORT MESSAGE_SIZE_LIMIT AFTER_RECIPIENT_RESTRICTIONS MILTER AFTER_FILTER_MILTER

die() { echo "entrypoint: $*" >&2; exit 1; }

lab_render "$T/main.cf.in" "$OUT/main.cf"
lab_render "$T/master.cf.in" "$OUT/master.cf"

# master.cf: "127.0.0.1:PORT inet" services → "PORT inet" (all addresses).
for port in "$SMTP_PORT" "$REINJECT_PORT"; do
  grep -q "^127\.0\.0\.1:$port[[:space:]]" "$OUT/master.cf" || die "master.cf.in has no 127.0.0.1:$port service; update the lab"
  sed -i "s/^127\.0\.0\.1:$port\([[:space:]]\)/$port\1/" "$OUT/master.cf"
done
postconf -M "$SMTP_PORT/inet" >/dev/null || die "front smtpd $SMTP_PORT/inet missing"
postconf -P "$REINJECT_PORT/inet/smtpd_authorized_xforward_hosts=$LAB_NETWORKS" "$REINJECT_PORT/inet/mynetworks=$LAB_NETWORKS"

postconf -e \
  "inet_interfaces = all" \
  "mynetworks = $LAB_NETWORKS" \
  "relayhost = [$SINK_HOST]:$SINK_PORT" \
  "myhostname = $MYHOSTNAME"

case "$LAB_MODE" in
  before-queue)
    postconf -P "$SMTP_PORT/inet/smtpd_proxy_filter=$MIDSTREAM_PROXY:$FILTER_PORT"
    ;;
  milter)
    postconf -PX "$SMTP_PORT/inet/smtpd_proxy_filter"
    [ -f "$T/milter.cf.in" ] || die "postfix/milter.cf.in is missing from the image"
    lab_render "$T/milter.cf.in" "$OUT/milter.cf"
    # main.cf-style fragment: join continuation lines, drop comments, postconf -e each.
    awk '
      /^[ \t]*#/ || /^[ \t]*$/ { next }
      /^[ \t]/ { sub(/^[ \t]+/, " "); cur = cur $0; next }
      { if (cur != "") print cur; cur = $0 }
      END { if (cur != "") print cur }
    ' "$OUT/milter.cf" | while IFS= read -r line; do postconf -e "$line"; done
    ;;
  *) die "LAB_MODE must be before-queue or milter" ;;
esac

postconf -n >&2
postconf -M >&2
postfix check
exec postfix start-fg
