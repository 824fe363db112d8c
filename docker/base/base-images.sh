#!/bin/sh
# docker/base/base-images.sh — make sure the two base images the lab builds FROM exist
# in the local engine: debian:12-slim and node:20-slim.
#
# Input: a running Docker engine; env LAB_BUILD (build command, default `docker build`),
#   LAB_DEBIAN_MIRROR (default http://deb.debian.org/debian), LAB_STATE (scratch dir,
#   default ~/.cache/midstream/lab).
# Output: the two images, tagged as above. An image already present is reused (the cache
#   between runs is the engine's own image store); else it is pulled; if the pull fails
#   (no registry reachable, as on the CI machines), it is built here:
#   - debian:12-slim: `debootstrap --variant=minbase bookworm` (root; installed with apt when
#     missing; ~30 s from the mirror),
#     slimmed like the official image (no docs, man pages, locales, apt lists), imported as
#     ONE layer with `docker import`.
#   - node:20-slim: FROM that debian:12-slim plus this host's node binary and npm, in ONE
#     COPY layer (vfs copies every layer whole, so fewer layers build faster).
# Errors: exits non-zero with a line naming what is missing (root, debootstrap where apt
#   cannot install it, node 20).
# Gaps: amd64/arm64 follow the host; the local node image has no yarn/corepack.
set -eu
STATE="${LAB_STATE:-${MIDSTREAM_CACHE:-$HOME/.cache/midstream}/lab}"
MIRROR="${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
T0=$(date +%s)
say() { echo "lab: base: [$(($(date +%s) - T0))s] $*" >&2; }
die() { echo "lab: $*" >&2; exit 1; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# A pull fails at once where no registry answers; the timeout covers a registry that hangs.
try_pull() { timeout 300 docker pull -q "$1" >/dev/null 2>&1; }

build_debian() {
  [ "$(id -u)" = 0 ] || die "no registry answers and building debian:12-slim with debootstrap needs root"
  if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || die "no registry answers and debootstrap is missing"
    say "apt-get install debootstrap"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; } ||
      die "installing debootstrap failed"
  fi
  mkdir -p "$STATE"
  work=$(mktemp -d "$STATE/debootstrap.XXXXXX")
  root="$work/rootfs"
  say "building debian:12-slim with debootstrap from $MIRROR (no registry reachable)"
  if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/log" 2>&1; then
    tail -20 "$work/log" >&2; rm -rf "$work"; die "debootstrap failed"
  fi
  # What the official slim image does: keep dpkg from unpacking docs, man pages and
  # locales from now on, drop the ones already there, and keep no apt lists or debs.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
CFG
  # Daemons installed later must not try to start inside a build.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<CFG
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
CFG
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/var/cache/apt/"* "$root/var/lib/apt/lists/"* \
    "$root/var/log/"*.log "$root/var/cache/debconf/"*-old
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  : >"$root/etc/hostname"; : >"$root/etc/resolv.conf"
  tar -C "$root" --numeric-owner -c . |
    docker import -c 'CMD ["bash"]' -c 'LABEL org.midstream.lab.base=debootstrap' - debian:12-slim >/dev/null
  rm -rf "$work"
  say "debian:12-slim built ($(docker image inspect -f '{{.Size}}' debian:12-slim | awk '{printf "%d MB", $1/1e6}'))"
}

build_node() {
  node=$(command -v node) || die "node is missing on this host: cannot make node:20-slim"
  node=$(readlink -f "$node")
  major=$("$node" -p 'process.versions.node.split(".")[0]')
  [ "$major" = 20 ] || die "host node is $("$node" --version); node:20-slim needs node 20 (or a reachable registry)"
  npm_dir=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "npm not found next to node ($npm_dir)"
  mkdir -p "$STATE"
  ctx=$(mktemp -d "$STATE/node-image.XXXXXX")
  mkdir -p "$ctx/tree/usr/local/bin" "$ctx/tree/usr/local/lib/node_modules"
  cp "$node" "$ctx/tree/usr/local/bin/node"
  cp -a "$npm_dir" "$ctx/tree/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/tree/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/tree/usr/local/bin/npx"
  say "building node:20-slim from debian:12-slim and this host's node $("$node" --version)"
  printf 'FROM debian:12-slim\nCOPY tree/ /\nCMD ["node"]\n' >"$ctx/Dockerfile"
  if ! ${LAB_BUILD:-docker build} -q -t node:20-slim --label org.midstream.lab.base=host-node "$ctx" >/dev/null; then
    rm -rf "$ctx"; die "building node:20-slim failed"
  fi
  rm -rf "$ctx"
}

if have_image debian:12-slim; then :
elif try_pull debian:12-slim; then say "pulled debian:12-slim"
else build_debian
fi
if have_image node:20-slim; then :
elif try_pull node:20-slim; then say "pulled node:20-slim"
else build_node
fi
