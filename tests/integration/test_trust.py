"""When things go wrong: stops, retries, startup failures and injected faults, each
ending with the documented exit code, a report that carries the cause, the
notification, and the last good state untouched. Real dbt, PostgreSQL, moto server
(behind a fault-injecting proxy) and a real HTTP receiver."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.support import (
    ROOT,
    SLOW,
    Fault,
    FaultProxy,
    Moto,
    Postgres,
    Started,
    add_slow_model,
    by_id,
    delivered,
    free_port,
    hook,
    pointer,
    read_json,
    run_cli,
    running_queries,
    wait_until,
)

# --- a stopped run, then the command a user types next ---------------------------------


def test_stopped_run_reports_what_finished_and_retry_completes_it(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    schema = "stop_" + uuid.uuid4().hex[:6]
    state = tmp_path / "state"
    env |= postgres.warehouse_env(schema) | {"DBT_RUNNER_STATE_URL": str(state)}
    add_slow_model(demo_project)
    started = Started(env, tmp_path / "run.log")
    wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
    started.process.send_signal(signal.SIGTERM)
    code, output = started.finish(timeout=60)
    assert code == 143, output[-3000:]
    stopped = read_json(out_dir / "report.json")
    assert stopped["status"] == "interrupted"
    build = by_id(stopped, "build")
    assert "model.demo.after_slow" in build, output[-3000:]
    # Every node that finished is reported; every one that did not, as not run.
    assert build["model.demo.stg_orders"]["status"] == "success"
    # The node running at the stop was cancelled in the warehouse: an error, or not run.
    assert build["model.demo.slow_model"]["outcome"] in ("failed", "skipped")
    assert build["model.demo.after_slow"]["status"] == "skipped"
    assert "stopped before this node finished" in build["model.demo.after_slow"]["message"]
    assert len(build) == 26  # all the build selected: 8 models, a snapshot, 17 tests
    run_dir = out_dir / "demo" / "dev" / "runs" / stopped["run_id"]
    results = {
        r["unique_id"]: r["status"] for r in read_json(run_dir / "run_results.json")["results"]
    }
    assert results["model.demo.stg_orders"] == "success"
    assert results["model.demo.after_slow"] == "skipped"
    cases = {c.get("name"): c for c in ET.parse(run_dir / "junit.xml").getroot().iter("testcase")}
    assert cases["model.demo.after_slow"].find("skipped") is not None
    assert pointer(state) is None  # a stopped run never sets the state

    # The next command: fix nothing but the slowness, and retry.
    add_slow_model(demo_project, sleep="pg_sleep(0)")
    retried = run_cli("retry", env=env)
    assert retried.returncode == 0, retried.stdout[-3000:]
    retry = read_json(out_dir / "report.json")
    owed = {uid for uid, node in build.items() if node["outcome"] != "ok"}
    assert owed <= {uid for uid, n in by_id(retry, "retry").items() if n["outcome"] == "ok"}
    assert postgres.query(f"select count(*) from {schema}.after_slow") == [(30,)]
    assert pointer(state) == retry["run_id"]  # everything the job selected has built now
    slim = run_cli("run", "--job", "slim", env=env)
    assert slim.returncode == 0, slim.stdout[-3000:]


def test_a_stop_says_why_in_the_report_and_on_stderr(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    env |= postgres.warehouse_env("why_" + uuid.uuid4().hex[:6])
    add_slow_model(demo_project)
    errors = tmp_path / "stderr.log"
    started = Started(env, tmp_path / "run.log", errors=errors)
    wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
    started.process.send_signal(signal.SIGTERM)
    code, output = started.finish(timeout=60)
    assert code == 143, output[-3000:]
    report = read_json(out_dir / "report.json")
    assert [(e["stage"], e["message"], e["exit_code"]) for e in report["errors"]] == [
        ("dbt", "stopped by SIGTERM", 143)
    ]
    [line] = [line for line in errors.read_text().splitlines() if line.strip()]
    assert line == "dbt-runner: error: stopped by SIGTERM" or line.endswith("stopped by SIGTERM")
    assert "stopped by SIGTERM" in (out_dir / "summary.md").read_text()


def test_a_stop_with_a_webhook_that_never_answers_ends_within_dockers_grace(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    """`docker stop` kills a container 10 s after SIGTERM (ECS and Kubernetes after 30):
    by the time notifying begins the lease is back and the report says how the run
    ended; notifying gets what is left, and the process exits with the code the report
    names, inside the grace."""
    state = tmp_path / "state"
    env |= postgres.warehouse_env("deaf_" + uuid.uuid4().hex[:6])
    env |= {"DBT_RUNNER_STATE_URL": str(state)}
    add_slow_model(demo_project)
    lease = state / "demo" / "dev" / "lease.json"
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        silent.settimeout(30)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        env |= {"DBT_RUNNER_NOTIFY__WEBHOOK_URL": url, "DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL": url}
        started = Started(env, tmp_path / "run.log")
        wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
        assert lease.is_file()
        sent = time.monotonic()
        started.process.send_signal(signal.SIGTERM)
        connection, _ = silent.accept()  # notifying has begun
        with connection:
            assert not lease.exists()  # the next scheduled job is not skipped
            written = read_json(out_dir / "report.json")
            assert (written["exit_code"], written["status"]) == (143, "interrupted")
            assert written["finishing"] == ["notify"] and written["finished_at"] is not None
            code, output = started.finish(timeout=90)
        took = time.monotonic() - sent
    assert code == 143, output[-3000:]
    assert took < 10, f"{took:.1f} s after SIGTERM"
    report = read_json(out_dir / "report.json")
    assert report["exit_code"] == 143 and report["finishing"] == []
    assert report["finished_at"] == written["finished_at"]
    assert [n["ok"] for n in report["notifications"]] == [False, False]
    assert len([w for w in report["warnings"] if w.startswith("notification failed")]) == 2


def test_a_stop_during_retry_keeps_dbts_traceback_off_the_console(
    env: dict[str, str], demo_project: Path, out_dir: Path, postgres: Postgres, tmp_path: Path
) -> None:
    env |= postgres.warehouse_env("retrystop_" + uuid.uuid4().hex[:6])
    add_slow_model(demo_project)
    first = Started(env, tmp_path / "run.log")
    wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
    first.process.send_signal(signal.SIGTERM)
    assert first.finish(timeout=60)[0] == 143
    retry = Started(env, tmp_path / "retry.log", verb="retry")
    wait_until(lambda: running_queries(postgres, SLOW), 180, "the retried slow model's query")
    retry.process.send_signal(signal.SIGTERM)
    code, output = retry.finish(timeout=60)
    assert code == 143, output[-3000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["job"] == "retry" and report["errors"][0]["message"] == "stopped by SIGTERM"


def test_retry_of_a_full_job_whose_build_failed(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """The build is not the full job's last phase: its results are the runner's to
    write, and a retry of them must still write its own and set the state."""
    orders = demo_project / "models" / "marts" / "orders.sql"
    good = orders.read_text()
    orders.write_text(good.replace("o.status,", "o.no_such_column,"))
    env["DBT_RUNNER_STATE_URL"] = str(tmp_path / "state")
    assert run_cli("run", env=env).returncode == 1
    failed = read_json(out_dir / "report.json")
    orders.write_text(good)
    retried = run_cli("retry", env=env)
    assert retried.returncode == 0, retried.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["retry_of"] == failed["run_id"]
    assert "model.demo.orders" in {n["unique_id"] for n in report["nodes"] if n["outcome"] == "ok"}
    assert pointer(tmp_path / "state") == report["run_id"]


def test_retry_refuses_when_a_later_phase_never_ran(
    env: dict[str, str], demo_project: Path, out_dir: Path, tmp_path: Path
) -> None:
    """A seed that fails stops the build: dbt retry would re-run the seeds alone."""
    seeds = demo_project / "seeds"
    good = (seeds / "raw_orders.csv").read_text()
    (seeds / "raw_orders.csv").write_text(good.replace("order_date", "order_date,extra", 1))
    env["DBT_RUNNER_STATE_URL"] = str(tmp_path / "state")
    assert run_cli("run", env=env).returncode == 1
    (seeds / "raw_orders.csv").write_text(good)
    refused = run_cli("retry", env=env)
    assert refused.returncode == 3
    assert "its build phase never ran" in refused.stderr
    assert "dbt-runner run" in refused.stderr
    assert pointer(tmp_path / "state") is None


def test_timeout_cancels_like_sigterm_and_notifies(
    env: dict[str, str],
    demo_project: Path,
    out_dir: Path,
    postgres: Postgres,
    httpserver: HTTPServer,
) -> None:
    env |= postgres.warehouse_env("timeout_" + uuid.uuid4().hex[:6]) | hook(httpserver)
    env["DBT_RUNNER_TIMEOUT_S"] = "40"
    add_slow_model(demo_project)
    started = time.monotonic()
    result = run_cli("run", "--job", "custom", "--phases", "deps,seed,build,docs", env=env)
    assert result.returncode == 124, result.stdout[-3000:]
    assert time.monotonic() - started < 100
    report = read_json(out_dir / "report.json")
    assert report["status"] == "timed_out"
    build = next(p for p in report["phases"] if p["name"] == "build")
    assert build["status"] == "interrupted" and "timed out after 40 s" in build["message"]
    assert running_queries(postgres, SLOW) == []  # cancelled in the warehouse
    [payload] = delivered(httpserver)
    assert (payload["status"], payload["exit_code"]) == ("timed_out", 124)


# --- bad settings and broken starts -----------------------------------------------------


def test_work_dir_that_is_not_a_writable_folder(
    env: dict[str, str], out_dir: Path, httpserver: HTTPServer
) -> None:
    env |= hook(httpserver) | {"DBT_RUNNER_WORK_DIR": "/etc/hostname/x"}
    result = run_cli("run", env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "DBT_RUNNER_WORK_DIR='/etc/hostname/x' is not a writable folder" in line
    report = read_json(out_dir / "report.json")
    assert (report["status"], report["errors"][0]["stage"]) == ("config_error", "preflight")
    assert delivered(httpserver)[0]["status"] == "config_error"


def test_an_unexpected_exception_ends_like_any_failure(
    env: dict[str, str], out_dir: Path, httpserver: HTTPServer
) -> None:
    """A fault injected into the credentials stage: a bug, not a known failure."""
    env |= hook(httpserver)
    script = (
        "import sys, dbt_runner.workspace.credentials as c\n"
        "def broken(*args, **kwargs): raise ValueError('injected by the test')\n"
        "c.fetch = broken\n"
        "from dbt_runner.cli import main\n"
        "sys.exit(main(['run']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "unexpected error during credentials: ValueError: injected by the test" in line
    error = read_json(out_dir / "report.json")["errors"][0]
    assert error["stage"] == "credentials" and "Traceback" in error["detail"]
    assert delivered(httpserver)[0]["status"] == "error"


def unreachable_warehouse(project: Path, env: dict[str, str], postgres: Postgres) -> str:
    port = free_port()
    env |= postgres.warehouse_env("nowhere") | {"DBT_RUNNER_WAREHOUSE__PORT": str(port)}
    return f'"127.0.0.1", port {port} failed: Connection refused'


def impossible_dbt_version(project: Path, env: dict[str, str], postgres: Postgres) -> str:
    path = project / "dbt_project.yml"
    path.write_text(path.read_text() + "\nrequire-dbt-version: '>=99.0.0'\n")
    return ">=99.0.0"


@pytest.mark.parametrize("breakage", [unreachable_warehouse, impossible_dbt_version])
def test_when_dbt_cannot_start_its_own_error_is_reported_everywhere(
    breakage: Any,
    env: dict[str, str],
    demo_project: Path,
    out_dir: Path,
    postgres: Postgres,
    httpserver: HTTPServer,
) -> None:
    expected = breakage(demo_project, env, postgres)
    httpserver.expect_request("/slack", method="POST").respond_with_data("ok")
    env |= hook(httpserver) | {"DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL": httpserver.url_for("/slack")}
    result = run_cli("run", env=env)
    assert result.returncode == 2, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")
    assert report["errors"] and expected in report["errors"][0]["message"], report["errors"]
    assert "see the log" not in json.dumps(report)
    assert expected in (out_dir / "summary.md").read_text()
    failures = [
        element.get("message", "")
        for element in ET.parse(out_dir / "junit.xml").getroot().iter("error")
    ]
    assert any(expected in message for message in failures), failures
    assert expected in delivered(httpserver)[0]["errors"][0]["message"]
    [slack] = [r for r, _ in httpserver.log if r.path == "/slack"]
    assert expected in str(slack.get_json()["blocks"])


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("dbt_project.yml", "name: demo\nprofile: [demo\n", ":3:1: not valid YAML"),
        ("dbt_project.yml", "profile: demo\nconfig-version: 2\n", ":1:1: no 'name'"),
        ("profiles.yml", "demo:\n  target: dev\n  outputs:\n    dev: [\n", ":5:1: not valid YAML"),
    ],
    ids=["project-yaml", "project-without-name", "profiles-yaml"],
)
def test_a_broken_config_file_is_named_with_its_line_and_column(
    name: str,
    text: str,
    where: str,
    env: dict[str, str],
    demo_project: Path,
    out_dir: Path,
    httpserver: HTTPServer,
) -> None:
    """README, "When things go wrong": exit 3, the file, line and column, in every verb."""
    if name == "profiles.yml":
        del env["DBT_RUNNER_WAREHOUSE__PATH"]  # the project's own profile is the one used
    (demo_project / name).write_text(text)
    env |= hook(httpserver)
    for verb in ("check", "plan", "run"):
        result = run_cli(verb, env=env)
        assert result.returncode == 3, f"{verb}: {result.stdout[-2000:]}{result.stderr}"
        [line] = result.stderr.strip().splitlines()
        assert f"{demo_project / name}{where}" in line, line
        assert "Traceback" not in result.stdout + result.stderr
    assert read_json(out_dir / "report.json")["status"] == "config_error"
    assert delivered(httpserver)[-1]["status"] == "config_error"


def test_rendered_profile_can_win_over_the_projects_own(
    env: dict[str, str], demo_project: Path, tmp_path: Path
) -> None:
    """An image built FROM the runner whose project ships a profile for elsewhere."""
    elsewhere = tmp_path / "elsewhere.duckdb"
    profile = (
        f"demo:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {elsewhere}\n"
    )
    (demo_project / "profiles.yml").write_text(profile)
    env["DBT_RUNNER_PROFILE_SOURCE"] = "rendered"
    result = run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert Path(env["DBT_RUNNER_WAREHOUSE__PATH"]).is_file() and not elsewhere.exists()


def test_quick_start_on_a_fresh_tree_creates_the_database_folder(tmp_path: Path) -> None:
    """`make run-local` from the README, with an output folder that does not exist yet."""
    out = tmp_path / "fresh" / "out"
    result = subprocess.run(
        ["make", "--no-print-directory", "run-local", f"OUT={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert (out / "demo.duckdb").is_file()
    assert read_json(out / "report.json")["status"] == "success"


# --- logs and timings -----------------------------------------------------------------


def test_json_mode_writes_only_json_lines(env: dict[str, str], out_dir: Path) -> None:
    """urllib3's retry warnings for a dead webhook included."""
    env |= {
        "DBT_RUNNER_LOG_FORMAT": "json",
        "DBT_RUNNER_NOTIFY__WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook",
        "DBT_RUNNER_NOTIFY__RETRIES": "2",
    }
    result = run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    for line in lines:
        json.loads(line)  # every line, whoever wrote it
    warnings = [json.loads(line) for line in lines if "Retrying" in line]
    assert warnings and warnings[0]["logger"].startswith("urllib3")
    failed = [json.loads(line) for line in lines if "notification failed" in line]
    assert f":{env['DBT_RUNNER_NOTIFY__WEBHOOK_URL'].split(':')[2]}" in failed[0]["msg"]
    report = read_json(out_dir / "report.json")
    timings = report["timings"]
    assert timings["notify"] > 0 and timings["publish"] > 0
    # The duration runs until the verdict is final; metrics, the report files and
    # notifying come after it.
    after = {"metrics", "report", "lineage", "comment", "notify"}
    before = sum(seconds for step, seconds in timings.items() if step not in after)
    assert report["duration_s"] >= before - 0.5
    assert report["notifications"][0]["ok"] is False


