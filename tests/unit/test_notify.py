"""Notification payloads, policies and signatures, without a network."""

from __future__ import annotations

import pytest

from dbt_runner.config import Policy
from dbt_runner.errors import ExitCode
from dbt_runner.outputs.notify import wanted
from dbt_runner.outputs.notify.payloads import slack_message, summary
from dbt_runner.outputs.notify.transport import resolve_header, safe_url, sign
from dbt_runner.report.model import NodeResult, PhaseResult, RunReport
from dbt_runner.report.parts import ReachInfo, StateInfo


def report(exit_code: int = 0, failures: int = 0) -> RunReport:
    r = RunReport(runner_version="1.0.0", env="prod", job="slim", run_id="r-1", project="shop")
    r.phases = [PhaseResult(name="build", status="failed" if failures else "success")]
    r.nodes = [
        NodeResult(
            unique_id=f"model.shop.m{i}",
            name=f"m{i}",
            resource_type="model",
            phase="build",
            status="error",
            outcome="failed",
            message=f"Database Error {i}\n  detail",
        )
        for i in range(failures)
    ]
    if exit_code == ExitCode.INFRA:
        r.add_error("publish", "cannot write s3://b/k", ExitCode.INFRA)
    r.finish()
    return r


@pytest.mark.parametrize(
    ("policy", "on_success", "on_failure"),
    [
        (Policy.ALWAYS, True, True),
        (Policy.SUCCESS, True, False),
        (Policy.FAILURE, False, True),
        (Policy.NEVER, False, False),
    ],
)
def test_policies(policy: Policy, on_success: bool, on_failure: bool) -> None:
    assert wanted(policy, report()) is on_success
    assert wanted(policy, report(failures=1)) is on_failure


def test_signature_is_hmac_sha256_of_the_body() -> None:
    # RFC 4231, test case 2: a vector computed by others, not by this code's method.
    body = b"what do ya want for nothing?"
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign(body, "Jefe") == f"sha256={expected}"
    assert sign(body + b" ", "Jefe") != sign(body, "Jefe")


def test_summary_lists_first_failures_and_totals() -> None:
    data = summary(report(failures=15), max_failures=10)
    assert (data["status"], data["exit_code"], data["failures_total"]) == ("failed", 1, 15)
    assert len(data["failures"]) == 10
    assert data["counts"]["failed"] == 15


def test_slack_message_links_and_limits() -> None:
    r = report(failures=12)
    r.links.docs_url = "https://docs.example.com/shop/prod/docs/index.html"
    r.links.run_url = "s3://bucket/shop/prod/runs/r-1"
    message = slack_message(r, max_failures=10)
    text = str(message["blocks"])
    assert message["text"] == "❌ shop/prod slim: failed (exit code 1)"
    assert "<https://docs.example.com/shop/prod/docs/index.html|Docs>" in text
    assert "Run artifacts: `s3://bucket/shop/prod/runs/r-1`" in text  # not clickable: shown
    assert "… and 2 more" in text and "Database Error 0 detail" in text
    infra = slack_message(report(exit_code=ExitCode.INFRA))
    assert "*publish*: cannot write s3://b/k" in str(infra["blocks"])


def test_slack_message_says_how_many_children_were_left() -> None:
    r = report()
    r.state = StateInfo(
        url="file:///s", mode="slim", reach=ReachInfo(mode="affected", built=2, skipped=38)
    )
    text = str(slack_message(r)["blocks"])
    assert "*Children:* 2 of 40 descendant(s) of the changes built; 38 left as they are" in text
    r.state.reach = ReachInfo(mode="all", reason="the state's SQL was compiled by another dbt")
    assert "every descendant of the changes built (the state's SQL" in str(slack_message(r))
    assert "*Children:*" not in str(slack_message(report())["blocks"])


def test_safe_url_drops_tokens() -> None:
    assert (
        safe_url("https://user:pw@hooks.example.com/services/T/B?token=abc")
        == "https://hooks.example.com/services/T/B"
    )


def test_safe_url_keeps_the_port() -> None:
    assert safe_url("http://127.0.0.1:5601/hook?k=v") == "http://127.0.0.1:5601/hook"


def test_header_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BI_TOKEN", "t0k")
    assert resolve_header("env:BI_TOKEN", lambda ref: "never") == "t0k"
    assert resolve_header("secret:bi#token", lambda ref: f"from {ref}") == "from bi#token"
    assert resolve_header("Bearer literal", lambda ref: "never") == "Bearer literal"
    with pytest.raises(Exception, match="MISSING_VAR is not set"):
        resolve_header("env:MISSING_VAR", lambda ref: "")
