"""Docs and artifacts on S3 (a real moto server) and notifications to a real HTTP
server: payloads, signatures, policies and faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request

from tests.integration.test_failures import add_failures
from tests.support import Moto, find_secret, read_json, run_cli

SECRET = "whsec-" + uuid.uuid4().hex


def bucket(moto: Moto) -> str:
    name = "artifacts-" + uuid.uuid4().hex[:10]
    moto.client("s3").create_bucket(Bucket=name)
    return name


def keys(moto: Moto, name: str, prefix: str) -> list[str]:
    response = moto.client("s3").list_objects_v2(Bucket=name, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def content_type(moto: Moto, name: str, key: str) -> str:
    value: str = moto.client("s3").head_object(Bucket=name, Key=key)["ContentType"]
    return value


def test_docs_and_artifacts_land_on_s3(env: dict[str, str], moto: Moto, tmp_path: Path) -> None:
    name = bucket(moto)
    env |= moto.env | {"DBT_RUNNER_ARTIFACTS_URL": f"s3://{name}/dbt", "DBT_RUNNER_ENV": "prod"}
    # A file of an older docs site, which a new one replaces.
    moto.client("s3").put_object(Bucket=name, Key="dbt/demo/prod/docs/old-asset.js", Body=b"x")
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(tmp_path / "work" / "report" / "report.json")  # local copy, for CI
    run = f"dbt/demo/prod/runs/{report['run_id']}"
    assert report["links"] == {
        "run_url": f"s3://{name}/{run}",
        "docs_url": f"s3://{name}/dbt/demo/prod/docs/index.html",
        "report_url": f"s3://{name}/{run}/report.html",
    }
    run_keys = keys(moto, name, run + "/")
    for file in (
        "report.json",
        "report.html",
        "summary.md",
        "junit.xml",
        "manifest.json",
        "run_results.json",
        "sources.json",
        "catalog.json",
        "dbt.log",
        "index.html",
        "phases/build/run_results.json",
    ):
        assert f"{run}/{file}" in run_keys, file
    assert keys(moto, name, "dbt/demo/prod/docs/") == [
        f"dbt/demo/prod/docs/{file}"
        for file in (
            "catalog.json",
            "index.html",
            "manifest.json",
            "report.html",  # the latest run's page, beside the docs
            "static_index.html",
        )
    ]
    assert content_type(moto, name, f"{run}/report.html") == "text/html; charset=utf-8"
    assert content_type(moto, name, "dbt/demo/prod/docs/index.html") == "text/html; charset=utf-8"
    assert content_type(moto, name, f"{run}/manifest.json") == "application/json"
    assert content_type(moto, name, f"{run}/junit.xml") == "application/xml"
    assert content_type(moto, name, f"{run}/summary.md") == "text/markdown; charset=utf-8"
    uploaded = json.loads(
        moto.client("s3").get_object(Bucket=name, Key=f"{run}/report.json")["Body"].read()
    )
    assert uploaded["run_id"] == report["run_id"] and uploaded["status"] == "success"

    # A run without docs leaves the published docs as they are.
    before = moto.client("s3").head_object(Bucket=name, Key="dbt/demo/prod/docs/index.html")["ETag"]
    again = run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env)
    assert again.returncode == 0
    after = moto.client("s3").head_object(Bucket=name, Key="dbt/demo/prod/docs/index.html")["ETag"]
    assert before == after
    assert read_json(tmp_path / "work" / "report" / "report.json")["links"]["docs_url"] is None


def test_public_url_makes_links_clickable(env: dict[str, str], moto: Moto, tmp_path: Path) -> None:
    name = bucket(moto)
    env |= moto.env | {
        "DBT_RUNNER_ARTIFACTS_URL": f"s3://{name}",
        "DBT_RUNNER_ARTIFACTS_PUBLIC_URL": "https://dbt-docs.example.com/",
    }
    result = run_cli("run", "--job", "custom", "--phases", "deps,seed,docs", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    links = read_json(tmp_path / "work" / "report" / "report.json")["links"]
    assert links["docs_url"] == "https://dbt-docs.example.com/demo/dev/docs/index.html"
    assert links["run_url"].startswith("https://dbt-docs.example.com/demo/dev/runs/")


def notify_env(server: HTTPServer, **extra: str) -> dict[str, str]:
    return {
        "DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL": server.url_for("/slack/T000/B000/xyz"),
        "DBT_RUNNER_NOTIFY__WEBHOOK_URL": server.url_for("/hook"),
        "DBT_RUNNER_NOTIFY__WEBHOOK_SECRET": SECRET,
        **extra,
    }


def received(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


def verify(request: Request) -> dict[str, Any]:
    """What a receiver does: recompute the signature over the raw body."""
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Dbt-Runner-Signature-256"], expected)
    payload: dict[str, Any] = json.loads(body)
    return payload


def test_success_notifies_slack_webhook_and_triggers(
    env: dict[str, str], httpserver: HTTPServer, out_dir: Path
) -> None:
    for path in (
        "/slack/T000/B000/xyz",
        "/hook",
        "/airflow/api/v1/dags/reports/dagRuns",
        "/bi/sync",
    ):
        httpserver.expect_request(path, method="POST").respond_with_data("ok")
    triggers = [
        {
            "url": httpserver.url_for("/airflow/api/v1/dags/reports/dagRuns"),
            "headers": {"Authorization": "env:AIRFLOW_AUTH"},
            "body": {"conf": {"source": "dbt"}},
        },
        {"url": httpserver.url_for("/bi/sync")},
    ]
    env |= notify_env(httpserver, DBT_RUNNER_NOTIFY__TRIGGERS=json.dumps(triggers))
    env["AIRFLOW_AUTH"] = "Bearer airflow-token-" + uuid.uuid4().hex
    result = run_cli("run", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    report = read_json(out_dir / "report.json")

    [slack] = received(httpserver, "/slack/T000/B000/xyz")
    message = slack.get_json()
    assert message["text"].startswith("✅ demo/dev full: success")
    blocks = json.dumps(message["blocks"])
    for fact in (
        "*Project*\\ndemo",
        "*Environment*\\ndev",
        "*Job*\\nfull",
        "28 ok",
        report["run_id"],
    ):
        assert fact in blocks, fact
    assert "demo/dev/docs/index.html" in blocks

    [hook] = received(httpserver, "/hook")
    payload = verify(hook)
    assert (payload["status"], payload["exit_code"], payload["run_id"]) == (
        "success",
        0,
        report["run_id"],
    )
    assert payload["counts"] == {"ok": 28, "warn": 0, "failed": 0, "skipped": 0}
    assert hook.headers["X-Dbt-Runner-Event"] == "run.finished"

    [airflow] = received(httpserver, "/airflow/api/v1/dags/reports/dagRuns")
    assert airflow.headers["Authorization"] == env["AIRFLOW_AUTH"]
    assert airflow.get_json() == {"conf": {"source": "dbt"}}
    [bi] = received(httpserver, "/bi/sync")
    assert bi.get_json()["event"] == "run.succeeded"
    # The token from the environment is nowhere in the logs or reports.
    assert find_secret(env["AIRFLOW_AUTH"], result.stdout + result.stderr, out_dir) == []
    assert find_secret(SECRET, result.stdout + result.stderr, out_dir) == []


def test_failure_notifies_with_failures_and_skips_triggers(
    env: dict[str, str], demo_project: Path, httpserver: HTTPServer
) -> None:
    add_failures(demo_project)
    httpserver.expect_request("/slack/T000/B000/xyz", method="POST").respond_with_data("ok")
    httpserver.expect_request("/trigger", method="POST").respond_with_data("ok")
    env |= notify_env(
        httpserver,
        DBT_RUNNER_NOTIFY__WEBHOOK_POLICY="success",
        DBT_RUNNER_NOTIFY__TRIGGERS=httpserver.url_for("/trigger"),
    )
    result = run_cli("run", env=env)
    assert result.returncode == 1
    [slack] = received(httpserver, "/slack/T000/B000/xyz")
    blocks = json.dumps(slack.get_json()["blocks"])
    assert "*Failures*" in blocks
    assert "model.demo.broken_model" in blocks and "no_such_column" in blocks
    assert "test.demo.assert_no_orders" in blocks
    assert received(httpserver, "/hook") == []  # policy: success only
    assert received(httpserver, "/trigger") == []  # triggers follow successful runs only


def test_webhook_500_warns_and_keeps_exit_0(env: dict[str, str], httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("down", status=500)
    env |= {
        "DBT_RUNNER_NOTIFY__WEBHOOK_URL": httpserver.url_for("/hook"),
        "DBT_RUNNER_NOTIFY__RETRIES": "2",
    }
    result = run_cli("run", "--job", "custom", "--phases", "deps,seed", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(received(httpserver, "/hook")) == 3  # one try and two bounded retries
    assert "WARNING: notification failed, exit code unchanged: webhook" in result.stdout


def test_infra_failure_still_notifies(
    env: dict[str, str], moto: Moto, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env |= (
        moto.env
        | notify_env(httpserver)
        | {
            "DBT_RUNNER_WAREHOUSE__TYPE": "postgres",
            "DBT_RUNNER_CREDENTIALS__GLUE_CONNECTION": "missing-connection",
        }
    )
    result = run_cli("run", env=env)
    assert result.returncode == 4
    payload = verify(received(httpserver, "/hook")[0])
    assert (payload["status"], payload["exit_code"]) == ("infra_error", 4)
    assert "missing-connection" in payload["errors"][0]["message"]


def test_invalid_settings_still_notify(env: dict[str, str], httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env |= notify_env(httpserver) | {"DBT_RUNNER_JOB": "nightly", "DBT_RUNNER_ENV": "prod"}
    result = run_cli("run", env=env)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1
    payload = verify(received(httpserver, "/hook")[0])
    assert (payload["status"], payload["project"], payload["env"]) == (
        "config_error",
        "demo",
        "prod",
    )
    assert "DBT_RUNNER_JOB='nightly'" in payload["errors"][0]["message"]


@pytest.mark.parametrize(
    ("name", "value", "message", "echoed"),
    [
        # Webhook and trigger URLs carry tokens: the value is never echoed.
        (
            "DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL",
            "hooks.slack.com/T0/tok",
            "must start with http",
            False,
        ),
        ("DBT_RUNNER_NOTIFY__TRIGGERS", '[{"url": "ftp://tok@x"}]', "must start with http", False),
        (
            "DBT_RUNNER_NOTIFY__SLACK_POLICY",
            "sometimes",
            "'always', 'failure', 'success' or 'never'",
            True,
        ),
        (
            "DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID",
            "c1",
            "needs DBT_RUNNER_CREDENTIALS__REDSHIFT_DB_USER",
            False,
        ),
    ],
)
def test_cloud_settings_are_validated(
    env: dict[str, str], name: str, value: str, message: str, echoed: bool
) -> None:
    result = run_cli("check", env=env | {name: value})
    assert result.returncode == 3
    assert message in result.stderr
    assert ("tok" in result.stderr) is False
    assert (f"'{value}'" in result.stderr) is echoed
