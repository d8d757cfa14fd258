"""The fresh job's rules, without a warehouse: intervals, what counts as new, and the
sources.json a run keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from dbt_runner.config import interval
from dbt_runner.jobs.fresh import compare, too_soon, upstream_sources
from dbt_runner.state.kept import promoted_sources


def test_intervals() -> None:
    assert interval("4h") == timedelta(hours=4) and interval("30m") == timedelta(minutes=30)
    assert interval(" 1D ") == timedelta(days=1)
    with pytest.raises(ValueError, match="not an interval"):
        interval("soon")


def source(package: str = "p") -> SimpleNamespace:
    return SimpleNamespace(package_name=package)


def test_what_counts_as_new_data() -> None:
    manifest = SimpleNamespace(
        sources={
            "source.p.raw.a": source(),  # newer rows
            "source.p.raw.b": source(),  # unchanged
            "source.p.raw.c": source(),  # no freshness rule: not in sources.json
            "source.p.raw.d": source(),  # its query failed
            "source.p.raw.e": source(),  # new since the last state
            "source.other.raw.x": source("other"),  # a package's: not ours to judge
        }
    )
    previous = {
        "results": [
            {"unique_id": "source.p.raw.a", "max_loaded_at": "2026-11-01T00:00:00"},
            {"unique_id": "source.p.raw.b", "max_loaded_at": "2026-11-01T00:00:00"},
        ]
    }
    current = {
        "results": [
            {"unique_id": "source.p.raw.a", "max_loaded_at": "2026-11-02T00:00:00"},
            {"unique_id": "source.p.raw.b", "max_loaded_at": "2026-11-01T00:00:00"},
            {"unique_id": "source.p.raw.e", "max_loaded_at": "2026-11-02T00:00:00"},
        ]
    }
    changes = compare(manifest, "p", previous, current, {"source.p.raw.d"})
    assert changes.new_data == ["source.p.raw.a"]
    assert changes.assumed == {
        "source.p.raw.c": "no freshness rule (loaded_at_field or loaded_at_query)",
        "source.p.raw.d": "its freshness query failed",
        "source.p.raw.e": "not in the last good run's sources.json",
    }
    assert changes.selectors() == ["source:raw.c+", "source:raw.d+", "source:raw.e+"]


def test_lag_tolerance_and_the_data_it_leaves_owed() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    model = SimpleNamespace(resource_type="model", meta={})
    manifest = SimpleNamespace(
        nodes={
            "model.p.a": model,
            "model.p.b": SimpleNamespace(resource_type="model", meta={"build_after": "10m"}),
        },
        parent_map={"model.p.a": ["model.p.s"], "model.p.s": ["source.p.raw.x"], "model.p.b": []},
    )
    built = {uid: {"built_at": (now - timedelta(minutes=30)).isoformat()} for uid in manifest.nodes}
    skipped = too_soon(manifest, {"model.p.a", "model.p.b"}, set(), built, "1h", now)
    assert list(skipped) == ["model.p.a"]  # b's own 10 minutes have passed
    assert too_soon(manifest, {"model.p.a"}, {"model.p.a"}, built, "1h", now) == {}  # changed code
    assert upstream_sources(manifest, ["model.p.a"]) == ["source.p.raw.x"]
    current = {
        "results": [
            {"unique_id": "source.p.raw.x", "max_loaded_at": "new"},
            {"unique_id": "source.p.raw.y", "max_loaded_at": "new"},
        ]
    }
    previous = {"results": [{"unique_id": "source.p.raw.x", "max_loaded_at": "old"}]}
    kept = json.loads(promoted_sources(current, previous, ["source.p.raw.x"]) or b"{}")
    assert {r["unique_id"]: r["max_loaded_at"] for r in kept["results"]} == {
        "source.p.raw.x": "old",  # still owed to model a
        "source.p.raw.y": "new",
    }
