#!/bin/sh
# lab.sh — the docker-compose labs on this machine: npm run lab:up | lab:down | lab:test
# (docker-compose.yml) and, with --fleet, npm run lab:fleet:up | lab:fleet:down |
# lab:fleet:test (docker-compose.fleet.yml, the scale-out lab). Both run the same image.
#
#   lab.sh [--fleet] up           install what is missing (docker.io, docker-compose: apt, root; and
#                       debootstrap when a base image must be built), start dockerd if no engine answers (and remember that we did),
#                       make the base images (docker/base/base-images.sh: pull, else build
#                       locally), build the lab image, start the lab, wait until every
#                       service is healthy and every SMTP port greets, print the endpoints.
#   lab.sh [--fleet] down         remove the lab's containers, networks and volumes (images stay: they
#                       are the cache for the next `up`), then stop dockerd if `up` started it
#                       and no other lab project uses it.
#   lab.sh [--fleet] down --keep-engine   the same, but leave a dockerd that `up` started running.
#   lab.sh engine-stop  stop the dockerd that `up` started, unless another lab project uses it.
#   lab.sh build        only the base images and the lab image.
#   lab.sh [--fleet] compose ...  docker compose (v2) or docker-compose (1.29) with the lab's project.
#
# Environment: LAB_PROJECT (compose project, default midstream-lab; with --fleet
#   midstream-fleet), LAB_PORT_POSTFIX_BQ (2525), LAB_PORT_POSTFIX_MILTER (2526),
#   LAB_PORT_SENDMAIL (2527), LAB_PORT_SINK (8025), LAB_PORT_POP3 (2110: midstream pop3),
#   LAB_PORT_DOVECOT (2111: Dovecot direct); with --fleet FLEET_PORT_MX1 (2625),
#   FLEET_PORT_MX2 (2626), FLEET_PORT_SINK (8125), FLEET_PORT_MX1_METRICS (9457),
#   FLEET_PORT_MX2_METRICS (9458); LAB_PROFILES (comma list: mailpit, metrics — their
#   images must be pullable), LAB_STORAGE_DRIVER (for a dockerd we start; default:
#   dockerd's own choice, then vfs if containers cannot run), LAB_NPM_CA (CA bundle handed to npm ci as a build secret;
#   default $NODE_EXTRA_CA_CERTS, npm's cafile, or the system bundle).
# State under ${MIDSTREAM_CACHE:-~/.cache/midstream}/lab: engine/ (the dockerd we started:
#   pid, log), users/<project> (each project between `up` and `down`: a dockerd we started
#   is stopped only when no other project is listed — a listed project counts while it has
#   containers, or for 30 minutes after its `up` began, which covers a build), <project>/
#   (up.log, build.log).
# Errors: exits non-zero with a line saying what failed; `up` prints the failing services'
#   logs. Gaps: apt-get only (Debian/Ubuntu); elsewhere install Docker yourself.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FLEET=0
if [ "${1:-}" = --fleet ]; then FLEET=1; shift; fi
export LAB_STATE="${LAB_STATE:-${MIDSTREAM_CACHE:-$HOME/.cache/midstream}/lab}"
ENGINE_DIR="$LAB_STATE/engine"
USERS_DIR="$LAB_STATE/users"
IMAGE="midstream-lab/lab:${LAB_TAG:-dev}"
if [ $FLEET = 1 ]; then
  PROJECT="${LAB_PROJECT:-midstream-fleet}"
  COMPOSE_FILE="$ROOT/docker-compose.fleet.yml"
  export FLEET_PORT_MX1="${FLEET_PORT_MX1:-2625}" FLEET_PORT_MX2="${FLEET_PORT_MX2:-2626}" FLEET_PORT_SINK="${FLEET_PORT_SINK:-8125}"
  export FLEET_PORT_MX1_METRICS="${FLEET_PORT_MX1_METRICS:-9457}" FLEET_PORT_MX2_METRICS="${FLEET_PORT_MX2_METRICS:-9458}"
  DOWN_HINT="npm run lab:fleet:down"
