"""The image build's own steps when something under them fails: a tag is never computed
from a failed step (docker/build/image.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import ROOT

FILES = ("Dockerfile", "VERSION", "pyproject.toml", "uv.lock", "docker/build")


def copy_build(dest: Path) -> Path:
    for name in FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def image_sh(checkout: Path) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv") or str(ROOT / ".tools" / "uv-0.13.8" / "bin" / "uv")
    env = {**os.environ, "DOCKER": "false", "UV": uv}  # nothing may reach an engine
    return subprocess.run(
        ["bash", str(checkout / "docker" / "build" / "image.sh"), "all", "linux/amd64"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_broken_lock_stops_the_build_before_any_tag(tmp_path: Path) -> None:
    checkout = copy_build(tmp_path / "repo")
    lock = checkout / "uv.lock"
    lock.write_text(lock.read_text()[:5000])  # cut mid-file: uv cannot read it
    result = image_sh(checkout)
    assert result.returncode != 0
    assert "image.sh: 'uv export' of the all requirements failed" in result.stderr
    assert "base " not in result.stdout and "runtime " not in result.stdout


def test_a_missing_uv_stops_the_build_before_any_tag(tmp_path: Path) -> None:
    checkout = copy_build(tmp_path / "repo")
    env = {**os.environ, "DOCKER": "false", "UV": str(tmp_path / "no-uv")}
    result = subprocess.run(
        ["bash", "docker/build/image.sh", "all", "linux/amd64"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "'uv export' of the all requirements failed" in result.stderr
    assert "base " not in result.stdout
