#!/bin/bash
# docker/lab-healthy.sh — the lab's compose healthchecks, cheap and free of side effects.
#   lab-healthy.sh listening PORT   something listens on TCP PORT in this container. Reads
#                                   /proc/net/tcp{,6}: no connection is made, so no daemon
#                                   logs a probe session every few seconds.
#   lab-healthy.sh clamd PORT       clamd on 127.0.0.1:PORT answers zPING with PONG (its
#                                   database is loaded).
# Exit 0 = healthy. bash for /dev/tcp.
set -eu
case "${1:-}" in
  listening)
    hex=$(printf ':%04X' "$2")
    # local_address is field 2, state 0A = LISTEN.
    awk -v p="$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
    ;;
  clamd)
    exec 3<>"/dev/tcp/127.0.0.1/$2"
    printf 'zPING\0' >&3
    [ "$(head -c 4 <&3)" = PONG ]
    ;;
  *) echo "usage: lab-healthy.sh listening PORT | clamd PORT" >&2; exit 2 ;;
esac
