"""The README's quick start on a machine that has only Python and a Docker client: a copy
of the checkout with uv nowhere on PATH; `make run-local` brings uv itself and runs the
demo, and `make run` with no Docker engine says what is missing in one line, at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import ROOT, read_json


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a clone of this tree holds (tracked, and new ones not ignored)."""
    dest = tmp_path_factory.mktemp("clone") / "dbt-runner"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def bare_path(tmp_path: Path) -> str:
    """PATH with Python 3.11 (and its pip) and the system's tools, without any uv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = Path(sys.base_prefix) / "bin" / "python3"
    (bin_dir / "python3").symlink_to(python)
    dirs = [
        str(bin_dir),
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    for folder in dirs:
        assert not (Path(folder) / "uv").exists(), (
            f"uv in {folder}: the test needs a PATH without it"
        )
    return os.pathsep.join(dirs)


def make(checkout: Path, path: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), **env}
    for name in (
        "SSL_CERT_FILE",
        "PIP_CERT",
        "REQUESTS_CA_BUNDLE",
        "UV_CACHE_DIR",
        "PIP_INDEX_URL",
    ):
        if name in os.environ:
            environ[name] = os.environ[name]
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=checkout,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_make_run_local_brings_uv_and_runs_the_demo(checkout: Path, tmp_path: Path) -> None:
    path = bare_path(tmp_path)
    result = make(checkout, path, "run-local")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "uv is not on PATH: installing uv 0.13.8 into .tools/" in result.stdout
    assert (checkout / ".tools" / "uv-0.13.8" / "bin" / "uv").is_file()
    report = read_json(checkout / "out" / "report.json")
    assert report["status"] == "success" and report["project"] == "demo"


def test_make_run_without_an_engine_says_so_in_one_line_at_once(
    checkout: Path, tmp_path: Path
) -> None:
    path = bare_path(tmp_path)
    started = time.monotonic()
    result = make(checkout, path, "run", DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    took = time.monotonic() - started
    assert result.returncode != 0 and took < 5, (took, result.stderr)
    [line] = [line for line in result.stderr.splitlines() if line.startswith("make run:")]
    assert "no Docker engine answers" in line and "make run-local" in line
    assert "Cannot connect to the Docker daemon" in line
    assert "base " not in result.stdout  # nothing was built, no tag was computed
