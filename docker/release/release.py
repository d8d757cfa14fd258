"""Releases: push ticket-tagged images for every platform, and point environments at
them by digest.

    python docker/release/release.py release  --ticket DATA-123 --registry HOST/REPO
    python docker/release/release.py promote  --env prod --ticket DATA-123 --registry HOST/REPO
    python docker/release/release.py rollback --env prod --ticket DATA-100 --registry HOST/REPO
    python docker/release/release.py releases --registry HOST/REPO

Tags in the registry, per variant (each an image index holding every platform built):
    <VERSION>-<variant>            immutable: a version names one image (bump VERSION
                                   to release another)
    <VERSION>-<variant>-<TICKET>   immutable: never overwritten with another image
    <env>-<variant>                what an environment runs; promote/rollback move it
    ...-<TICKET>-<arch>            one platform's image, which the index lists
and in <REPO>-base, the base each runtime builds FROM, pushed only when new:
    <variant>-<hash of what it holds>

Images go up with `docker push`; the index is made with `docker manifest`; tags move
with skopeo (`copy --all --preserve-digests`): no pull, no rebuild, and the tag gets
exactly the ticket's digest, every platform included. Credentials: REGISTRY_USERNAME
/ REGISTRY_PASSWORD, else the docker login in $DOCKER_CONFIG (or ~/.docker).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("all", "redshift", "bigquery")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
TICKET = re.compile(r"^[A-Z][A-Z0-9]{1,15}-\d{1,9}$")
ENV = re.compile(r"^[a-z][a-z0-9]{0,19}$")
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class ReleaseError(Exception):
    """A refusal or failure, with a message that says what to do."""


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        what = " ".join(command[:3])
        raise ReleaseError(f"{what} failed: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


def docker(*args: str) -> str:
    return run(os.environ.get("DOCKER", "docker"), *args)


class Registry:
    """A repository in a registry, read and written with skopeo."""

    def __init__(self, reference: str) -> None:
        host, _, repository = reference.partition("/")
        if not host or not repository:
            raise ReleaseError(f"REGISTRY='{reference}': expected host[:port]/repository")
        self.reference, self.host = reference, host
        self.insecure = host.split(":")[0] in ("localhost", "127.0.0.1") or os.environ.get(
            "REGISTRY_INSECURE"
        ) in ("1", "true")

    def _access(self, role: str = "") -> list[str]:
        """skopeo's credential and TLS options (role: '', 'src-' or 'dest-')."""
        options = [f"--{role}tls-verify={'false' if self.insecure else 'true'}"]
        user, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
        if user and password:
            return [*options, f"--{role}creds", f"{user}:{password}"]
        config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
        return [*options, f"--{role}authfile", str(config)] if config.is_file() else options

    def _skopeo(self, *args: str) -> str:
        return run("skopeo", *args)

    def raw(self, tag: str) -> bytes | None:
        """A tag's manifest (or index) as stored; None when there is no such tag."""
        return self._inspect(f":{tag}")

    def _inspect(self, reference: str) -> bytes | None:
        """`:tag` or `@digest`, raw; None when the registry does not know it."""
        result = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                *self._access(),
                f"docker://{self.reference}{reference}",
            ],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            if b"manifest unknown" in result.stderr or b"not found" in result.stderr:
                return None
            error = result.stderr.decode().strip()[-300:]
            raise ReleaseError(f"{self.reference}{reference}: {error}")
        return result.stdout

    def digest(self, tag: str) -> str | None:
        raw = self.raw(tag)
        return "sha256:" + hashlib.sha256(raw).hexdigest() if raw is not None else None

    def tags(self) -> list[str]:
        try:
            listing = self._skopeo("list-tags", *self._access(), f"docker://{self.reference}")
        except ReleaseError as exc:
            if "name unknown" in str(exc) or "not found" in str(exc).lower():
                return []
            raise
        return sorted(json.loads(listing).get("Tags") or [])

    def image_ids(self, tag: str) -> set[str]:
        """The image ids (config digests) a tag holds, one per platform."""
        raw = self.raw(tag)
        if raw is None:
            return set()
        document = json.loads(raw)
        if document.get("mediaType") not in INDEX_TYPES and "manifests" not in document:
            return {document["config"]["digest"]}
        ids = set()
        for entry in document["manifests"]:
            child = self._inspect(f"@{entry['digest']}")
            if child is None:
                raise ReleaseError(f"{self.reference}:{tag} lists {entry['digest']}, which is gone")
            ids.add(json.loads(child)["config"]["digest"])
        return ids

    def copy(self, source_digest: str, tag: str) -> None:
        """Point `tag` at exactly `source_digest`, every platform of it included."""
        self._skopeo(
            "copy",
            "--all",
            "--preserve-digests",
            *self._access("src-"),
            *self._access("dest-"),
            f"docker://{self.reference}@{source_digest}",
            f"docker://{self.reference}:{tag}",
        )


