"""A project baked by `dbt-runner prepare`: packages installed and the parse cached at
build time, from a package server that is gone at run time; then runs without any
network that start from the baked parse, and runs where something changed since (a
model, an env var the parse read, the profile) that say so and parse without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.support import read_report, run_cli, tarball_package, with_packages


def offline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The runner with no network at all (not even 127.0.0.1): a private subnet."""
    return subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "dbt_runner", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def phase(report: dict[str, object], name: str) -> dict[str, object]:
    phases = report["phases"]
    assert isinstance(phases, list)
    return next(p for p in phases if p["name"] == name)


def test_a_baked_project_runs_offline_from_its_parse(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    # A server of its own: the suite's shared one must outlive this test.
    package_server = HTTPServer()
    package_server.start()
    package_server.expect_request("/extra_utils.tar.gz").respond_with_data(
        tarball_package(), content_type="application/gzip"
    )
    with_packages(demo_project, package_server.url_for("/extra_utils.tar.gz"))
    env |= {"DEMO_FLAVOUR": "vanilla"}
    prepared = run_cli("prepare", env=env)
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr
    assert "prepared demo for profile 'demo', target 'dev' (duckdb)" in prepared.stdout
    record = json.loads((demo_project / ".dbt-runner" / "prepared.json").read_text())
    assert record["packages"] is True and "DEMO_FLAVOUR" in record["env_vars"]
    assert "vanilla" not in json.dumps(record)  # values only as digests
    assert (demo_project / "dbt_packages" / "extra_utils" / "macros" / "answer.sql").is_file()
    package_server.stop()  # the package server is gone at run time

    result = offline("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = read_report(out_dir)
    assert report["prepared"]["parse"] is True and report["prepared"]["packages"] is True
    deps = phase(report, "deps")
    assert (deps["status"], deps["message"]) == (
        "skipped",
        "the packages were installed into the image by dbt-runner prepare",
    )
    assert (
        "Baked into the image:** its parse cache, its packages"
        in (out_dir / "summary.md").read_text()
    )
    plan = run_cli("plan", env=env)
    assert "# baked parse: used (prepared " in plan.stdout
    assert "\ndeps " not in plan.stdout  # skipped, so not planned

    # A changed model: said, parsed without the cache, still offline (packages hold).
    answer = demo_project / "models" / "marts" / "answer.sql"
    answer.write_text(answer.read_text().replace("as answer", "as answer, 1 as extra"))
    result = offline("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = read_report(out_dir)
    assert report["prepared"] == report["prepared"] | {
        "parse": False,
        "packages": True,
        "reason": "the project changed since prepare (models/marts/answer.sql)",
    }
    assert "the baked parse is not used: the project changed since prepare" in result.stdout
    plan = run_cli("plan", env=env)
    assert "# baked parse: not used (the project changed since prepare" in plan.stdout


def test_what_the_parse_read_is_checked(
    env: dict[str, str], demo_project: Path, out_dir: Path
) -> None:
    path = demo_project / "dbt_project.yml"
    path.write_text(path.read_text() + "\nvars:\n  flavour: \"{{ env_var('DEMO_FLAVOUR') }}\"\n")
    prepared = run_cli("prepare", env=env | {"DEMO_FLAVOUR": "vanilla"})
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr

    # Another value of an env var the parse read: dbt would build other SQL.
    result = run_cli("run", env=env | {"DEMO_FLAVOUR": "chocolate"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert read_report(out_dir)["prepared"]["reason"] == (
        "the environment variable(s) DEMO_FLAVOUR differ from prepare time"
    )
    # Another target than the one prepared for.
    result = run_cli("run", "--target", "ci", env=env | {"DEMO_FLAVOUR": "vanilla"})
    assert read_report(out_dir)["prepared"]["reason"] == (
        "prepared for profile 'demo', target 'dev' (duckdb), this run's is profile 'demo', "
        "target 'ci' (duckdb)"
    )
    # What only dbt's own check sees (a connection field's value): dbt's words.
    other = env | {
        "DEMO_FLAVOUR": "vanilla",
        "DBT_RUNNER_WAREHOUSE__PATH": env["DBT_RUNNER_WAREHOUSE__PATH"].replace(
            ".duckdb", "-2.duckdb"
        ),
    }
    result = run_cli("run", env=other)
    assert result.returncode == 0, result.stdout[-3000:]
    prepared_info = read_report(out_dir)["prepared"]
    assert prepared_info["parse"] is False
    assert prepared_info["reason"] == "dbt parsed in full: profile has changed"
    # And the same run, same settings, uses it.
    result = run_cli("run", env=env | {"DEMO_FLAVOUR": "vanilla"})
    assert read_report(out_dir)["prepared"] == read_report(out_dir)["prepared"] | {
        "parse": True,
        "reason": None,
    }


def test_a_project_that_does_not_parse_is_not_prepared(
    env: dict[str, str], demo_project: Path
) -> None:
    (demo_project / "models" / "marts" / "broken.sql").write_text("select {{ nope( }}\n")
    result = run_cli("prepare", env=env)
    assert result.returncode == 2, result.stdout[-3000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dbt-runner: error: prepare: ") and "broken" in line
    assert not (demo_project / ".dbt-runner").exists()
