"""Failing nodes, failing phases and bad input: exit codes, reports, nothing lost."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import markupsafe
import pytest
from junitparser import JUnitXml

from tests.support import SCHEMA, read_json, run_cli


def add_failures(project: Path) -> None:
    """A model that errors (and a child of it), and a singular test that fails."""
    marts = project / "models" / "marts"
    (marts / "broken_model.sql").write_text(
        "select customer_id, no_such_column from {{ ref('stg_customers') }}\n"
    )
    (marts / "after_broken.sql").write_text("select * from {{ ref('broken_model') }}\n")
    (project / "tests" / "assert_no_orders.sql").write_text(
        "-- fails on purpose: there are orders\nselect * from {{ ref('orders') }}\n"
    )


def test_failed_model_and_test(env: dict[str, str], demo_project: Path, out_dir: Path) -> None:
    add_failures(demo_project)
    result = run_cli("run", env=env)
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr
    report = read_json(out_dir / "report.json")
    jsonschema.validate(report, read_json(SCHEMA))
    assert (report["status"], report["exit_code"]) == ("failed", 1)
    nodes = {node["unique_id"]: node for node in report["nodes"]}
    broken = nodes["model.demo.broken_model"]
    assert (broken["status"], broken["outcome"]) == ("error", "failed")
    assert "no_such_column" in broken["message"]
    failing_test = nodes["test.demo.assert_no_orders"]
    assert (failing_test["status"], failing_test["failures"]) == ("fail", 30)
    # Downstream of the broken model and of the failed test: skipped, and reported so.
    assert nodes["model.demo.after_broken"]["status"] == "skipped"
    assert nodes["model.demo.customers"]["status"] == "skipped"
    assert nodes["model.demo.daily_revenue"]["status"] == "skipped"
    phases = {phase["name"]: phase["status"] for phase in report["phases"]}
    assert phases["build"] == "failed"
    # Advisory phases still ran after the failed build; docs compiled what build had not.
    assert (phases["freshness"], phases["docs"]) == ("success", "success")
    docs = next(phase for phase in report["phases"] if phase["name"] == "docs")
    assert "--no-compile" not in docs["dbt_args"]

    root = ET.parse(out_dir / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    error = cases["model.demo.broken_model"].find("error")
    assert error is not None and "no_such_column" in (error.text or "")
    failure = cases["test.demo.assert_no_orders"].find("failure")
    assert failure is not None and "30 results" in failure.get("message", "")
    assert cases["model.demo.after_broken"].find("skipped") is not None

    # Artifacts were still written: dbt's run results name the same failures.
    run_dir = out_dir / "demo" / "dev" / "runs" / report["run_id"]
    statuses = {
        r["unique_id"]: r["status"] for r in read_json(run_dir / "run_results.json")["results"]
    }
    assert statuses["model.demo.broken_model"] == "error"
    assert statuses["test.demo.assert_no_orders"] == "fail"
    assert "test.demo.assert_no_orders" in (run_dir / "summary.md").read_text()


def test_parse_error_is_exit_2(env: dict[str, str], demo_project: Path, out_dir: Path) -> None:
    (demo_project / "models" / "marts" / "bad_jinja.sql").write_text("select {{ ref( }}\n")
    result = run_cli("run", env=env)
    assert result.returncode == 2, result.stdout[-4000:]
    report = read_json(out_dir / "report.json")
    phases = {phase["name"]: phase for phase in report["phases"]}
    assert phases["parse"]["status"] == "error"
    assert "bad_jinja" in phases["parse"]["message"]
    # Nothing after a failed parse runs, and the report says why.
    for name in ("seed", "build", "freshness", "docs"):
        assert phases[name]["status"] == "skipped"
        assert "did not parse" in phases[name]["message"]
    root = ET.parse(out_dir / "junit.xml").getroot()
    assert root.get("errors") == "1"


def test_advisory_freshness_failure_keeps_exit_0(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    sources = demo_project / "models" / "staging" / "_sources.yml"
    sources.write_text(
        sources.read_text().replace(
            "error_after: {count: 7300, period: day}", "error_after: {count: 1, period: minute}"
        )
    )
    result = run_cli("run", "--phases", "deps,seed,build,freshness", env=env)
    assert result.returncode == 0, result.stdout[-4000:]
    report = read_json(out_dir / "report.json")
    freshness = next(p for p in report["phases"] if p["name"] == "freshness")
    assert (freshness["status"], freshness["advisory"]) == ("failed", True)
    assert report["status"] == "success"
    assert report["warnings"] == ["freshness failed (advisory: the job goes on): 1 node(s) failed"]

    # Configured to count: the same failure fails the job.
    env["DBT_RUNNER_ADVISORY_PHASES"] = "docs"
    strict = run_cli("run", "--phases", "seed,build,freshness", env=env)
    assert strict.returncode == 1, strict.stdout[-4000:]
    assert read_json(out_dir / "report.json")["status"] == "failed"


BAD_INPUT = [
    (
        {"DBT_RUNNER_JOB": "nightly"},
        [],
        "DBT_RUNNER_JOB='nightly'",
        "'full', 'slim', 'fresh' or 'custom'",
    ),
    (
        {"DBT_RUNNER_PROJECT_DIR": "/no/such/project"},
        [],
        "DBT_RUNNER_PROJECT_DIR",
        "no folder /no/such/project",
    ),
    ({"DBT_RUNNER_VARS": '{"start": [1'}, [], "DBT_RUNNER_VARS", "not valid JSON or YAML"),
    (
        {"DBT_RUNNER_WAREHOUSE__TYPE": "snowflake"},
        [],
        "DBT_RUNNER_WAREHOUSE__TYPE='snowflake'",
        "'duckdb'",
    ),
    ({"DBT_RUNNER_PHASES": "deps,biuld"}, [], "'biuld' is not a phase", "did you mean 'build'"),
    ({"DBT_RUNNER_JOBS": "slim"}, [], "DBT_RUNNER_JOBS is not a known setting", "DBT_RUNNER_JOB?"),
    ({}, ["--threads", "zero"], "--threads='zero'", "valid integer"),
    ({}, ["--no-such-flag"], "unrecognized arguments: --no-such-flag", "--help"),
]


@pytest.mark.parametrize(("extra_env", "args", "names", "fix"), BAD_INPUT)
def test_bad_input_exits_3_and_runs_nothing(
    env: dict[str, str],
    out_dir: Path,
    tmp_path: Path,
    extra_env: dict[str, str],
    args: list[str],
    names: str,
    fix: str,
) -> None:
    # An earlier run's report must survive a bad configuration untouched.
    out_dir.mkdir()
    earlier = out_dir / "report.json"
    earlier.write_text('{"earlier": true}')
    env.update(extra_env)
    result = run_cli("run", *args, env=env)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0] and fix in lines[0], lines[0]
    assert "Running with dbt" not in result.stdout
    assert not Path(env["DBT_RUNNER_WAREHOUSE__PATH"]).exists()
    assert earlier.read_text() == '{"earlier": true}'


def test_bad_input_in_json_log_format(env: dict[str, str]) -> None:
    env.update(DBT_RUNNER_LOG_FORMAT="json", DBT_RUNNER_JOB="nightly")
    result = run_cli("run", env=env)
    assert result.returncode == 3
    line = json.loads(result.stderr)
    assert line["level"] == "error" and "DBT_RUNNER_JOB" in line["msg"]


def test_profile_problem_exits_3_before_dbt(env: dict[str, str], out_dir: Path) -> None:
    """Found after the settings load: nothing runs, but the run is reported."""
    env["DBT_RUNNER_WAREHOUSE__TYPE"] = "postgres"
    result = run_cli("run", env=env)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DBT_RUNNER_WAREHOUSE__HOST is required for postgres" in lines[0]
    assert "Running with dbt" not in result.stdout
    report = read_json(out_dir / "report.json")
    assert (report["status"], report["exit_code"], report["phases"]) == ("config_error", 3, [])
    assert report["errors"][0]["stage"] == "profile"
    root = ET.parse(out_dir / "junit.xml").getroot()
    assert root.get("errors") == "1"


def test_what_a_failure_says_is_all_there_and_lands_where_annotations_look(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    """A test storing its failing rows, and a unit test whose expected and actual rows
    differ: where the rows are, and the table row by row, in every rendering; in a
    workflow with the project in a subfolder, every path from the repository's root and
    an annotation per failed node at its file."""
    (demo_project / "tests" / "stored_failures.sql").write_text(
        "{{ config(store_failures=true) }}\nselect * from {{ ref('daily_revenue') }}\n"
    )
    marts = demo_project / "models" / "marts" / "_marts.yml"
    marts.write_text(
        marts.read_text().replace(
            "- {customer_id: 1, order_count: 1, lifetime_value: 12.50}",
            "- {customer_id: 1, order_count: 2, lifetime_value: 12.50}",
        )
    )
    env |= {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(demo_project.parent)}
    result = run_cli("run", env=env)
    assert result.returncode == 1, result.stdout[-4000:]
    report = read_json(out_dir / "report.json")
    nodes = {n["unique_id"]: n for n in report["nodes"] if n["outcome"] == "failed"}
    stored = nodes["test.demo.stored_failures"]
    unit = nodes["unit_test.demo.customers.customers_lifetime_value_ignores_returns"]
    assert stored["relation"] and "stored_failures" in stored["relation"]
    query = f"select * from {stored['relation']}"
    rows = unit["detail"].splitlines()
    assert rows[0] == "actual differs from expected:" and rows[2].startswith("@@,customer_id")
    changed = next(row for row in rows if "2→1" in row)  # order_count: expected 2, actual 1

    summary = (out_dir / "summary.md").read_text()
    assert f"failing rows: `{query}`" in summary
    table = [line for line in summary.splitlines() if line.startswith("  | ")]
    assert table[0].split("|")[2].strip() == "customer_id"
    assert any("2→1" in line for line in table) and len(table) == len(rows) - 1  # + rule

    suites = JUnitXml.fromfile(str(out_dir / "junit.xml"))
    cases = {case.name: case for suite in suites for case in suite}
    text = cases["test.demo.stored_failures"].result[0].text
    assert text.endswith(f"See test failures: {query}")
    unit_text = cases[unit["unique_id"]].result[0].text
    assert changed in unit_text.splitlines()  # line breaks kept
    files = {case.name: case._elem.get("file") for case in cases.values()}
    assert files["model.demo.orders"] == "demo/models/marts/orders.sql"
    assert (demo_project.parent / files["test.demo.stored_failures"]).is_file()

    page = (out_dir / "report.html").read_text()
    assert '<table class="diff">' in page and "<td>2→1</td>" in page
    assert str(markupsafe.escape(query)) in page

    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == len(nodes)
    at = {line.split("title=")[0]: line for line in annotations}
    assert "::error file=demo/tests/stored_failures.sql," in at
    unit_line = at["::error file=demo/models/marts/_marts.yml,"]
    assert "%0A" in unit_line and changed.replace(",", ",") in unit_line.replace("%0A", "\n")
