"""A local folder as storage (`file://`): writes go to a temporary file first, then an
atomic rename; conditional writes hold an exclusive lock on the key."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from dbt_runner.errors import InfraError
from dbt_runner.storage.urls import file_url


class FileStorage:
    """A local folder. Writes go to a temporary file first, then an atomic rename."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = Path(unquote(urlparse(url).path))  # normalised: always file://

    def url_for(self, key: str) -> str:
        return file_url(self.root / key) if key else self.url

    def _path(self, key: str) -> Path:
        return self.root / key

    def _write(self, key: str, data: bytes | None = None, source: Path | None = None) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            tmp = Path(name)
            try:
                with os.fdopen(fd, "wb") as handle:
                    if source is not None:
                        with source.open("rb") as reader:
                            shutil.copyfileobj(reader, handle)
                    else:
                        handle.write(data or b"")
                tmp.chmod(0o644)
                tmp.replace(target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise InfraError(
                f"cannot write {self.url_for(key)}: {exc.strerror or exc}{owner_hint(exc)}"
            ) from exc

    def put_file(self, key: str, path: Path) -> None:
        self._write(key, source=path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, data=data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InfraError(f"cannot read {self.url_for(key)}: {exc.strerror or exc}") from exc

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix() for path in base.rglob("*") if path.is_file()
        )

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def check_writable(self, key: str) -> None:
        """Write and remove a marker at `key`: InfraError if the folder is not writable."""
        self._write(key, b"")
        self._path(key).unlink(missing_ok=True)

    @contextmanager
    def _locked(self, key: str) -> Iterator[Path]:
        """The key's path, with an exclusive lock on it (a lock file beside it) held."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with (path.parent / f".{path.name}.lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield path
        except OSError as exc:
            raise InfraError(f"cannot write {self.url_for(key)}: {exc.strerror or exc}") from exc

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        data = self.get_bytes(key)
        return None if data is None else (data, _digest(data))

    def put_new(self, key: str, data: bytes) -> str | None:
        with self._locked(key) as path:
            if path.exists():
                return None
            self._write(key, data)
        return _digest(data)

    def replace(self, key: str, data: bytes, version: str) -> str | None:
        with self._locked(key) as path:
            if not path.is_file() or _digest(path.read_bytes()) != version:
                return None
            self._write(key, data)
        return _digest(data)

    def delete_version(self, key: str, version: str) -> bool:
        with self._locked(key) as path:
            if not path.is_file() or _digest(path.read_bytes()) != version:
                return False
            path.unlink()
        return True


OWNER_HINT = (
    " (the folder belongs to another user: in a container, run as its owner, `docker run "
    '--user "$(id -u):$(id -g)"`, or make it writable for the image\'s user, uid 10001)'
)


def owner_hint(exc: OSError) -> str:
    """What to do about a folder this user may not write (docker creates a missing
    mounted folder as root)."""
    return OWNER_HINT if exc.errno in (errno.EACCES, errno.EPERM) else ""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
