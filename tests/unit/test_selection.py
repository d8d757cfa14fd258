"""A node command's selection, replaced (Dagster's asked-for assets) and read (`dbt ls`)."""

from __future__ import annotations

from dbt_runner.engine.selection import reselected, selection_args


def test_reselected_replaces_the_selection_and_keeps_exclusions_state_and_flags() -> None:
    command = [
        "build", "--select", "state:modified+", "tag:x", "--exclude", "big",
        "--state", "/s", "--defer", "-s", "more", "--selector", "nightly", "--threads", "4",
    ]  # fmt: skip
    assert reselected(command, ["orders", "customers"]) == [
        "build", "--exclude", "big", "--state", "/s", "--defer", "--threads", "4",
        "--select", "orders", "customers",
    ]  # fmt: skip
    # What dbt ls then selects: the new names, the same exclusion and state.
    assert selection_args(reselected(command, ["orders"])) == [
        "--exclude", "big", "--state", "/s", "--select", "orders",
    ]  # fmt: skip
