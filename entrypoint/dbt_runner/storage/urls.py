"""Storage URLs: `s3://bucket/prefix`, `file:///path` or a plain path, in one canonical
form; keys joined with `/`; content types the way browsers and S3 expect them."""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

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
