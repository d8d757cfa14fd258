#!/usr/bin/env bash
# Build one variant for one platform: the base image when its tag is new, then the
# runtime image FROM it (make image).
#
#   docker/build/image.sh VARIANT PLATFORM
#
# Tags, locally and in a registry:
#   $BASE_REPO:<variant>-<hash>         the base ($IMAGE-base); <hash> covers what it holds: the OS
#                                       image, the locked requirement set, the stages
#                                       and helpers that build it, the platform
#   $IMAGE:$VERSION-<variant>[-<arch>]  the runtime; -<arch> for a platform other than
#                                       this machine's (a local engine keeps one
#                                       platform per tag; the registry gets an index)
# The OS image of another platform is $BASE_IMAGE-<arch> when it exists locally (make
# base-offline PLATFORM=...), else $BASE_IMAGE, which BuildKit pulls for that platform.
set -euo pipefail
cd "$(dirname "$0")/../.."

variant=$1
platform=$2
: "${DOCKER:=docker}" "${IMAGE:=dbt-runner}" "${VERSION:=$(cat VERSION)}" "${UV:=uv}"
: "${BASE_IMAGE:=debian:bookworm-slim}" "${BASE_REPO:=$IMAGE-base}"
arch=${platform#linux/}
host_arch=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
suffix=$([ "$arch" = "$host_arch" ] && echo "" || echo "-$arch")
os_image=$BASE_IMAGE
if [ -n "$suffix" ] && "$DOCKER" image inspect "$BASE_IMAGE$suffix" >/dev/null 2>&1; then
  os_image=$BASE_IMAGE$suffix
fi

fail() {  # one line naming the step, then stop: no tag is ever made of a failed step
  echo "image.sh: $*" >&2
  exit 1
}

# What the base holds, each part its own step (a failure inside a pipe would otherwise
# hash nothing and give two lock files one tag).
requirements=$("$UV" export --frozen --no-dev --extra "$variant" --no-emit-project \
  --format requirements-txt --quiet) ||
  fail "'uv export' of the $variant requirements failed (UV=$UV): the base tag cannot be computed"
[ -n "$requirements" ] || fail "'uv export' gave no $variant requirements: the base tag cannot be computed"
stages=$(sed '/^# ---- the base the runtime builds on/q' Dockerfile) || fail "cannot read the Dockerfile"
helpers=$(cat docker/build/with-ca docker/build/slim-venv.sh docker/build/sbom.py) ||
  fail "cannot read the build helpers"
os_id=$("$DOCKER" image inspect --format '{{.Id}}' "$os_image" 2>/dev/null) || os_id=$os_image
base_hash=$(printf '%s\n' "$(grep -v '^#' <<<"$requirements")" "$stages" "$helpers" "$platform" \
  "$os_id" | sha256sum | cut -c1-12)
base_tag="$BASE_REPO:$variant-$base_hash"
dbt_version=$(awk '/^name = "dbt-core"$/ { getline; gsub(/version = |"/, ""); print; exit }' uv.lock)
secret=()
if [ -n "${BUILD_CA_BUNDLE:-}" ]; then secret=(--secret "id=ca_bundle,src=$BUILD_CA_BUNDLE"); fi

build() {
  DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --platform "$platform" \
    --build-arg BASE_IMAGE="$os_image" --build-arg VARIANT="$variant" "${secret[@]}" "$@" . >/dev/null
}

if "$DOCKER" image inspect "$base_tag" >/dev/null 2>&1; then
  echo "base    $base_tag (up to date)"
else
  echo "base    $base_tag"
  build --target base -t "$base_tag"
fi
echo "runtime $IMAGE:$VERSION-$variant$suffix"
build --target runtime -t "$IMAGE:$VERSION-$variant$suffix" \
  --build-arg RUNTIME_BASE="$base_tag" --build-arg BASE_REF="$base_tag" \
  --build-arg VERSION="$VERSION" --build-arg REVISION="${REVISION:-unknown}" \
  --build-arg CREATED="${CREATED:-1970-01-01T00:00:00Z}" --build-arg SOURCE="${SOURCE:-}" \
  --build-arg DBT_VERSION="$dbt_version" \
  --label io.dbt-runner.base="$base_tag"