# --- storage: checked before dbt, and faults while it is used ---------------------------


def s3_env(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "DBT_RUNNER_ARTIFACTS_URL": f"s3://{bucket}/dbt",
        **extra,
    }


def test_missing_artifacts_bucket_fails_before_dbt(
    env: dict[str, str], moto: Moto, tmp_path: Path, httpserver: HTTPServer
) -> None:
    env |= (
        moto.env
        | s3_env(moto.endpoint, "no-such-bucket-" + uuid.uuid4().hex[:6])
        | hook(httpserver)
    )
    result = run_cli("run", env=env)
    assert result.returncode == 4, result.stdout[-3000:]
    assert "Running with dbt" not in result.stdout
    assert not Path(env["DBT_RUNNER_WAREHOUSE__PATH"]).exists()
    line = result.stderr.strip().splitlines()[0]
    assert "NoSuchBucket" in line and "s3:PutObject" in line
    assert read_json(tmp_path / "work" / "report" / "report.json")["status"] == "infra_error"
    assert delivered(httpserver)[0]["status"] == "infra_error"


@pytest.mark.parametrize("which", ["artifacts", "state"])
def test_forbidden_bucket_fails_before_dbt(
    which: str, env: dict[str, str], moto: Moto, tmp_path: Path
) -> None:
    bucket = "forbidden-" + uuid.uuid4().hex[:6]
    moto.client("s3").create_bucket(Bucket=bucket)
    with FaultProxy(moto.endpoint) as proxy:
        env |= moto.env | {"AWS_ENDPOINT_URL": proxy.endpoint}
        if which == "artifacts":
            env["DBT_RUNNER_ARTIFACTS_URL"] = f"s3://{bucket}/dbt"
        else:
            env["DBT_RUNNER_STATE_URL"] = f"s3://{bucket}/state"
        proxy.faults.append(Fault(403, "AccessDenied", method="PUT"))
        result = run_cli("run", env=env)
    assert result.returncode == 4, result.stdout[-3000:]
    assert "Running with dbt" not in result.stdout
    line = result.stderr.strip().splitlines()[0]
    assert f"s3://{bucket}/" in line and "AccessDenied" in line and "s3:PutObject" in line