else
  PROJECT="${LAB_PROJECT:-midstream-lab}"
  COMPOSE_FILE="$ROOT/docker-compose.yml"
  export LAB_PORT_POSTFIX_BQ="${LAB_PORT_POSTFIX_BQ:-2525}" LAB_PORT_POSTFIX_MILTER="${LAB_PORT_POSTFIX_MILTER:-2526}"
  export LAB_PORT_SENDMAIL="${LAB_PORT_SENDMAIL:-2527}" LAB_PORT_SINK="${LAB_PORT_SINK:-8025}"
  export LAB_PORT_POP3="${LAB_PORT_POP3:-2110}" LAB_PORT_DOVECOT="${LAB_PORT_DOVECOT:-2111}"
  DOWN_HINT="npm run lab:down"
fi
RUN_DIR="$LAB_STATE/$PROJECT"
T0=$(date +%s)
say() { echo "lab: [$(($(date +%s) - T0))s] $*" >&2; }
die() { echo "lab: $*" >&2; exit 1; }

# --- packages ------------------------------------------------------------------------
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_install() {
  missing=""
  for p in "$@"; do have_pkg "$p" || missing="$missing $p"; done
  [ -n "$missing" ] || return 0
  command -v apt-get >/dev/null || die "missing:$missing — install Docker (with compose) yourself on this system"
  [ "$(id -u)" = 0 ] || die "need root to install:$missing"
  say "apt-get install$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
engine_up() { docker info >/dev/null 2>&1; }
compose_v2() { docker compose version >/dev/null 2>&1; }
install_missing() {
  want=""
  { engine_up || command -v dockerd >/dev/null; } || want="$want docker.io"
  command -v docker >/dev/null || want="$want docker.io"
  { compose_v2 || command -v docker-compose >/dev/null; } || want="$want docker-compose"
  # debootstrap is installed by docker/base/base-images.sh when a base image cannot be pulled.
  [ -z "$want" ] || apt_install $want
}

# --- the engine ----------------------------------------------------------------------
# One engine serves every lab project (the main lab, the fleet, test runs of several
# checkouts), so who started it and who still uses it is kept once, not per project.
ours_pid() {
  [ -f "$ENGINE_DIR/dockerd.pid" ] || return 1
  pid=$(cat "$ENGINE_DIR/dockerd.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}
start_dockerd() {
  driver="${1:-${LAB_STORAGE_DRIVER:-}}"
  mkdir -p "$ENGINE_DIR"
  # No iptables and no default bridge: this machine has neither; compose's own bridge
  # networks and published ports (docker-proxy) work without them.
  set -- --iptables=false --bridge=none
  [ -z "$driver" ] || set -- "$@" --storage-driver="$driver"
  say "starting dockerd $*"
  nohup dockerd "$@" >"$ENGINE_DIR/dockerd.log" 2>&1 &
  echo $! >"$ENGINE_DIR/dockerd.pid"
  i=0
  until engine_up; do
    i=$((i + 1))
    kill -0 "$(cat "$ENGINE_DIR/dockerd.pid")" 2>/dev/null || { tail -20 "$ENGINE_DIR/dockerd.log" >&2; die "dockerd exited"; }
    [ $i -lt 120 ] || { tail -20 "$ENGINE_DIR/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
    sleep 0.5
  done
}
# This project uses the engine from `up` (or `build`) until `down`.
user_add() { mkdir -p "$USERS_DIR" && touch "$USERS_DIR/$PROJECT"; }
user_del() { rm -f "$USERS_DIR/$PROJECT"; }
# Other projects that still use the engine: with containers, or whose `up` began less than
# 30 minutes ago (it may still be building, with no container yet). A project that died
# without `down` and has no containers stops counting after those 30 minutes.
other_users() {
  [ -d "$USERS_DIR" ] || return 0
  for f in "$USERS_DIR"/*; do
    [ -f "$f" ] || continue
    p=${f##*/}
    [ "$p" != "$PROJECT" ] || continue
    if [ -n "$(find "$f" -mmin -30)" ] || [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$p" 2>/dev/null)" ]; then
      printf ' %s' "$p"
    else
      rm -f "$f"
    fi
  done
}
stop_dockerd() {
  pid=$(ours_pid) || { rm -f "$ENGINE_DIR/dockerd.pid"; return 0; }
  if [ "${1:-}" != force ]; then
    others=$(other_users)
    if [ -n "$others" ]; then say "leaving dockerd (pid $pid) running: in use by$others"; return 0; fi
  fi
  say "stopping dockerd (pid $pid, started by lab.sh up)"
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 120 ] || { kill -KILL "$pid" 2>/dev/null || true; break; }
    sleep 0.5
  done
  rm -f "$ENGINE_DIR/dockerd.pid"
}
ensure_engine() {
  engine_up && return 0
  command -v dockerd >/dev/null || die "no Docker engine answers and dockerd is not installed"
  [ "$(id -u)" = 0 ] || die "no Docker engine answers; starting dockerd needs root"
  start_dockerd
  # Can a container actually run on the driver dockerd picked? (Where overlayfs cannot be
  # mounted, only vfs works.) Probe once with the base image; fall back to vfs.
  if [ -z "${LAB_STORAGE_DRIVER:-}" ]; then
    drv=$(docker info -f '{{.Driver}}')
    if [ "$drv" != vfs ]; then
      "$ROOT/docker/base/base-images.sh"
      if ! docker run --rm --network none debian:12-slim true >/dev/null 2>&1; then
        say "containers do not run on $drv here; restarting dockerd with vfs"
        stop_dockerd force
        start_dockerd vfs
      fi
    fi
  fi
}

# --- images --------------------------------------------------------------------------
# BuildKit is needed (RUN --mount). Docker >= 23 has it through buildx; the 20.10 CLI of
# Debian's docker.io has it built in with DOCKER_BUILDKIT=1. A newer CLI without buildx
# (as on these machines, beside docker.io) cannot, so prefer the 20.10 one then.
pick_builder() {
  if docker buildx version >/dev/null 2>&1; then BUILD="docker build"; export LAB_BUILD="$BUILD"; return; fi
  for cli in docker /usr/bin/docker; do
    command -v "$cli" >/dev/null || continue
    major=$("$cli" version -f '{{.Client.Version}}' 2>/dev/null | sed 's/\..*//') || continue
    if [ -n "$major" ] && [ "$major" -lt 23 ]; then BUILD="env DOCKER_BUILDKIT=1 $cli build"; export LAB_BUILD="$BUILD"; return; fi
  done
  die "no BuildKit: install the docker buildx plugin, or Debian's docker.io (its CLI has BuildKit built in)"
}
npm_ca() {
  for f in "${LAB_NPM_CA:-}" "${NODE_EXTRA_CA_CERTS:-}" "$(npm config get cafile 2>/dev/null || true)" /etc/ssl/certs/ca-certificates.crt; do
    case "$f" in ''|null|undefined) continue ;; esac
    [ -s "$f" ] && { echo "$f"; return; }
  done
}
build_images() {
  "$ROOT/docker/base/base-images.sh"
  set -- --network host -t "$IMAGE" -f docker/Dockerfile
  ca=$(npm_ca || true)
  [ -z "$ca" ] || set -- "$@" --secret "id=npm_ca,src=$ca"
  say "building $IMAGE"
  mkdir -p "$RUN_DIR"
  if ! $BUILD --progress=plain "$@" . >"$RUN_DIR/build.log" 2>&1; then
    tail -40 "$RUN_DIR/build.log" >&2
    die "building $IMAGE failed (whole log: $RUN_DIR/build.log)"
  fi
}

# --- compose -------------------------------------------------------------------------
compose() {
  if compose_v2; then docker compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
  elif command -v docker-compose >/dev/null; then docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
  else die "neither 'docker compose' (v2) nor docker-compose (1.29) is installed"
  fi
}
services() { compose ps -q 2>/dev/null; }
wait_healthy() {
  i=0
  while :; do
    bad=""
    for id in $(services); do
      st=$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
      case "$st" in
        *" running healthy"|*" running none") ;;
        *" exited "*|*" dead "*) compose logs --no-color --tail 40 >&2 || true; die "service stopped: $st" ;;
        *) bad="$bad ${st%% *}" ;;
      esac
    done
    [ -n "$bad" ] || return 0
    i=$((i + 1))
    [ $i -lt 180 ] || { compose logs --no-color --tail 40 >&2 || true; die "not healthy after 3 minutes:$bad"; }
    sleep 1
  done
}

