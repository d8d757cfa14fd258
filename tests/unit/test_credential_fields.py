from __future__ import annotations

import pytest

from dbt_runner.workspace.credentials import normalise
from dbt_runner.workspace.credentials.glue import parse_jdbc_url


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        (
            "jdbc:redshift://c1.abc.eu-west-1.redshift.amazonaws.com:5439/dev?ssl=true",
            {"host": "c1.abc.eu-west-1.redshift.amazonaws.com", "port": 5439, "database": "dev"},
        ),
        (
            "jdbc:postgresql://db.internal:5432/analytics",
            {"host": "db.internal", "port": 5432, "database": "analytics"},
        ),
        ("jdbc:redshift://host/dev;UID=x", {"host": "host", "database": "dev"}),
    ],
)
def test_jdbc_urls(url: str, fields: dict[str, object]) -> None:
    assert parse_jdbc_url(url) == fields


@pytest.mark.parametrize("url", ["postgresql://h/db", "jdbc:postgresql:///db", ""])
def test_bad_jdbc_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_jdbc_url(url)


def test_normalise_maps_common_secret_shapes() -> None:
    rds = {
        "engine": "postgres",
        "host": "h",
        "port": "5432",
        "username": "u",
        "password": "p",
        "dbname": "d",
    }
    assert normalise(rds) == {
        "host": "h",
        "port": 5432,
        "user": "u",
        "password": "p",
        "database": "d",
    }
    assert normalise({"Dataset": "marts", "project_id": "gcp", "other": 1}) == {
        "schema": "marts",
        "project": "gcp",
    }
