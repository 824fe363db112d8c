#!/bin/sh
# lab.sh — the docker-compose lab on this machine: npm run lab:up | lab:down | lab:test.
#
#   lab.sh up           install what is missing (docker.io, docker-compose: apt, root; and
#                       debootstrap when a base image must be built), start dockerd if no engine answers (and remember that we did),
#                       make the base images (docker/base/base-images.sh: pull, else build
#                       locally), build the lab image, start the lab, wait until every
#                       service is healthy and every SMTP port greets, print the endpoints.
#   lab.sh down         remove the lab's containers, networks and volumes (images stay: they
#                       are the cache for the next `up`), then stop dockerd if `up` started it.
#   lab.sh down --keep-engine   the same, but leave a dockerd that `up` started running.
#   lab.sh engine-stop  stop the dockerd that `up` started (nothing else).
#   lab.sh build        only the base images and the lab image.
#   lab.sh compose ...  docker compose (v2) or docker-compose (1.29) with the lab's project.
#
# Environment: LAB_PROJECT (compose project, default midstream-lab), LAB_PORT_POSTFIX_BQ
#   (2525), LAB_PORT_POSTFIX_MILTER (2526), LAB_PORT_SENDMAIL (2527), LAB_PORT_SINK (8025),
#   LAB_PORT_POP3 (2110: midstream pop3), LAB_PORT_DOVECOT (2111: Dovecot direct),
#   LAB_PROFILES (comma list: mailpit, metrics — their images must be pullable),
#   LAB_STORAGE_DRIVER (for a dockerd we start; default: dockerd's own choice, then vfs if
#   containers cannot run), LAB_NPM_CA (CA bundle handed to npm ci as a build secret;
#   default $NODE_EXTRA_CA_CERTS, npm's cafile, or the system bundle).
# State (dockerd we started: pid, log): ${MIDSTREAM_CACHE:-~/.cache/midstream}/lab/<project>.
# Errors: exits non-zero with a line saying what failed; `up` prints the failing services'
#   logs. Gaps: apt-get only (Debian/Ubuntu); elsewhere install Docker yourself.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROJECT="${LAB_PROJECT:-midstream-lab}"
export LAB_STATE="${LAB_STATE:-${MIDSTREAM_CACHE:-$HOME/.cache/midstream}/lab}"
RUN_DIR="$LAB_STATE/$PROJECT"
IMAGE="midstream-lab/lab:${LAB_TAG:-dev}"
export LAB_PORT_POSTFIX_BQ="${LAB_PORT_POSTFIX_BQ:-2525}" LAB_PORT_POSTFIX_MILTER="${LAB_PORT_POSTFIX_MILTER:-2526}"
export LAB_PORT_SENDMAIL="${LAB_PORT_SENDMAIL:-2527}" LAB_PORT_SINK="${LAB_PORT_SINK:-8025}"
export LAB_PORT_POP3="${LAB_PORT_POP3:-2110}" LAB_PORT_DOVECOT="${LAB_PORT_DOVECOT:-2111}"
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
ours_pid() {
  [ -f "$RUN_DIR/dockerd.pid" ] || return 1
  pid=$(cat "$RUN_DIR/dockerd.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}
start_dockerd() {
  driver="${1:-${LAB_STORAGE_DRIVER:-}}"
  mkdir -p "$RUN_DIR"
  # No iptables and no default bridge: this machine has neither; compose's own bridge
  # networks and published ports (docker-proxy) work without them.
  set -- --iptables=false --bridge=none
  [ -z "$driver" ] || set -- "$@" --storage-driver="$driver"
  say "starting dockerd $*"
  nohup dockerd "$@" >"$RUN_DIR/dockerd.log" 2>&1 &
  echo $! >"$RUN_DIR/dockerd.pid"
  i=0
  until engine_up; do
    i=$((i + 1))
    kill -0 "$(cat "$RUN_DIR/dockerd.pid")" 2>/dev/null || { tail -20 "$RUN_DIR/dockerd.log" >&2; die "dockerd exited"; }
    [ $i -lt 120 ] || { tail -20 "$RUN_DIR/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
    sleep 0.5
  done
}
stop_dockerd() {
  pid=$(ours_pid) || { rm -f "$RUN_DIR/dockerd.pid"; return 0; }
  say "stopping dockerd (pid $pid, started by lab:up)"
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 120 ] || { kill -KILL "$pid" 2>/dev/null || true; break; }
    sleep 0.5
  done
  rm -f "$RUN_DIR/dockerd.pid"
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
        stop_dockerd
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
  mkdir -p "$LAB_STATE"
  if ! $BUILD --progress=plain "$@" . >"$LAB_STATE/build.log" 2>&1; then
    tail -40 "$LAB_STATE/build.log" >&2
    die "building $IMAGE failed (whole log: $LAB_STATE/build.log)"
  fi
}

# --- compose -------------------------------------------------------------------------
compose() {
  if compose_v2; then docker compose -p "$PROJECT" -f "$ROOT/docker-compose.yml" "$@"
  elif command -v docker-compose >/dev/null; then docker-compose -p "$PROJECT" -f "$ROOT/docker-compose.yml" "$@"
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

up() {
  install_missing
  pick_builder
  ensure_engine
  build_images
  export COMPOSE_PROFILES="${LAB_PROFILES:-}"
  say "starting project $PROJECT"
  compose up -d --no-build --remove-orphans >"$LAB_STATE/up.log" 2>&1 || { cat "$LAB_STATE/up.log" >&2; die "compose up failed"; }
  wait_healthy
  node "$ROOT/docker/lab-wait.mjs" "$LAB_PORT_POSTFIX_BQ" "$LAB_PORT_POSTFIX_MILTER" "$LAB_PORT_SENDMAIL" "http:$LAB_PORT_SINK" "pop3:$LAB_PORT_POP3"
  say "ready"
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
  echo "stop it with: npm run lab:down"
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
  [ "${1:-}" = --keep-engine ] || stop_dockerd
}

cmd="${1:-}"
[ $# -eq 0 ] || shift
case "$cmd" in
  up) up ;;
  down) down "$@" ;;
  engine-stop) stop_dockerd ;;
  build) install_missing; pick_builder; ensure_engine; build_images ;;
  compose) compose "$@" ;;
  *) echo "usage: lab.sh up | down [--keep-engine] | engine-stop | build | compose ARGS" >&2; exit 2 ;;
esac