summary() {
  if [ $FLEET = 1 ]; then
    cat <<EOF
midstream fleet lab is up (project $PROJECT):
  SMTP 127.0.0.1:$FLEET_PORT_MX1   mx1: Postfix before-queue -> mx1-midstream
  SMTP 127.0.0.1:$FLEET_PORT_MX2   mx2: Postfix before-queue -> mx2-midstream
  metrics http://127.0.0.1:$FLEET_PORT_MX1_METRICS/metrics (mx1)  http://127.0.0.1:$FLEET_PORT_MX2_METRICS/metrics (mx2)
  sink http://127.0.0.1:$FLEET_PORT_SINK/   (JSON: /api/messages)
EOF
    case ",${LAB_PROFILES:-}," in *,metrics,*) echo "  Prometheus http://127.0.0.1:${FLEET_PORT_PROMETHEUS:-9190}/  Grafana http://127.0.0.1:${FLEET_PORT_GRAFANA:-3100}/" ;; esac
  else
    cat <<EOF
midstream lab is up (project $PROJECT):
  SMTP 127.0.0.1:$LAB_PORT_POSTFIX_BQ   Postfix before-queue -> midstream proxy
  SMTP 127.0.0.1:$LAB_PORT_POSTFIX_MILTER   Postfix -> midstream milter
  SMTP 127.0.0.1:$LAB_PORT_SENDMAIL   Sendmail -> midstream milter
  sink http://127.0.0.1:$LAB_PORT_SINK/   (JSON: /api/messages)
  POP3 127.0.0.1:$LAB_PORT_POP3   midstream pop3 -> Dovecot (user lab, password lab; Dovecot direct: $LAB_PORT_DOVECOT)
