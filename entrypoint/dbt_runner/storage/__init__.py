"""Storage: one small interface over `file://` folders and `s3://` prefixes.

The embedded default (a local folder) and production (S3) run the same publish and
state code; only `open_storage(url)` differs. Every key layout is in keys.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dbt_runner.storage.file import FileStorage
from dbt_runner.storage.s3 import S3Storage
from dbt_runner.storage.urls import (
    content_type_for,
    file_url,
    join_key,
    local_folder,
    normalise_url,
)

if TYPE_CHECKING:
    from dbt_runner.aws import AwsSettings


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


def open_storage(url: str, aws_settings: AwsSettings | None = None) -> Storage:
    """The storage behind a normalised URL (see `normalise_url`)."""
    if url.startswith("s3://"):
        return S3Storage(url, aws_settings)
    return FileStorage(url)


@dataclass(frozen=True)
class Storages:
    """A run's storages, opened once and handed on: where its artifacts and reports go,
    and where state is kept (None: the job keeps none)."""

    artifacts: Storage
    state: Storage | None

    @property
    def lease(self) -> Storage:
        """Where the env's lease is: with the state, else with the artifacts."""
        return self.state if self.state is not None else self.artifacts


def open_storages(
    artifacts_url: str, state_url: str | None, aws_settings: AwsSettings | None = None
) -> Storages:
    return Storages(
        open_storage(artifacts_url, aws_settings),
        open_storage(state_url, aws_settings) if state_url else None,
    )


__all__ = [
    "FileStorage",
    "S3Storage",
    "Storage",
    "Storages",
    "content_type_for",
    "file_url",
    "join_key",
    "local_folder",
    "normalise_url",
    "open_storage",
    "open_storages",
]
