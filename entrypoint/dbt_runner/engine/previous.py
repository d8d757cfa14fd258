"""The state's manifest, read by dbt once per process.

Every dbt command given `--state` reads that folder's manifest.json into a Manifest
(dbt's PreviousState): a slim job's children step lists and compiles against the state
in three commands before its build reads it a fourth time, each read about 0.2 s at
500 models and growing with the project. dbt only reads that manifest (selection,
deferral: `merge_from_artifact` copies from it), so one read serves every command of
the run, keyed by the file's path, size and modification time: a file written again
is read again. Where dbt's module no longer has the names this wraps, dbt reads it
each time, as it always did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_read: dict[tuple[str, int, int], Any] = {}  # the file's key -> dbt's WritableManifest
_built: dict[int, Any] = {}  # id of a WritableManifest kept above -> its Manifest


def _key(path: str) -> tuple[str, int, int] | None:
    try:
        found = Path(path).stat()
    except OSError:
        return None
    return str(Path(path).resolve()), found.st_size, found.st_mtime_ns


class _WritableOnce:
    """dbt.contracts.state's WritableManifest, as PreviousState calls it."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def read_and_check_versions(self, path: str) -> Any:
        key = _key(path)
        if key is None:
            return self.original.read_and_check_versions(path)
        if key not in _read:
            _read.clear()  # only the latest state is kept
            _built.clear()
            _read[key] = self.original.read_and_check_versions(path)
        return _read[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _ManifestOnce:
    """dbt.contracts.state's Manifest, as PreviousState calls it."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def from_writable_manifest(self, writable: Any) -> Any:
        if not any(kept is writable for kept in _read.values()):
            return self.original.from_writable_manifest(writable)
        if id(writable) not in _built:
            _built[id(writable)] = self.original.from_writable_manifest(writable)
        return _built[id(writable)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


def read_state_once() -> None:
    """Have dbt read each state's manifest once in this process."""
    from dbt.contracts import state

    writable, manifest = getattr(state, "WritableManifest", None), getattr(state, "Manifest", None)
    if writable is None or manifest is None or isinstance(writable, _WritableOnce):
        return
    if not hasattr(writable, "read_and_check_versions"):
        return
    if not hasattr(manifest, "from_writable_manifest"):
        return
    setattr(state, "WritableManifest", _WritableOnce(writable))  # noqa: B010 (not exported)
    setattr(state, "Manifest", _ManifestOnce(manifest))  # noqa: B010


def state_manifest(state_dir: Path) -> Any | None:
    """The Manifest dbt built from `state_dir`'s manifest.json in this process, or None
    when it has not (or the file changed since)."""
    key = _key(str(state_dir / "manifest.json"))
    writable = _read.get(key) if key is not None else None
    return _built.get(id(writable)) if writable is not None else None