def test_s3_that_fails_for_a_while_then_recovers(
    env: dict[str, str], moto: Moto, tmp_path: Path
) -> None:
    bucket = "flaky-" + uuid.uuid4().hex[:6]
    moto.client("s3").create_bucket(Bucket=bucket)
    with FaultProxy(moto.endpoint) as proxy:
        env |= moto.env | s3_env(proxy.endpoint, bucket)
        proxy.faults.append(Fault(503, "SlowDown", times=3))
        result = run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert [status for _, _, status in proxy.errors()] == [503, 503, 503]
    report = read_json(tmp_path / "work" / "report" / "report.json")
    listed = moto.client("s3").list_objects_v2(Bucket=bucket, Prefix="dbt/demo/dev/runs/")
    assert f"dbt/demo/dev/runs/{report['run_id']}/report.json" in {
        item["Key"] for item in listed["Contents"]
    }


def test_s3_outage_after_the_build_keeps_state_and_local_artifacts(
    env: dict[str, str], moto: Moto, tmp_path: Path, httpserver: HTTPServer
) -> None:
    bucket = "outage-" + uuid.uuid4().hex[:6]
    moto.client("s3").create_bucket(Bucket=bucket)
    s3 = moto.client("s3")
    with FaultProxy(moto.endpoint) as proxy:
        env |= moto.env | s3_env(
            proxy.endpoint, bucket, DBT_RUNNER_STATE_URL=f"s3://{bucket}/state"
        )
        assert run_cli("run", env=env).returncode == 0  # a good run: the state
        key = "state/demo/dev/state/latest.json"
        good = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        # After the build: the state's and the artifacts' manifest.json (the run's start
        # mark, last_run.json, went up before dbt started).
        proxy.faults.append(
            Fault(503, "ServiceUnavailable", method="PUT", path_contains="manifest.json")
        )
        env |= hook(httpserver) | {"DBT_RUNNER_AWS__CONNECT_TIMEOUT_S": "1"}
        result = run_cli("run", env=env)
    assert result.returncode == 4, result.stdout[-3000:]
    report = read_json(tmp_path / "work" / "report" / "report.json")
    assert [p["status"] for p in report["phases"]][-3:] == ["success", "success", "success"]
    assert {e["stage"] for e in report["errors"]} >= {"state", "publish"}
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == good
    run_dir = tmp_path / "work" / "runs" / report["run_id"]
    assert (run_dir / "target" / "manifest.json").is_file()
    assert f"local artifacts kept in {run_dir / 'target'}" in result.stdout
    assert delivered(httpserver)[0]["status"] == "infra_error"


