#!/bin/sh
# docker/dovecot/entrypoint.sh — the lab's Dovecot: seed user lab's maildir with the sample
# mails (docker/dovecot/seed.mjs: clean, EICAR, EICAR in a zip, a banned .exe; the same
# files at every start, so their numbers and UIDLs stay), then run Dovecot in the
# foreground (its log goes to `docker logs`).
set -eu
M=/var/lib/lab-mail/lab/Maildir
mkdir -p /run/dovecot "$M/cur" "$M/new" "$M/tmp"
node /opt/midstream/docker/dovecot/seed.mjs "$M/cur"
chown -R nobody:nogroup /var/lib/lab-mail
exec dovecot -F -c /opt/midstream/docker/dovecot/dovecot.conf
