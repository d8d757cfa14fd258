"""Settings: parsing, precedence and the one-line error for every kind of bad value."""

from __future__ import annotations

import pytest

from dbt_runner.config import (
    Job,
    Phase,
    Settings,
    known_env_names,
    load_settings,
    unknown_env_names,
)
from dbt_runner.errors import ConfigError
from tests.support import DEMO


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("DBT_RUNNER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DBT_RUNNER_PROJECT_DIR", str(DEMO))


def test_defaults() -> None:
    settings = load_settings()
    assert settings.job is Job.FULL
    assert settings.job_phases == [
        Phase.DEPS,
        Phase.DEBUG,
        Phase.SEED,
        Phase.BUILD,
        Phase.FRESHNESS,
        Phase.DOCS,
    ]
    assert settings.advisory_phases == [Phase.LINT, Phase.FRESHNESS, Phase.DOCS]
    assert settings.artifacts_url.startswith("file:///") and settings.artifacts_url.endswith("/out")
    assert settings.project_dir == DEMO


def test_environment_nested_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_RUNNER_JOB", "custom")
    monkeypatch.setenv("DBT_RUNNER_PHASES", "build, seed deps")
    monkeypatch.setenv("DBT_RUNNER_WAREHOUSE__TYPE", "postgres")
    monkeypatch.setenv("DBT_RUNNER_WAREHOUSE__SCHEMA", "analytics")
    monkeypatch.setenv("DBT_RUNNER_WAREHOUSE__EXTRA", '{"keepalives_idle": 30}')
    monkeypatch.setenv("DBT_RUNNER_VARS", "{start: 2026-01-01, n: 3}")
    settings = load_settings()
    # Listed in any order, run in the data path's order.
    assert settings.job_phases == [Phase.DEPS, Phase.SEED, Phase.BUILD]
    assert settings.warehouse.type == "postgres"
    assert settings.warehouse.schema_ == "analytics"
    assert settings.warehouse.extra == {"keepalives_idle": 30}
    assert settings.vars == {"start": __import__("datetime").date(2026, 1, 1), "n": 3}


def test_cli_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_RUNNER_SELECT", "tag:nightly")
    monkeypatch.setenv("DBT_RUNNER_THREADS", "8")
    settings = load_settings({"select": "orders+"}, {"select": "--select"})
    assert (settings.select, settings.threads) == ("orders+", 8)


def test_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_RUNNER_WAREHOUSE__PASSWORD", "hunter2-secret")
    settings = load_settings()
    assert "hunter2-secret" not in repr(settings) + str(settings.redacted())
    assert settings.warehouse.password is not None
    assert settings.warehouse.password.get_secret_value() == "hunter2-secret"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "DBT_RUNNER_JOB",
            "nightly",
            "DBT_RUNNER_JOB='nightly': input should be 'full', 'slim', 'fresh' or 'custom'",
        ),
        (
            "DBT_RUNNER_PHASES",
            "seed,,tset",
            "DBT_RUNNER_PHASES='seed,,tset': 'tset' is not a phase (did you mean 'test'?)",
        ),
        ("DBT_RUNNER_PHASES", "seed,seed", "'seed' is listed twice"),
        ("DBT_RUNNER_ENV", "Prod", "DBT_RUNNER_ENV='Prod': use lower-case letters"),
        ("DBT_RUNNER_RUN_ID", "../etc", "DBT_RUNNER_RUN_ID='../etc': use letters, digits"),
        (
            "DBT_RUNNER_THREADS",
            "0",
            "DBT_RUNNER_THREADS='0': input should be greater than or equal to 1",
        ),
        ("DBT_RUNNER_VARS", "[1, 2]", "DBT_RUNNER_VARS='[1, 2]': expected a mapping"),
        (
            "DBT_RUNNER_ARTIFACTS_URL",
            "s3://",
            "DBT_RUNNER_ARTIFACTS_URL='s3://': no valid bucket name",
        ),
        ("DBT_RUNNER_ARTIFACTS_URL", "file://relative/x", "three slashes"),
        (
            "DBT_RUNNER_WAREHOUSE__PORT",
            "99999",
            "DBT_RUNNER_WAREHOUSE__PORT='99999': input should be less than or equal to 65535",
        ),
        ("DBT_RUNNER_PROFILES_DIR", "/tmp", "DBT_RUNNER_PROFILES_DIR='/tmp': no profiles.yml"),
        (
            "DBT_RUNNER_WAREHOUSE__HOSTNAME",
            "db",
            "DBT_RUNNER_WAREHOUSE__HOSTNAME is not a known setting "
            "(did you mean DBT_RUNNER_WAREHOUSE__HOST?)",
        ),
    ],
)
def test_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert message in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == 3


def test_secret_values_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_RUNNER_WAREHOUSE", '{"password": 123456789}')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "123456789" not in caught.value.message


def test_rules_across_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_RUNNER_JOB", "custom")
    with pytest.raises(ConfigError, match="DBT_RUNNER_JOB=custom needs DBT_RUNNER_PHASES"):
        load_settings()
    monkeypatch.setenv("DBT_RUNNER_PHASES", "build")
    monkeypatch.setenv("DBT_RUNNER_SELECTOR", "nightly")
    monkeypatch.setenv("DBT_RUNNER_SELECT", "orders")
    with pytest.raises(ConfigError, match="DBT_RUNNER_SELECTOR cannot be combined"):
        load_settings()


def test_cli_errors_name_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"^--threads='x': "):
        load_settings({"threads": "x"}, {"threads": "--threads"})


def test_every_setting_has_a_known_name() -> None:
    names = known_env_names()
    assert {
        "DBT_RUNNER_JOB",
        "DBT_RUNNER_WAREHOUSE__SCHEMA",
        "DBT_RUNNER_WAREHOUSE__PASSWORD",
    } <= names
    assert (
        unknown_env_names({"DBT_RUNNER_WAREHOUSE__EXTRA__KEEPALIVES": "1", "DBT_RUNNER_JOB": "x"})
        == []
    )
    assert unknown_env_names({"DBT_RUNNER_SELCT": "x", "DBT_TARGET": "x"}) == ["DBT_RUNNER_SELCT"]
    assert len(Settings.model_fields) + 12 < len(names)  # nested warehouse fields are included


def test_every_invalid_setting_is_named_on_the_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_RUNNER_JOB", "nightly")
    monkeypatch.setenv("DBT_RUNNER_THREADS", "0")
    monkeypatch.setenv("DBT_RUNNER_WAREHOUSE__PORT", "x")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message.startswith("DBT_RUNNER_JOB='nightly': ")
    assert caught.value.message.endswith(
        "(also invalid: DBT_RUNNER_THREADS, DBT_RUNNER_WAREHOUSE__PORT)"
    )
