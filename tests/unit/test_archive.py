"""A project as one reproducible archive: packed without what tools write, fetched only
when its digest holds, unpacked without escaping its folder."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from dbt_runner.config import load_settings
from dbt_runner.errors import ConfigError
from dbt_runner.storage.archive import archive_name, fetch_project, fetched_folder, pack_project
from tests.support import DEMO, copy_project


def test_the_same_files_pack_to_the_same_digest_without_what_tools_write(tmp_path: Path) -> None:
    project = copy_project(DEMO, tmp_path / "demo")
    first = pack_project(project)
    for written in ("target/manifest.json", "dbt_packages/x/y.sql", "logs/dbt.log", "dev.duckdb"):
        (project / written).parent.mkdir(parents=True, exist_ok=True)
        (project / written).write_text("written by a tool")
    (project / "models" / "staging" / "stg_orders.sql").touch()  # a newer mtime only
    assert pack_project(project) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        names = archive.getnames()
    assert "dbt_project.yml" in names and "models/staging/stg_orders.sql" in names
    assert not any(name.split("/")[0] in {"target", "dbt_packages", "logs"} for name in names)
    (project / "models" / "staging" / "stg_orders.sql").write_text("select 2 as id")
    assert archive_name(pack_project(project)) != archive_name(first)


def put(folder: Path, data: bytes, name: str | None = None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    name = name or archive_name(data)
    (folder / name).write_bytes(data)
    return f"file://{folder}/{name}"


def test_a_fetched_project_is_the_packed_one(tmp_path: Path) -> None:
    data = pack_project(DEMO)
    url = put(tmp_path / "bucket", data)
    folder = fetch_project(url, fetched_folder(tmp_path / "work", url))
    assert (folder / "dbt_project.yml").read_bytes() == (DEMO / "dbt_project.yml").read_bytes()
    assert pack_project(folder) == data
    # Kept for the next run of the same code: the archive is not read again.
    (tmp_path / "bucket" / archive_name(data)).unlink()
    assert fetch_project(url, folder) == folder


def test_an_archive_that_is_not_what_its_name_promises_is_refused(tmp_path: Path) -> None:
    data = pack_project(DEMO)
    url = put(tmp_path / "bucket", data[:-10], archive_name(data))  # truncated after packing
    with pytest.raises(ConfigError, match=r"sha256 is .*not the one its name promises"):
        fetch_project(url, tmp_path / "work" / "p")
    assert not (tmp_path / "work" / "p").exists()


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_a_member_that_escapes_its_folder_is_refused(tmp_path: Path, kind: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        escaping = {"parent": "../escaped.txt", "absolute": f"{tmp_path}/escaped.txt"}
        for name in ("dbt_project.yml", escaping.get(kind, "models/link.sql")):
            info = tarfile.TarInfo(name)
            info.size = 4
            if kind == "symlink" and name.endswith("link.sql"):
                info.type, info.linkname, info.size = tarfile.SYMTYPE, "/etc/passwd", 0
            archive.addfile(info, io.BytesIO(b"name"))
    url = put(tmp_path / "bucket", buffer.getvalue())
    with pytest.raises(ConfigError, match="not a project archive"):
        fetch_project(url, tmp_path / "work" / "p")
    assert (
        not (tmp_path / "work" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    )
    assert not (tmp_path / "work" / "p").exists()


def test_settings_run_the_archives_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = pack_project(DEMO)
    url = put(tmp_path / "bucket", data)
    monkeypatch.chdir(tmp_path)  # no project here: the archive's is run
    monkeypatch.setenv("DBT_RUNNER_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("DBT_RUNNER_PROJECT_URL", url)
    settings = load_settings()
    digest = hashlib.sha256(data).hexdigest()
    assert settings.project_dir == tmp_path / "work" / "projects" / f"url-{digest[:16]}"
    assert (settings.project_dir / "dbt_project.yml").is_file()
    monkeypatch.setenv("DBT_RUNNER_PROJECT_DIR", str(DEMO))
    with pytest.raises(ConfigError, match="PROJECT_URL and DBT_RUNNER_PROJECT_DIR are exclusive"):
        load_settings()
    monkeypatch.delenv("DBT_RUNNER_PROJECT_DIR")
    monkeypatch.setenv("DBT_RUNNER_PROJECT_URL", "s3://bucket/projects/latest.tar.gz")
    with pytest.raises(ConfigError, match=r"DBT_RUNNER_PROJECT_URL=.*sha256"):
        load_settings()
