"""What the image is: metadata, files present and absent, versions, variants.

After container-structure-test's metadata and file checks and the docker-library
official-images tests (override-cmd, no-hard-coded-passwords).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.sanity.conftest import UID, VARIANTS, VERSION, docker, image_of, inspect_image

# Values that look like credentials: AWS keys, private keys, tokens, passwords in URLs.
SECRET_PATTERNS = [
    r"AKIA[0-9A-Z]{16}",
    r"-----BEGIN (RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----",
    r"xox[abprs]-[0-9A-Za-z-]{10,}",
    r"gh[pousr]_[0-9A-Za-z]{36}",
    r"aws_secret_access_key\s*=\s*\S+",
    r"postgres(ql)?://[^:/\s]+:[^@\s]+@",
]


def test_metadata() -> None:
    config = inspect_image("all")["Config"]
    assert config["User"] == str(UID)
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "dbt-runner"]
    assert config["Cmd"] == ["run"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == "dbt-runner"
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"])
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"]
    )
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.description"]
    assert labels["io.dbt-runner.variant"] == "all"
    assert labels["io.dbt-runner.dbt-core.version"].startswith("1.11.")
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert env["PATH"].startswith("/opt/dbt-runner/venv/bin:")
    assert env["DBT_RUNNER_ARTIFACTS_URL"] == "/out"
    assert not any(re.search("SECRET|TOKEN|PASSWORD|CERT", name) for name in env)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_labelled(variant: str) -> None:
    labels = inspect_image(variant)["Config"]["Labels"]
    assert labels["io.dbt-runner.variant"] == variant
    assert labels["org.opencontainers.image.version"] == VERSION


def test_runs_as_a_fixed_non_root_user(host: Any) -> None:
    assert host.user().uid == UID
    assert host.user().gid == 0
    assert host.check_output("id -u") == str(UID)


def test_files_present_and_absent(host: Any) -> None:
    assert host.file("/etc/ssl/certs/ca-certificates.crt").is_file
    assert host.file("/usr/bin/tini").is_file
    assert host.exists("git")
    assert host.file("/opt/dbt-runner/examples/demo/dbt_project.yml").is_file
    for tool in ("gcc", "cc", "g++", "make", "pip", "pip3", "uv", "strip", "readelf"):
        assert not host.exists(tool), tool
    assert host.run("python -m pip --version").rc != 0
    assert not host.file("/opt/uv").exists
    assert not host.file("/run/secrets/ca_bundle").exists
    # Bytecode is compiled at build time (the root filesystem may be read-only).
    assert (
        host.run("ls /opt/dbt-runner/venv/lib/python3.11/site-packages/dbt/__pycache__/*.pyc").rc
        == 0
    )
    assert host.file("/out").mode == 0o1777


def test_no_credentials_in_filesystem_or_history(host: Any, image: str) -> None:
    pattern = "|".join(SECRET_PATTERNS)
    # Everywhere a build could leave one. Third-party site-packages are left out: their
    # docs and fixtures carry documented example keys.
    places = (
        "/etc /root /home /tmp /out /usr/local /opt/dbt-runner/examples /opt/dbt-runner/project"
    )
    places += (
        " /opt/dbt-runner/venv/bin /opt/dbt-runner/venv/lib/python3.11/site-packages/dbt_runner"
    )
    found = host.run(f"grep -rIlE '{pattern}' {places} 2>/dev/null")
    assert found.stdout.strip() == "", found.stdout
    history = docker(
        "history", "--no-trunc", "--format", "{{.CreatedBy}}", image, check=True
    ).stdout
    assert not re.search(pattern, history)
    assert "ca_bundle" not in history.replace("id=ca_bundle", "")  # only the secret mount's id
    assert not re.search(r"(PASSWORD|TOKEN|SECRET)=\S", history)


def test_version_prints_version_and_dbt(image: str) -> None:
    result = docker("run", "--rm", image, "version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"dbt-runner {VERSION}"
    assert re.fullmatch(r"dbt-core 1\.11\.\d+", lines[1])


def test_help_lists_every_verb(image: str) -> None:
    """`docker run IMAGE --help` replaces the CMD (run): the top-level help, not run's."""
    for asked in (["--help"], ["help"]):
        result = docker("run", "--rm", image, *asked)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: dbt-runner [VERB] [FLAGS]")
        assert all(f"\n  {verb} " in result.stdout for verb in ("run", "retry", "plan", "dbt"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_imports_exactly_its_adapters(variant: str) -> None:
    probe = (
        "import importlib.util, json;"
        "print(json.dumps(sorted(a for a in ('duckdb', 'postgres', 'redshift', 'bigquery', "
        "'snowflake', 'spark') if importlib.util.find_spec('dbt.adapters.' + a))))"
    )
    result = docker("run", "--rm", "--entrypoint", "python", image_of(variant), "-c", probe)
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == VARIANTS[variant]
    # Each adapter really imports (its native libraries load), and `version` agrees.
    imports = "; ".join(f"import dbt.adapters.{a}" for a in sorted(VARIANTS[variant]))
    assert (
        docker("run", "--rm", "--entrypoint", "python", image_of(variant), "-c", imports).returncode
        == 0
    )
    reported = json.loads(docker("run", "--rm", image_of(variant), "version", "--json").stdout)
    assert set(reported["adapters"]) == VARIANTS[variant]


def test_dbt_and_shell_overrides(image: str) -> None:
    result = docker("run", "--rm", image, "dbt", "--version")
    assert result.returncode == 0 and "installed: 1.11." in result.stdout, result.stdout
    shell = docker(
        "run", "--rm", "--entrypoint", "sh", image, "-c", "dbt-runner version | head -1; id -u"
    )
    assert shell.stdout.split("\n")[:2] == [f"dbt-runner {VERSION}", str(10001)]