def test_s3_unreachable_fails_fast_and_bounded(
    env: dict[str, str], moto: Moto, tmp_path: Path
) -> None:
    env |= moto.env | {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens here
        "DBT_RUNNER_ARTIFACTS_URL": "s3://artifacts/dbt",
        "DBT_RUNNER_AWS__CONNECT_TIMEOUT_S": "1",
    }
    started = time.monotonic()
    result = run_cli("run", env=env)
    assert result.returncode == 4, result.stdout[-3000:]
    assert time.monotonic() - started < 60  # bounded: retries do not go on for ever
    assert "Running with dbt" not in result.stdout
    assert "cannot write s3://artifacts/dbt/demo/dev/runs/" in result.stderr.splitlines()[0]
    report = read_json(tmp_path / "work" / "report" / "report.json")
    assert (report["status"], report["exit_code"], report["phases"]) == ("infra_error", 4, [])


def test_warehouse_that_drops_the_connection_mid_run(
    env: dict[str, str],
    demo_project: Path,
    out_dir: Path,
    postgres: Postgres,
    tmp_path: Path,
    httpserver: HTTPServer,
) -> None:
    state = tmp_path / "state"
    env |= postgres.warehouse_env("drop_" + uuid.uuid4().hex[:6]) | {
        "DBT_RUNNER_STATE_URL": str(state)
    }
    assert run_cli("run", env=env).returncode == 0
    good = pointer(state)
    add_slow_model(demo_project)
    env |= hook(httpserver)
    started = Started(env, tmp_path / "run.log")
    [pid] = wait_until(lambda: running_queries(postgres, SLOW), 180, "the slow model's query")
    postgres.query("select pg_terminate_backend(%s)", pid)
    code, output = started.finish(timeout=120)
    assert code == 1, output[-3000:]
    report = read_json(out_dir / "report.json")
    slow = by_id(report, "build")["model.demo.slow_model"]
    assert slow["status"] == "error"
    assert "closed the connection" in slow["message"] or "terminating" in slow["message"]
    assert by_id(report, "build")["model.demo.after_slow"]["status"] == "skipped"
    assert pointer(state) == good
    assert delivered(httpserver)[0]["status"] == "failed"
