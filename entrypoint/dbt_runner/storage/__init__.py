"""Storage: one small interface over `file://` folders and `s3://` prefixes.

The embedded default (a local folder) and production (S3) run the same publish and
state code; only `open_storage(url)` differs.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, unquote, urlparse

from dbt_runner.errors import InfraError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

    from dbt_runner.aws import AwsSettings

log = logging.getLogger(__name__)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

# Content types mimetypes may not know, or guesses differently across systems.
_CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml",
    ".log": "text/plain; charset=utf-8",
    ".msgpack": "application/msgpack",
    ".txt": "text/plain; charset=utf-8",
}


def content_type_for(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def normalise_url(value: str) -> str:
    """`s3://bucket/prefix`, `file:///abs/path` or a plain path, as a canonical URL."""
    value = value.strip()
    if not value:
        raise ValueError("empty; use s3://bucket/prefix, file:///path or a local path")
    parsed = urlparse(value)
    if parsed.scheme == "s3":
        if not _BUCKET.match(parsed.netloc):
            raise ValueError(f"no valid bucket name ('{parsed.netloc}'); use s3://bucket/prefix")
        prefix = parsed.path.strip("/")
        return f"s3://{parsed.netloc}/{prefix}" if prefix else f"s3://{parsed.netloc}"
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError("a file URL needs an absolute path, with three slashes: file:///path")
        return file_url(Path(unquote(parsed.path)).resolve())
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter would be a Windows drive
        raise ValueError(
            f"unsupported scheme '{parsed.scheme}://'; "
            "use s3://bucket/prefix, file:///path or a local path"
        )
    return file_url(Path(value).expanduser().resolve())


def file_url(path: Path) -> str:
    """An absolute path as a file:// URL; `=` kept as is (history's `date=...` folders
    read as they are on disk; pathlib's as_uri would write %3D)."""
    return "file://" + quote(str(path), safe="/=")


def local_folder(url: str) -> Path | None:
    """The folder behind a normalised file:// URL; None for other storage."""
    return Path(unquote(urlparse(url).path)) if url.startswith("file://") else None


def join_key(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


class Storage(Protocol):
    """Where docs, artifacts and state are kept. Keys are `/`-separated, relative."""

    url: str

    def url_for(self, key: str) -> str: ...

    def put_file(self, key: str, path: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes | None: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, keys: list[str]) -> None: ...

    def check_writable(self, key: str) -> None: ...

    # Conditional writes, for a lease: a version is what the storage says a key's
    # content is (S3: its ETag), None when the condition did not hold.
    def get_versioned(self, key: str) -> tuple[bytes, str] | None: ...

    def put_new(self, key: str, data: bytes) -> str | None: ...

    def replace(self, key: str, data: bytes, version: str) -> str | None: ...

    def delete_version(self, key: str, version: str) -> bool: ...


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
            raise InfraError(f"cannot write {self.url_for(key)}: {exc.strerror or exc}") from exc

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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class S3Storage:
    """An S3 prefix. Retries are botocore's own (standard mode, bounded attempts)."""

    def __init__(
        self, url: str, aws_settings: AwsSettings | None = None, client: S3Client | None = None
    ) -> None:
        parsed = urlparse(url)
        self.url = url
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.aws_settings = aws_settings
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            from dbt_runner.aws import client

            self._client = client("s3", self.aws_settings)
        return self._client

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key)

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _fail(self, action: str, key: str, exc: Exception) -> InfraError:
        return InfraError(f"cannot {action} {self.url_for(key)}: {exc}")

    def put_file(self, key: str, path: Path) -> None:
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                self._key(key),
                ExtraArgs={"ContentType": content_type_for(key)},
            )
        except Exception as exc:  # boto3 raises several families; all mean "storage failed"
            raise self._fail("write", key, exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type_for(key)
            )
        except Exception as exc:
            raise self._fail("write", key, exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise self._fail("read", key, exc) from exc

    def list_keys(self, prefix: str) -> list[str]:
        full = self._key(prefix) + "/"
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    keys.append(item["Key"][len(self.prefix) + 1 :] if self.prefix else item["Key"])
        except Exception as exc:
            raise self._fail("list", prefix, exc) from exc
        return sorted(keys)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = keys[start : start + 1000]
            objects: list[ObjectIdentifierTypeDef] = [{"Key": self._key(key)} for key in batch]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
            except Exception as exc:
                raise self._fail("delete under", keys[start], exc) from exc

    def check_writable(self, key: str) -> None:
        """Write and delete a marker at `key`, before any work depends on it: a missing
        bucket or a missing permission fails the run in seconds, naming both."""
        from dbt_runner.aws import error_code

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=b"")
        except Exception as exc:
            raise InfraError(
                f"cannot write {self.url_for(key)} ({error_code(exc)}): the bucket "
                f"'{self.bucket}' must exist and the job's role needs s3:PutObject on "
                f"arn:aws:s3:::{self.bucket}/{join_key(self.prefix, '*')}"
            ) from exc
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            log.warning(
                "cannot delete %s (%s): docs publishing needs s3:DeleteObject to replace "
                "older files",
                self.url_for(key),
                error_code(exc),
            )

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read(), response["ETag"]
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise self._fail("read", key, exc) from exc

    def put_new(self, key: str, data: bytes) -> str | None:
        """S3's conditional write: If-None-Match: * (only when the key is absent)."""
        return self._put_if(key, data, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, version: str) -> str | None:
        """If-Match: only while the key still has the ETag `version`."""
        return self._put_if(key, data, IfMatch=version)

    def _put_if(self, key: str, data: bytes, **condition: str) -> str | None:
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                **condition,  # type: ignore[arg-type]
            )
        except Exception as exc:
            if _condition_failed(exc):
                return None
            raise self._fail("write", key, exc) from exc
        return response["ETag"]

    def delete_version(self, key: str, version: str) -> bool:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key), IfMatch=version)
        except Exception as exc:
            if _condition_failed(exc):
                return False
            raise self._fail("delete", key, exc) from exc
        return True


def _condition_failed(exc: Exception) -> bool:
    """A conditional request refused: the condition did not hold, or another write to
    the key won (409), or the key is gone."""
    from dbt_runner.aws import error_code

    return error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")


def open_storage(url: str, aws_settings: AwsSettings | None = None) -> Storage:
    """The storage behind a normalised URL (see `normalise_url`)."""
    if url.startswith("s3://"):
        return S3Storage(url, aws_settings)
    return FileStorage(url)