def check_version(version: str) -> None:
    if not SEMVER.match(version):
        raise ReleaseError(
            f"VERSION='{version}' is not a semantic version (e.g. 1.4.0 or 2.0.0-rc.1)"
        )
    changelog = ROOT / "CHANGELOG.md"
    if f"## {version}" not in changelog.read_text():
        raise ReleaseError(f"CHANGELOG.md has no '## {version}' entry: describe the release first")


def check_built_as(tag: str, version: str) -> None:
    """The image says it is `version` (its OCI label, from VERSION at build time)."""
    label = '{{index .Config.Labels "org.opencontainers.image.version"}}'
    built = docker("image", "inspect", "--format", label, tag)
    if built != version:
        raise ReleaseError(
            f"{tag} was built as version '{built}', not {version}: rebuild it (make image) "
            "after setting VERSION"
        )


def check_ticket(ticket: str) -> None:
    if not TICKET.match(ticket):
        raise ReleaseError(f"TICKET='{ticket}' is not a ticket key like DATA-123")


def check_env(env: str) -> None:
    if not ENV.match(env):
        raise ReleaseError(f"ENV='{env}' must be a lower-case name like prod or staging")


def local_images(image: str, version: str, variant: str, platforms: list[str]) -> dict[str, str]:
    """{arch: local tag}: this machine's platform is untagged, another carries -<arch>."""
    images = {}
    for platform in platforms:
        arch = platform.removeprefix("linux/")
        images[arch] = f"{image}:{version}-{variant}" + ("" if arch == HOST_ARCH else f"-{arch}")
    return images


def push_base(registry: Registry, local: str) -> None:
    """Push the base the runtime was built FROM, when its tag is new there."""
    base = docker(
        "image", "inspect", "--format", '{{index .Config.Labels "io.dbt-runner.base"}}', local
    )
    if not base or ":" not in base:
        return
    repository = Registry(f"{registry.reference}-base")
    tag = base.rsplit(":", 1)[1]
    if repository.raw(tag) is not None:
        print(f"{repository.reference}:{tag} (base up to date)")
        return
    docker("tag", base, f"{repository.reference}:{tag}")
    docker("push", "--quiet", f"{repository.reference}:{tag}")
    print(f"{repository.reference}:{tag} (base pushed)")


def release_variant(
    registry: Registry, images: dict[str, str], version: str, variant: str, ticket: str
) -> None:
    immutable = f"{version}-{variant}-{ticket}"
    platform_tags = []
    for arch, local in images.items():
        push_base(registry, local)
        tag = f"{registry.reference}:{immutable}-{arch}"
        docker("tag", local, tag)
        docker("push", "--quiet", tag)
        platform_tags.append(tag)
    index = f"{registry.reference}:{immutable}"
    insecure = ["--insecure"] if registry.insecure else []
    if _has_local_manifest(index):  # a list left by an earlier, failed push
        docker("manifest", "rm", index)
    docker("manifest", "create", *insecure, index, *platform_tags)
    docker("manifest", "push", "--purge", *insecure, index)
    digest = registry.digest(immutable)
    if digest is None:
        raise ReleaseError(f"{index} is missing after the push")
    registry.copy(digest, f"{version}-{variant}")
    print(f"{index} {digest} ({', '.join(images)})")


