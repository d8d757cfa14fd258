"""What every image carries, on every platform: a valid CycloneDX bill of materials that
agrees with `version --json`, the same metadata on arm64 (under QEMU emulation), a demo
job that runs there, and a base that an entrypoint change leaves alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.sanity.conftest import ARM64_VARIANT, UID, VARIANTS, VERSION, docker, env_flags, image_of
from tests.support import PHASES_OK, ROOT, Postgres, read_json

SBOM = "/opt/dbt-runner/sbom.cdx.json"


def cat(image: str, path: str, *platform: str) -> str:
    result = docker("run", "--rm", *platform, "--entrypoint", "cat", image, path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def pypi_components(sbom: dict[str, Any]) -> dict[str, str]:
    found = {}
    for component in sbom["components"]:
        purl = component.get("purl", "")
        if purl.startswith("pkg:pypi/"):
            name, _, version = purl.removeprefix("pkg:pypi/").partition("@")
            found[name] = version.split("?")[0]
    return found


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sbom_is_valid_cyclonedx_and_agrees_with_version(variant: str) -> None:
    image = image_of(variant)
    labels = docker("image", "inspect", "--format", "{{json .Config.Labels}}", image).stdout
    assert json.loads(labels)["io.dbt-runner.sbom"] == SBOM
    text = cat(image, SBOM)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    # And the validator can fail: a component without its name is refused.
    broken = json.loads(text)
    del broken["components"][0]["name"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(broken)) is not None
    sbom = json.loads(text)
    reported = json.loads(docker("run", "--rm", image, "version", "--json").stdout)
    packages = pypi_components(sbom)
    assert packages == reported["packages"]
    assert packages["dbt-core"] == reported["dbt-core"]
    for adapter, version in reported["adapters"].items():
        assert packages[f"dbt-{adapter}"] == version
    assert set(reported["adapters"]) == VARIANTS[variant]
    debs = {c["name"] for c in sbom["components"] if c.get("purl", "").startswith("pkg:deb/")}
    assert {"python3", "tini", "git", "ca-certificates", "libc6"} <= debs


def test_arm64_image_metadata(arm64_image: str) -> None:
    amd64 = json.loads(docker("image", "inspect", image_of(ARM64_VARIANT)).stdout)[0]
    arm64 = json.loads(docker("image", "inspect", arm64_image).stdout)[0]
    assert arm64["Architecture"] == "arm64" and arm64["Os"] == "linux"
    config = arm64["Config"]
    assert config["User"] == str(UID)
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "dbt-runner"]
    assert config["Cmd"] == ["run"]
    # The same labels as this machine's build, but for the base it was built FROM.
    labels, expected = dict(config["Labels"]), dict(amd64["Config"]["Labels"])
    assert labels.pop("io.dbt-runner.base") != expected.pop("io.dbt-runner.base")
    labels.pop("org.opencontainers.image.base.name")
    expected.pop("org.opencontainers.image.base.name")
    assert labels == expected
    machine = docker(
        "run", "--rm", "--platform", "linux/arm64", "--entrypoint", "uname", arm64_image, "-m"
    )
    assert machine.stdout.strip() == "aarch64"
    version = docker("run", "--rm", "--platform", "linux/arm64", arm64_image, "version", "--json")
    assert json.loads(version.stdout)["dbt-runner"] == VERSION
    sbom = json.loads(cat(arm64_image, SBOM, "--platform", "linux/arm64"))
    debs = [c["purl"] for c in sbom["components"] if c.get("purl", "").startswith("pkg:deb/")]
    assert debs and all("arch=arm64" in purl or "arch=all" in purl for purl in debs)


def test_demo_job_on_arm64_under_emulation(
    arm64_image: str, tmp_path: Path, postgres: Postgres
) -> None:
    """Slow (QEMU), and right: the demo job on PostgreSQL over the host network."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    env = postgres.warehouse_env("arm64_demo") | {
        "DBT_RUNNER_PROJECT_DIR": "/opt/dbt-runner/examples/demo"
    }
    result = docker(
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "--network",
        "host",
        "-v",
        f"{out}:/out",
        *env_flags(env),
        arm64_image,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = read_json(out / "report.json")
    assert [(p["name"], p["status"]) for p in report["phases"]] == PHASES_OK
    assert postgres.query("select count(*) from arm64_demo.customers") == [(12,)]


def tracked_copy(destination: Path) -> Path:
    """The repository's tracked files, as a fresh clone would have them."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def test_an_entrypoint_change_rebuilds_only_the_thin_layer(tmp_path: Path) -> None:
    variant = ARM64_VARIANT
    before = json.loads(docker("image", "inspect", image_of(variant)).stdout)[0]
    base = before["Config"]["Labels"]["io.dbt-runner.base"]
    base_id = docker("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    source = tracked_copy(tmp_path / "src")
    cli = source / "entrypoint" / "dbt_runner" / "cli" / "__init__.py"
    cli.write_text(cli.read_text() + "\n# a one-line change\n")
    tag = f"thinlayer:{VERSION}-{variant}"
    env = {**os.environ, "IMAGE": "thinlayer", "BASE_REPO": base.split(":")[0]}
    built = subprocess.run(
        [str(source / "docker/build/image.sh"), variant, f"linux/{before['Architecture']}"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    try:
        assert f"base    {base} (up to date)" in built.stdout  # not rebuilt, not re-pushed
        assert docker("image", "inspect", "--format", "{{.Id}}", base).stdout.strip() == base_id
        after = json.loads(docker("image", "inspect", tag).stdout)[0]
        old, new = before["RootFS"]["Layers"], after["RootFS"]["Layers"]
        assert len(old) == len(new)
        assert sum(a != b for a, b in zip(old, new, strict=True)) == 1
    finally:
        docker("rmi", "-f", tag)