EOF
    case ",${LAB_PROFILES:-}," in *,mailpit,*) echo "  mailpit http://127.0.0.1:${LAB_PORT_MAILPIT:-8026}/" ;; esac
    case ",${LAB_PROFILES:-}," in *,metrics,*) echo "  Prometheus http://127.0.0.1:${LAB_PORT_PROMETHEUS:-9090}/  Grafana http://127.0.0.1:${LAB_PORT_GRAFANA:-3000}/" ;; esac
  fi
  echo "stop it with: $DOWN_HINT"
}

up() {
  install_missing
  pick_builder
  user_add
  ensure_engine
  build_images
  export COMPOSE_PROFILES="${LAB_PROFILES:-}"
  say "starting project $PROJECT"
  mkdir -p "$RUN_DIR"
  compose up -d --no-build --remove-orphans >"$RUN_DIR/up.log" 2>&1 || { cat "$RUN_DIR/up.log" >&2; die "compose up failed"; }
  wait_healthy
  if [ $FLEET = 1 ]; then
    node "$ROOT/docker/lab-wait.mjs" "$FLEET_PORT_MX1" "$FLEET_PORT_MX2" "http:$FLEET_PORT_SINK" \
      "http:$FLEET_PORT_MX1_METRICS/metrics" "http:$FLEET_PORT_MX2_METRICS/metrics"
  else
    node "$ROOT/docker/lab-wait.mjs" "$LAB_PORT_POSTFIX_BQ" "$LAB_PORT_POSTFIX_MILTER" "$LAB_PORT_SENDMAIL" "http:$LAB_PORT_SINK" "pop3:$LAB_PORT_POP3"
  fi
  say "ready"
  summary
}

down() {
  if engine_up; then
    # Every profile, so optional services started earlier go too.
    COMPOSE_PROFILES=mailpit,metrics compose down -v --remove-orphans --timeout 20 >&2
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
    left="$left$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")"
    left="$left$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")"
    [ -z "$left" ] || die "left behind after down: $left"
    say "project $PROJECT removed: no container, network or volume left"
  fi
  user_del
  [ "${1:-}" = --keep-engine ] || stop_dockerd
}

cmd="${1:-}"
[ $# -eq 0 ] || shift
case "$cmd" in
  up) up ;;
  down) down "$@" ;;
  engine-stop) stop_dockerd ;;
  build)
    install_missing; pick_builder; user_add; ensure_engine; build_images
    [ -n "$(services)" ] || user_del ;;
  compose) compose "$@" ;;
  *) echo "usage: lab.sh [--fleet] up | down [--keep-engine] | engine-stop | build | compose ARGS" >&2; exit 2 ;;
esac
