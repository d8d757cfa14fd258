"""What a run says: help for every verb, a selection that matches nothing, the run
history's address, the run page's timeline lanes. Real dbt, a real webhook receiver,
the page read back from disk."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from pytest_httpserver import HTTPServer

from dbt_runner.cli.verbs import VERBS
from tests.support import delivered, hook, read_json, run_cli


@pytest.mark.parametrize("asked", [["--help"], ["-h"], ["help"]])
def test_top_level_help_lists_every_verb(asked: list[str], env: dict[str, str]) -> None:
    result = run_cli(*asked, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: dbt-runner [VERB] [FLAGS]")
    listed = re.findall(r"^  ([a-z]+) +\S", result.stdout, re.MULTILINE)
    assert listed == list(VERBS) and len(listed) == 10 and {"prepare", "remote"} <= set(listed)
    plan = run_cli("help", "plan", env=env)
    assert plan.returncode == 0 and plan.stdout.startswith("usage: dbt-runner plan")


def test_a_selection_that_matches_nothing_is_said(
    env: dict[str, str], out_dir: Path, httpserver: HTTPServer
) -> None:
    env |= hook(httpserver)
    args = (
        "--select",
        "+stg_customers +stg_orders no_such_model",
        "--job",
        "custom",
        "--phases",
        "deps,build",
    )
    result = run_cli("run", *args, env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    [warning] = [w for w in report["warnings"] if "no_such_model" in w]
    assert "'no_such_model' matches no node (build)" in warning
    assert not [w for w in report["warnings"] if "'+stg_orders'" in w]  # it matched
    assert "no_such_model" in (out_dir / "summary.md").read_text()
    assert any("no_such_model" in w for w in delivered(httpserver)[0]["warnings"])

    strict = run_cli("run", *args, env=env | {"DBT_RUNNER_UNMATCHED_SELECTION": "fail"})
    assert strict.returncode == 3, strict.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["status"] == "config_error"
    assert report["errors"][0]["stage"] == "selection"
    assert "DBT_RUNNER_UNMATCHED_SELECTION=fail" in strict.stderr


def test_the_run_history_address_is_its_folder(env: dict[str, str], out_dir: Path) -> None:
    assert run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env).returncode == 0
    url = read_json(out_dir / "report.json")["history"]["url"]
    assert "/history/date=" in url and "%3D" not in url
    assert Path(unquote(urlparse(url).path)).is_file()  # the address opens the file


def test_the_timeline_has_a_lane_per_concurrent_slot(env: dict[str, str], out_dir: Path) -> None:
    """dbt names new threads per phase: a lane per name would be a lane per phase."""
    result = run_cli("run", "--threads", "2", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    threads = {n["thread"] for n in report["nodes"] if n["thread"]}
    assert len(threads) > 2  # seed's threads and build's differ
    page = (out_dir / "report.html").read_text()
    [lanes] = re.findall(r"Model timeline: \d+ nodes on (\d+) thread", page)
    assert 1 <= int(lanes) <= 2
