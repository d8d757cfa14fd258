"""Releases against a real registry (Debian's docker-registry on 127.0.0.1, with a
login): two releases, promote, rollback, pull by ticket tag, digests asserted."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import requests

from tests.sanity.conftest import ARM64_VARIANT, DOCKER, VERSION, docker, image_of
from tests.support import ROOT, free_port

# The version before this one in CHANGELOG.md: releases of two versions, as a team makes.
EARLIER = re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M)[1]
USER, PASSWORD = "releaser", "s3cret-" + os.urandom(4).hex()
REPOSITORY = "dbt-runner"
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


@dataclass
class Registry:
    host: str
    env: dict[str, str]  # with DOCKER_CONFIG holding the login

    @property
    def reference(self) -> str:
        return f"{self.host}/{REPOSITORY}"

    def manifest(self, tag: str, repository: str = REPOSITORY) -> requests.Response:
        """What the registry serves for a tag: an image index (one per release) or a
        platform's manifest."""
        return requests.get(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            auth=(USER, PASSWORD),
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            timeout=10,
        )

    def digest(self, tag: str, repository: str = REPOSITORY) -> str | None:
        response = self.manifest(tag, repository)
        return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None

    def platforms(self, tag: str) -> list[str]:
        """The platforms of the index a tag points at."""
        index = self.manifest(tag).json()
        return sorted(
            f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]
        )


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail(
            "docker-registry is not installed: run .ci/run, or apt-get install docker-registry"
        )
    base = Path(tempfile.mkdtemp(prefix="dbt-runner-registry-"))
    (base / "htpasswd").write_text(
        f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode()}\n"
    )
    port = free_port()
    (base / "config.yml").write_text(
        json.dumps(  # JSON is YAML
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(base / "data")}},
                "http": {"addr": f"127.0.0.1:{port}"},
                "auth": {"htpasswd": {"realm": "dbt-runner", "path": str(base / "htpasswd")}},
            }
        )
    )
    with (base / "log").open("w") as log:
        process = subprocess.Popen(
            [binary, "serve", str(base / "config.yml")], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded wait for the registry to answer (401: up, wants a login)
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                base / "log"
            ).read_text()
            time.sleep(0.2)
        env = dict(os.environ, DOCKER=DOCKER, DOCKER_CONFIG=str(base / "docker-config"))
        login = subprocess.run(
            [DOCKER, "login", f"127.0.0.1:{port}", "-u", USER, "--password-stdin"],
            input=PASSWORD,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert login.returncode == 0, login.stderr
        yield Registry(f"127.0.0.1:{port}", env)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def make(
    registry: Registry, *args: str, variant: str = "all", image: str = "reltest"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            *args,
            f"REGISTRY={registry.reference}",
            f"IMAGE={image}",
            f"VARIANT={variant}",
        ],
        cwd=ROOT,
        env=registry.env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_release_promote_rollback_and_pull(registry: Registry, image: str) -> None:
    # Release 1: the image as built at the earlier version in CHANGELOG.md.
    build_as(image, f"reltest:{EARLIER}-all", EARLIER)
    first = make(registry, "release", "TICKET=DATA-100", f"VERSION={EARLIER}")
    assert first.returncode == 0, first.stdout + first.stderr
    digest_100 = registry.digest(f"{EARLIER}-all-DATA-100")
    assert digest_100 and digest_100 in first.stdout
    assert registry.digest(f"{EARLIER}-all") == digest_100

    # Another build under the same version is refused: a released version's tags never
    # move to other code, whatever the ticket.
    build_as(image, f"reltest:{EARLIER}-all", EARLIER, label="second")
    moved = make(registry, "release", "TICKET=DATA-123", f"VERSION={EARLIER}")
    assert moved.returncode != 0
    assert f"{EARLIER}-all already holds another image" in moved.stderr
    assert "bump VERSION" in moved.stderr
    assert registry.digest(f"{EARLIER}-all-DATA-123") is None
    assert registry.digest(f"{EARLIER}-all") == digest_100

    # An image that says it is another version is refused too.
    docker("tag", f"reltest:{EARLIER}-all", f"reltest:{VERSION}-all", check=True)
    mislabelled = make(registry, "release", "TICKET=DATA-123")
    assert mislabelled.returncode != 0
    assert f"was built as version '{EARLIER}', not {VERSION}" in mislabelled.stderr

    # Release 2: the next version's build.
    build_as(image, f"reltest:{VERSION}-all", VERSION, label="second")
    second = make(registry, "release", "TICKET=DATA-123")
    assert second.returncode == 0, second.stdout + second.stderr
    digest_123 = registry.digest(f"{VERSION}-all-DATA-123")
    assert digest_123 and digest_123 != digest_100
    assert registry.digest(f"{VERSION}-all") == digest_123
    assert registry.digest(f"{EARLIER}-all") == digest_100

    # A ticket names one release: DATA-100 again, under this version, is refused, and
    # nothing moves.
    again = make(registry, "release", "TICKET=DATA-100")
    assert again.returncode != 0
    assert "DATA-100 was released already" in again.stderr and "new ticket" in again.stderr
    assert registry.digest(f"{VERSION}-all-DATA-100") is None
    assert registry.digest(f"{EARLIER}-all-DATA-100") == digest_100
    assert registry.digest(f"{VERSION}-all") == digest_123

    # Promote, then roll back: the environment tag follows the tickets' digests.
    promoted = make(registry, "promote", "ENV=prod", "TICKET=DATA-123")
    assert promoted.returncode == 0, promoted.stderr
    assert registry.digest("prod-all") == digest_123
    rolled_back = make(registry, "rollback", "ENV=prod", "TICKET=DATA-100")
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert registry.digest("prod-all") == digest_100
    assert f"was {digest_123}" in rolled_back.stdout

    listing = make(registry, "releases")
    assert listing.returncode == 0, listing.stderr
    rows = {
        line.split()[0]: line.split() for line in listing.stdout.splitlines()[2:] if line.strip()
    }
    assert rows["DATA-100"][1:3] == [EARLIER, "all"] and rows["DATA-100"][-1] == "prod"
    assert rows["DATA-123"][3] == digest_123[:19] and len(rows["DATA-123"]) == 4  # no env

    # Pull by ticket tag and by environment tag: the digests, and the image works.
    for tag in (f"{EARLIER}-all-DATA-100", "prod-all"):
        reference = f"{registry.reference}:{tag}"
        docker("rmi", reference)
        pulled = subprocess.run(
            [DOCKER, "pull", "-q", reference],
            env=registry.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert pulled.returncode == 0, pulled.stderr
        digests = json.loads(
            docker(
                "image", "inspect", "--format", "{{json .RepoDigests}}", reference, check=True
            ).stdout
        )
        assert f"{registry.reference}@{digest_100}" in digests
    ran = docker("run", "--rm", f"{registry.reference}:prod-all", "version")
    assert ran.returncode == 0 and ran.stdout.startswith("dbt-runner ")
    label = '{{index .Config.Labels "org.opencontainers.image.version"}}'
    pulled_as = docker("image", "inspect", "--format", label, f"{registry.reference}:prod-all")
    assert pulled_as.stdout.strip() == EARLIER
    docker(
        "rmi",
        f"reltest:{EARLIER}-all",
        f"reltest:{VERSION}-all",
        f"{registry.reference}:{VERSION}-all",
        f"{registry.reference}:{VERSION}-all-DATA-123",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["release", "TICKET=data_1"], "TICKET='data_1' is not a ticket key like DATA-123"),
        (["release", "TICKET="], "TICKET='' is not a ticket key"),
        (["promote", "ENV=Prod!", "TICKET=DATA-1"], "ENV='Prod!' must be a lower-case name"),
        (["promote", "ENV=prod", "TICKET=DATA-999"], "no release of DATA-999 for variant all"),
    ],
)
def test_release_refuses_bad_input(registry: Registry, args: list[str], message: str) -> None:
    result = make(registry, *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_release_refuses_a_version_without_changelog(registry: Registry) -> None:
    def release(version: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "docker/release/release.py",
            "release",
            "--registry",
            registry.reference,
        ]
        command += ["--ticket", "DATA-1", "--version", version, "--variants", "all"]
        return subprocess.run(
            command, cwd=ROOT, env=registry.env, capture_output=True, text=True, check=False
        )

    unlisted = release("9.9.9")
    assert unlisted.returncode == 2
    assert "CHANGELOG.md has no '## 9.9.9' entry" in unlisted.stderr
    malformed = release("1.0")
    assert malformed.returncode == 2
    assert "VERSION='1.0' is not a semantic version" in malformed.stderr


def build_as(
    source: str, target: str, version: str, label: str | None = None, arm64: bool = False
) -> None:
    """`target`: `source` as built at `version` (its OCI label), another image again when
    `label` is given."""
    platform = ["--platform", "linux/arm64"] if arm64 else []
    lines = [f"FROM {source}", f"LABEL org.opencontainers.image.version={version}"]
    if label is not None:
        lines.append(f"LABEL io.dbt-runner.build={label}")
    build = subprocess.run(
        [DOCKER, "build", "-q", *platform, "-t", target, "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr


def test_release_both_platforms_and_move_the_index(registry: Registry, arm64_image: str) -> None:
    variant = ARM64_VARIANT
    platforms = "PLATFORMS=linux/amd64,linux/arm64"
    tickets = {}
    for ticket, label, version in (("DATA-200", None, EARLIER), ("DATA-201", "second", VERSION)):
        local = f"multi:{version}-{variant}"
        build_as(image_of(variant), local, version, label)
        build_as(arm64_image, f"{local}-arm64", version, label, arm64=True)
        released = make(
            registry,
            "release",
            f"TICKET={ticket}",
            f"VERSION={version}",
            platforms,
            variant=variant,
            image="multi",
        )
        assert released.returncode == 0, released.stdout + released.stderr
        tag = f"{version}-{variant}-{ticket}"
        assert registry.platforms(tag) == ["linux/amd64", "linux/arm64"]
        tickets[ticket] = registry.digest(tag)
    # The bases went up once each, with the first release; the second found them there.
    assert released.stdout.count("(base up to date)") == 2
    base = docker(
        "image", "inspect", "--format", '{{index .Config.Labels "io.dbt-runner.base"}}', arm64_image
    ).stdout.strip()
    assert registry.digest(base.split(":")[1], repository=f"{REPOSITORY}-base") is not None

    # Either architecture pulls its own image from the same ticket tag.
    reference = f"{registry.reference}:{EARLIER}-{variant}-DATA-200"
    pulled = subprocess.run(
        [DOCKER, "pull", "-q", "--platform", "linux/arm64", reference],
        env=registry.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert (
        docker("image", "inspect", "--format", "{{.Architecture}}", reference).stdout.strip()
        == "arm64"
    )
    ran = docker("run", "--rm", "--platform", "linux/arm64", reference, "version")
    assert ran.returncode == 0 and ran.stdout.startswith("dbt-runner ")

    # Promote and roll back move the whole index, by digest.
    for verb, ticket in (("promote", "DATA-201"), ("rollback", "DATA-200")):
        moved = make(registry, verb, "ENV=prod", f"TICKET={ticket}", variant=variant, image="multi")
        assert moved.returncode == 0, moved.stderr
        assert registry.digest(f"prod-{variant}") == tickets[ticket]
        assert registry.platforms(f"prod-{variant}") == ["linux/amd64", "linux/arm64"]
    for version in (EARLIER, VERSION):
        docker("rmi", f"multi:{version}-{variant}", f"multi:{version}-{variant}-arm64")
    docker("rmi", reference)
