"""A dbt project as one file that travels with a run: `<sha256>.tar.gz`.

The caller packs its project (`pack_project`: its files, without what dbt and tools
write) and puts it where the task can read it; a run given DBT_RUNNER_PROJECT_URL
fetches it, checks the digest its name promises, and unpacks it into the work folder
(`fetch_project`), where it stays for the next run of the same code (a digest names one
content). The archive is reproducible: the same files give the same digest, so a rerun
uploads nothing new and dbt's partial parse keeps its paths.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from dbt_runner.aws import AwsSettings
from dbt_runner.errors import ConfigError, InfraError
from dbt_runner.storage.file import FileStorage
from dbt_runner.storage.s3 import S3Storage

log = logging.getLogger(__name__)

ARCHIVE_NAME = re.compile(r"^(?P<digest>[0-9a-f]{64})\.tar\.gz$")
# What dbt, Python and tools write into a project folder: never part of its code.
NOT_PACKED = {"target", "dbt_packages", "logs", ".git", ".venv", "__pycache__", ".dbt-runner"}
NOT_PACKED_SUFFIXES = (".duckdb", ".wal", ".pyc")


def _packed_files(project_dir: Path) -> list[Path]:
    """The project's files, sorted, relative to it."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(project_dir):
        dirs[:] = sorted(d for d in dirs if d not in NOT_PACKED)
        for name in sorted(files):
            if not name.endswith(NOT_PACKED_SUFFIXES):
                found.append((Path(folder) / name).relative_to(project_dir))
    return found


def pack_project(project_dir: Path) -> bytes:
    """The project as a reproducible tar.gz: sorted entries, no times, no owners."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for relative in _packed_files(project_dir):
            path = project_dir / relative
            info = tarfile.TarInfo(relative.as_posix())
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            data = path.read_bytes()
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def archive_name(data: bytes) -> str:
    return f"{hashlib.sha256(data).hexdigest()}.tar.gz"


def archive_digest(url: str) -> str:
    """The digest a project URL's name promises; ValueError when it promises none."""
    match = ARCHIVE_NAME.match(url.rsplit("/", 1)[-1])
    if match is None:
        raise ValueError("its name must be the archive's sha256: .../<64 hex digits>.tar.gz")
    return match["digest"]


def fetched_folder(work_dir: Path, url: str) -> Path:
    """Where the project behind `url` is unpacked."""
    return work_dir / "projects" / f"url-{archive_digest(url)[:16]}"


def fetch_project(url: str, folder: Path, aws_settings: AwsSettings | None = None) -> Path:
    """Unpack the archive at `url` into `folder` (kept: a digest names one content),
    unless an earlier run did. Raises InfraError when it cannot be read, ConfigError
    when it is not the project its name promises."""
    if (folder / "dbt_project.yml").is_file():
        return folder
    digest = archive_digest(url)
    parent, name = url.rsplit("/", 1)
    try:
        store = (
            S3Storage(parent, aws_settings) if parent.startswith("s3://") else FileStorage(parent)
        )
        data = store.get_bytes(name)
    except Exception as exc:
        raise InfraError(f"DBT_RUNNER_PROJECT_URL='{url}' could not be read: {exc}") from exc
    if data is None:
        raise InfraError(
            f"DBT_RUNNER_PROJECT_URL='{url}': no such archive; pack and upload it first"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ConfigError(
            f"DBT_RUNNER_PROJECT_URL='{url}': the archive's sha256 is {actual}, not the one its "
            "name promises; it was changed or truncated after it was packed"
        )
    _unpack(data, folder)
    log.info("project %s fetched into %s", name, folder)
    return folder


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Files and folders only, each inside the folder it is extracted into (Python's
    own `data` filter is missing from the image's Python 3.11.2)."""
    members = archive.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise tarfile.TarError(f"'{member.name}' is not a file or folder inside the project")
        member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
    return members


def _unpack(data: bytes, folder: Path) -> None:
    """Extract into a temporary folder beside `folder`, then rename it into place (two
    runs at once: the first rename wins, the other's copy is dropped)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(staging, members=_safe_members(archive))  # noqa: S202 (checked)
        if not (staging / "dbt_project.yml").is_file():
            raise ConfigError(
                "DBT_RUNNER_PROJECT_URL: the archive has no dbt_project.yml at its top"
            )
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / "dbt_project.yml").is_file():
                raise
    except tarfile.TarError as exc:
        raise ConfigError(f"DBT_RUNNER_PROJECT_URL: not a project archive ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
