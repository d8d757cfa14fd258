"""Releases: push ticket-tagged images, and point environments at them by digest.

    python docker/release/release.py release  --ticket DATA-123 --registry HOST/REPO [--variants]
    python docker/release/release.py promote  --env prod --ticket DATA-123 --registry HOST/REPO
    python docker/release/release.py rollback --env prod --ticket DATA-100 --registry HOST/REPO
    python docker/release/release.py releases --registry HOST/REPO

Tags in the registry, per variant:
    <VERSION>-<variant>            the latest build of a version (moves)
    <VERSION>-<variant>-<TICKET>   immutable: never overwritten with another image
    <env>-<variant>                what an environment runs; promote/rollback move it

Promote and rollback copy a manifest under a new tag through the registry's HTTP API
(Docker Registry v2 / OCI distribution): no pull, no push, no rebuild, and the tag
gets exactly the ticket's digest. Images are pushed with `docker push`.
Credentials: REGISTRY_USERNAME / REGISTRY_PASSWORD, else ~/.docker/config.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("all", "redshift", "bigquery")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
TICKET = re.compile(r"^[A-Z][A-Z0-9]{1,15}-\d{1,9}$")
ENV = re.compile(r"^[a-z][a-z0-9]{0,19}$")
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


class ReleaseError(Exception):
    """A refusal or failure, with a message that says what to do."""


@dataclass
class Manifest:
    body: bytes
    media_type: str
    digest: str

    def config_digest(self) -> str | None:
        config = json.loads(self.body).get("config") or {}
        digest = config.get("digest")
        return str(digest) if digest else None


class Registry:
    """The few Registry v2 calls releases need, with basic or token auth."""

    def __init__(self, reference: str, timeout_s: float = 30) -> None:
        host, _, repository = reference.partition("/")
        if not host or not repository:
            raise ReleaseError(f"REGISTRY='{reference}': expected host[:port]/repository")
        self.reference = reference
        self.host = host
        self.repository = repository
        insecure = host.split(":")[0] in ("localhost", "127.0.0.1") or os.environ.get(
            "REGISTRY_INSECURE"
        ) in ("1", "true")
        self.base = f"{'http' if insecure else 'https'}://{host}/v2/{repository}"
        self.session = requests.Session()
        self.timeout_s = timeout_s
        self._token: str | None = None

    def _credentials(self) -> tuple[str, str] | None:
        user, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
        if user and password:
            return user, password
        config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
        try:
            auth = json.loads(config.read_text())["auths"][self.host]["auth"]
        except (OSError, KeyError, ValueError):
            return None
        name, _, secret = base64.b64decode(auth).decode().partition(":")
        return name, secret

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        response = self.session.request(
            method, url, headers=headers, timeout=self.timeout_s, **kwargs
        )
        if response.status_code == 401 and not self._token:
            self._authenticate(response.headers.get("WWW-Authenticate", ""))
            return self._request(method, url, headers=headers, **kwargs)
        return response

    def _authenticate(self, challenge: str) -> None:
        credentials = self._credentials()
        if challenge.lower().startswith("basic"):
            if credentials is None:
                raise ReleaseError(
                    f"{self.host} needs credentials: docker login, or REGISTRY_USERNAME/PASSWORD"
                )
            self.session.auth = credentials
            self._token = None
            return
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in fields:
            raise ReleaseError(f"{self.host} refused access ({challenge or 'no challenge'})")
        params = {key: value for key, value in fields.items() if key in ("service", "scope")}
        params.setdefault("scope", f"repository:{self.repository}:pull,push")
        response = requests.get(
            fields["realm"], params=params, auth=credentials, timeout=self.timeout_s
        )
        if response.status_code != 200:
            raise ReleaseError(f"{self.host}: token request failed (HTTP {response.status_code})")
        data = response.json()
        self._token = data.get("token") or data.get("access_token")

    def manifest(self, tag: str) -> Manifest | None:
        url = f"{self.base}/manifests/{tag}"
        response = self._request("GET", url, headers={"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ReleaseError(
                f"{self.reference}:{tag}: HTTP {response.status_code} reading the manifest"
            )
        digest = response.headers.get("Docker-Content-Digest") or ""
        return Manifest(response.content, response.headers["Content-Type"].split(";")[0], digest)

    def put_manifest(self, tag: str, manifest: Manifest) -> str:
        response = self._request(
            "PUT",
            f"{self.base}/manifests/{tag}",
            data=manifest.body,
            headers={"Content-Type": manifest.media_type},
        )
        if response.status_code not in (200, 201):
            raise ReleaseError(
                f"{self.reference}:{tag}: HTTP {response.status_code} writing the tag"
            )
        return response.headers.get("Docker-Content-Digest") or manifest.digest

    def tags(self) -> list[str]:
        response = self._request("GET", f"{self.base}/tags/list")
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise ReleaseError(f"{self.reference}: HTTP {response.status_code} listing tags")
        return sorted(response.json().get("tags") or [])

    def config(self, manifest: Manifest) -> dict[str, Any]:
        digest = manifest.config_digest()
        if digest is None:
            return {}
        response = self._request("GET", f"{self.base}/blobs/{digest}")
        return dict(response.json()) if response.status_code == 200 else {}


def docker(*args: str) -> str:
    command = [os.environ.get("DOCKER", "docker"), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReleaseError(f"docker {' '.join(args[:2])} failed: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


def check_version(version: str) -> None:
    if not SEMVER.match(version):
        raise ReleaseError(
            f"VERSION='{version}' is not a semantic version (e.g. 1.4.0 or 2.0.0-rc.1)"
        )
    changelog = ROOT / "CHANGELOG.md"
    if f"## {version}" not in changelog.read_text():
        raise ReleaseError(f"CHANGELOG.md has no '## {version}' entry: describe the release first")


def check_ticket(ticket: str) -> None:
    if not TICKET.match(ticket):
        raise ReleaseError(f"TICKET='{ticket}' is not a ticket key like DATA-123")


def check_env(env: str) -> None:
    if not ENV.match(env):
        raise ReleaseError(f"ENV='{env}' must be a lower-case name like prod or staging")


def release(registry: Registry, image: str, version: str, ticket: str, variants: list[str]) -> None:
    check_version(version)
    check_ticket(ticket)
    # Every refusal before anything moves: a ticket tag is never overwritten.
    plan = []
    for variant in variants:
        local = f"{image}:{version}-{variant}"
        image_id = docker("image", "inspect", "--format", "{{.Id}}", local)
        immutable = f"{version}-{variant}-{ticket}"
        existing = registry.manifest(immutable)
        if existing is not None and existing.config_digest() != image_id:
            raise ReleaseError(
                f"{registry.reference}:{immutable} exists with another image "
                f"({existing.digest}); ticket tags are immutable: release under a new ticket"
            )
        plan.append((variant, local, immutable, existing))
    for variant, local, immutable, existing in plan:
        for tag in (f"{version}-{variant}", immutable):
            docker("tag", local, f"{registry.reference}:{tag}")
            docker("push", "--quiet", f"{registry.reference}:{tag}")
        pushed = registry.manifest(immutable)
        if pushed is None:
            raise ReleaseError(f"{registry.reference}:{immutable} is missing after the push")
        state = "already released" if existing is not None else "released"
        print(f"{registry.reference}:{immutable} {pushed.digest} ({state})")


def find_ticket(registry: Registry, ticket: str, variant: str) -> tuple[str, Manifest]:
    check_ticket(ticket)
    suffix = f"-{variant}-{ticket}"
    matches = [tag for tag in registry.tags() if tag.endswith(suffix)]
    if not matches:
        raise ReleaseError(f"no release of {ticket} for variant {variant} in {registry.reference}")
    if len(matches) > 1:
        raise ReleaseError(f"{ticket} was released more than once ({', '.join(matches)})")
    manifest = registry.manifest(matches[0])
    if manifest is None:
        raise ReleaseError(f"{registry.reference}:{matches[0]} vanished")
    return matches[0], manifest


def point(registry: Registry, env: str, ticket: str, variants: list[str]) -> None:
    """Move <env>-<variant> to the ticket's image, by digest."""
    check_env(env)
    targets = [(variant, *find_ticket(registry, ticket, variant)) for variant in variants]
    for variant, tag, manifest in targets:
        env_tag = f"{env}-{variant}"
        before = registry.manifest(env_tag)
        digest = registry.put_manifest(env_tag, manifest)
        previous = before.digest if before else "nothing"
        print(f"{registry.reference}:{env_tag} -> {tag} {digest} (was {previous})")


