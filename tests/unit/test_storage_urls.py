from __future__ import annotations

from pathlib import Path

import pytest

from dbt_runner.storage import content_type_for, join_key, normalise_url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://my-bucket/dbt/artifacts/", "s3://my-bucket/dbt/artifacts"),
        ("s3://my-bucket", "s3://my-bucket"),
        ("file:///srv/out", "file:///srv/out"),
        ("/srv/out/../docs", "file:///srv/docs"),
        ("out", (Path.cwd() / "out").as_uri()),
    ],
)
def test_normalise(value: str, expected: str) -> None:
    assert normalise_url(value) == expected


@pytest.mark.parametrize(
    "value", ["gs://b/x", "s3://UPPER/x", "file://host/x", "  ", "https://example.com/x"]
)
def test_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        normalise_url(value)


def test_keys_and_content_types() -> None:
    assert join_key("/a/", "", "b/", "/c") == "a/b/c"
    assert content_type_for("docs/index.html") == "text/html; charset=utf-8"
    assert content_type_for("manifest.json") == "application/json"
    assert content_type_for("junit.xml") == "application/xml"
    assert content_type_for("x.unknownext") == "application/octet-stream"
