#!/usr/bin/env bash
# Build a stand-in for debian:bookworm-slim from Debian's own packages, for machines
# that can reach Debian's mirror but no image registry:
#   docker/build/base-offline.sh [IMAGE] [PLATFORM]     (make base-offline [PLATFORM=...])
# This machine's platform is debootstrapped and imported as IMAGE; another platform
# (linux/arm64 on x86, through QEMU user emulation) is made by mmdebstrap and built
# FROM scratch for that platform as IMAGE-<arch> (an engine without a multi-platform
# image store keeps one platform per tag). Like the official slim image: minimal
# packages, later apt installs skip docs, man pages and locales, no apt lists kept.
set -euo pipefail

IMAGE=${1:-debian:bookworm-slim}
PLATFORM=${2:-}
DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_SUITE:-bookworm}
host_arch=$(dpkg --print-architecture)
arch=${PLATFORM#linux/}
arch=${arch:-$host_arch}

need() {
  command -v "$1" >/dev/null && return
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${@:2}" >/dev/null
}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
if [ "$arch" = "$host_arch" ]; then
  need debootstrap debootstrap
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >/dev/null
else
  need mmdebstrap mmdebstrap
  need arch-test arch-test qemu-user-static binfmt-support
  # merged-usr hook: /usr merged as debootstrap does, without the usrmerge package (perl)
  mmdebstrap --quiet --architectures="$arch" --variant=minbase \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr "$SUITE" "$rootfs" "$MIRROR" >/dev/null
fi

cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
# As the official image's docker-clean: no downloaded .debs or package caches kept.
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
find "$rootfs/usr/share/doc" -mindepth 2 -not -name copyright -delete 2>/dev/null || true

if [ "$arch" = "$host_arch" ]; then
  tag=$IMAGE
  tar -C "$rootfs" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    - "$tag" >/dev/null
else
  tag=$IMAGE-$arch
  context=$(mktemp -d)
  trap 'rm -rf "$rootfs" "$context"' EXIT
  tar -C "$rootfs" -cf "$context/rootfs.tar" .
  printf 'FROM scratch\nADD rootfs.tar /\nENV PATH=%s\nCMD ["bash"]\n' \
    /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin >"$context/Dockerfile"
  DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --platform "linux/$arch" -t "$tag" "$context" >/dev/null
fi
echo "imported $tag ($("$DOCKER" image inspect --format '{{.Architecture}}, {{.Size}} bytes' "$tag"))"
