#!/usr/bin/env bash
# What a make target needs on this machine, checked before it starts: one line per thing
# missing, each with what to do, then exit 1. `need.sh run` (make run: a Docker engine
# with BuildKit), `need.sh test` (make test: everything the suites start), `need.sh
# docker` (the engine alone). Every probe is bounded.
set -uo pipefail
: "${DOCKER:=docker}"
missing=()

engine() {  # the engine answers, and the client builds with BuildKit
  local said
  if ! said=$(timeout 10 "$DOCKER" version --format '{{.Server.Version}}' 2>&1); then
    said=$(grep -m1 -i "cannot connect\|error\|denied" <<<"$said" || echo "no answer")
    missing+=("Docker engine answers $DOCKER ($said): start one, or point DOCKER_HOST at it")
    return
  fi
  said=$(DOCKER_BUILDKIT=1 timeout 10 "$DOCKER" build - </dev/null 2>&1)
  if grep -qi "buildx component is missing" <<<"$said"; then
    missing+=("BuildKit in $DOCKER (no buildx plugin): install it, or use a client with BuildKit built in (Debian's docker.io: DOCKER=/usr/bin/docker)")
  fi
}

found() {  # found COMMAND WHAT
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}

case "${1:-}" in
  run | docker) engine ;;
  test)
    engine
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || found initdb "PostgreSQL's server (initdb): apt-get install postgresql"
    found docker-registry "an image registry (docker-registry): apt-get install docker-registry"
    found skopeo "skopeo (the release tests move image indexes): apt-get install skopeo"
    found chromium "Chromium (the run page's tests): apt-get install chromium"
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
      missing+=("arm64 emulation (qemu-aarch64 in binfmt_misc): apt-get install qemu-user-static binfmt-support")
    if [ ${#missing[@]} -eq 0 ]; then
      for base in "${BASE_IMAGE:-debian:bookworm-slim}" "${BASE_IMAGE:-debian:bookworm-slim}-arm64"; do
        "$DOCKER" image inspect "$base" >/dev/null 2>&1 ||
          missing+=("the base image $base: make base-offline$([[ $base == *-arm64 ]] && echo ' PLATFORM=linux/arm64') (from Debian's packages: apt-get install mmdebstrap)")
      done
    fi
    ;;
  *) echo "usage: need.sh run|test|docker" >&2; exit 2 ;;
esac

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$1" = test ]; then
  echo "make test: this machine lacks:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "  .ci/run provisions all of it on a fresh Debian machine." >&2
else  # one line, before anything builds
  echo "make $1: no ${missing[0]}; make run-local runs the same job without Docker (Python 3.11 only)" >&2
fi
exit 1