def _has_local_manifest(index: str) -> bool:
    command = [os.environ.get("DOCKER", "docker"), "manifest", "inspect", index]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def release(
    registry: Registry,
    image: str,
    version: str,
    ticket: str,
    variants: list[str],
    platforms: list[str],
) -> None:
    check_version(version)
    check_ticket(ticket)
    # Every refusal before anything moves: a ticket tag is never overwritten.
    planned = []
    for variant in variants:
        images = local_images(image, version, variant, platforms)
        ids = {docker("image", "inspect", "--format", "{{.Id}}", tag) for tag in images.values()}
        for tag in images.values():
            check_built_as(tag, version)
        immutable = f"{version}-{variant}-{ticket}"
        existing = registry.image_ids(immutable)
        if existing and existing != ids:
            raise ReleaseError(
                f"{registry.reference}:{immutable} exists with another image "
                f"({registry.digest(immutable)}); ticket tags are immutable: release under a "
                "new ticket"
            )
        elsewhere = [
            tag
            for tag in registry.tags()
            if tag.endswith(f"-{variant}-{ticket}") and tag != immutable
        ]
        if elsewhere:
            raise ReleaseError(
                f"{ticket} was released already ({registry.reference}:{elsewhere[0]}); a "
                "ticket names one release: release under a new ticket"
            )
        released = registry.image_ids(f"{version}-{variant}")
        if released and released != ids:
            raise ReleaseError(
                f"{registry.reference}:{version}-{variant} already holds another image "
                f"({registry.digest(f'{version}-{variant}')}); a released version's tags never "
                "move: bump VERSION (and its CHANGELOG entry) to release this code"
            )
        planned.append((variant, images, bool(existing)))
    for variant, images, already in planned:
        if already:
            print(f"{registry.reference}:{version}-{variant}-{ticket} (already released)")
            continue
        release_variant(registry, images, version, variant, ticket)


def find_ticket(registry: Registry, ticket: str, variant: str) -> tuple[str, str]:
    check_ticket(ticket)
    suffix = f"-{variant}-{ticket}"
    matches = [tag for tag in registry.tags() if tag.endswith(suffix)]
    if not matches:
        raise ReleaseError(f"no release of {ticket} for variant {variant} in {registry.reference}")
    if len(matches) > 1:
        raise ReleaseError(f"{ticket} was released more than once ({', '.join(matches)})")
    digest = registry.digest(matches[0])
    if digest is None:
        raise ReleaseError(f"{registry.reference}:{matches[0]} vanished")
    return matches[0], digest


def point(registry: Registry, env: str, ticket: str, variants: list[str]) -> None:
    """Move <env>-<variant> to the ticket's image index, by digest."""
    check_env(env)
    targets = [(variant, *find_ticket(registry, ticket, variant)) for variant in variants]
    for variant, tag, digest in targets:
        env_tag = f"{env}-{variant}"
        previous = registry.digest(env_tag) or "nothing"
        registry.copy(digest, env_tag)
        print(f"{registry.reference}:{env_tag} -> {tag} {digest} (was {previous})")


VARIANT = "(" + "|".join(VARIANTS) + ")"
TICKET_TAG = re.compile(rf"(.+)-{VARIANT}-([A-Z][A-Z0-9]*-\d+)")
ENV_TAG = re.compile(rf"([a-z][a-z0-9]*)-{VARIANT}")


def releases(registry: Registry) -> None:
    """Every ticket's release, its digest, and the environments running it."""
    digests = {tag: registry.digest(tag) for tag in registry.tags()}
    running: dict[tuple[str, str | None], list[str]] = {}  # (variant, digest) -> environments
    for tag, digest in digests.items():
        match = ENV_TAG.fullmatch(tag)
        if match and digest is not None:
            running.setdefault((match.group(2), digest), []).append(match.group(1))
    print(f"{'TICKET':<14} {'VERSION':<10} {'VARIANT':<9} {'DIGEST':<20} ENVIRONMENTS")
    for tag, digest in digests.items():
        match = TICKET_TAG.fullmatch(tag)
        if not match or digest is None:
            continue
        version, variant, ticket = match.groups()
        envs = ", ".join(sorted(running.get((variant, digest), [])))
        print(f"{ticket:<14} {version:<10} {variant:<9} {digest[:19]:<20} {envs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=("release", "promote", "rollback", "releases"))
    parser.add_argument("--registry", required=True, help="host[:port]/repository")
    parser.add_argument("--ticket", default="")
    parser.add_argument("--env", default="")
    parser.add_argument("--image", default="dbt-runner", help="the local image name")
    parser.add_argument("--version", default=(ROOT / "VERSION").read_text().strip())
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--platforms", default=f"linux/{HOST_ARCH}", help="comma-separated")
    args = parser.parse_args(argv)
    try:
        registry = Registry(args.registry)
        if args.command == "release":
            platforms = [p for p in args.platforms.split(",") if p]
            release(registry, args.image, args.version, args.ticket, args.variants, platforms)
        elif args.command in ("promote", "rollback"):
            point(registry, args.env, args.ticket, args.variants)
        else:
            releases(registry)
    except ReleaseError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