VARIANT = "(" + "|".join(VARIANTS) + ")"
TICKET_TAG = re.compile(rf"(.+)-{VARIANT}-([A-Z][A-Z0-9]*-\d+)")
ENV_TAG = re.compile(rf"([a-z][a-z0-9]*)-{VARIANT}")


def releases(registry: Registry) -> None:
    """Every ticket's release, its digest, and the environments running it."""
    manifests = {tag: registry.manifest(tag) for tag in registry.tags()}
    running: dict[tuple[str, str], list[str]] = {}  # (variant, digest) -> environments
    for tag, manifest in manifests.items():
        match = ENV_TAG.fullmatch(tag)
        if match and manifest is not None:
            running.setdefault((match.group(2), manifest.digest), []).append(match.group(1))
    print(f"{'TICKET':<14} {'VERSION':<10} {'VARIANT':<9} {'DIGEST':<20} ENVIRONMENTS")
    for tag, manifest in manifests.items():
        match = TICKET_TAG.fullmatch(tag)
        if not match or manifest is None:
            continue
        version, variant, ticket = match.groups()
        envs = ", ".join(sorted(running.get((variant, manifest.digest), [])))
        print(f"{ticket:<14} {version:<10} {variant:<9} {manifest.digest[:19]:<20} {envs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("release", "promote", "rollback", "releases"))
    parser.add_argument("--registry", required=True, help="host[:port]/repository")
    parser.add_argument("--ticket", default="")
    parser.add_argument("--env", default="")
    parser.add_argument("--image", default="dbt-runner", help="the local image name")
    parser.add_argument("--version", default=(ROOT / "VERSION").read_text().strip())
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)
    try:
        registry = Registry(args.registry)
        if args.command == "release":
            release(registry, args.image, args.version, args.ticket, args.variants)
        elif args.command in ("promote", "rollback"):
            point(registry, args.env, args.ticket, args.variants)
        else:
            releases(registry)
    except ReleaseError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:
        print(f"release: error: registry {args.registry} unreachable: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
