"""Redshift IAM credentials that outlive the build: AWS's temporary passwords expire,
dbt opens a connection per node, and a node that starts after the expiry must still log
in. The credentials here live 4 s (moto's, shortened by a proxy), the cluster is a local
endpoint that accepts only live passwords AWS issued, and the first model sleeps past
the lifetime, so the second model's connection opens after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.redshift_login import Issued, LoginRelay, issuing_credentials, login_relay
from tests.support import Moto, Postgres, postgres_server, run_cli

LIFETIME_S = 4.0


@pytest.fixture(scope="module")
def trusting_postgres() -> Iterator[Postgres]:
    with postgres_server(auth="trust") as server:
        yield server


@contextmanager
def redshift(
    moto: Moto, pg: Postgres, lifetime_s: float
) -> Iterator[tuple[str, Issued, LoginRelay]]:
    """A cluster in moto whose credentials live `lifetime_s`, and its login endpoint."""
    name = f"analytics-{uuid.uuid4().hex[:8]}"
    moto.redshift_cluster(name)
    with (
        issuing_credentials(moto.endpoint, lifetime_s) as issued,
        login_relay(issued, pg.host, pg.port, pg.user, pg.database) as relay,
    ):
        yield name, issued, relay


@pytest.fixture
def cluster(moto: Moto, trusting_postgres: Postgres) -> Iterator[tuple[str, Issued, LoginRelay]]:
    with redshift(moto, trusting_postgres, LIFETIME_S) as found:
        yield found


@pytest.fixture
def lasting_cluster(
    moto: Moto, trusting_postgres: Postgres
) -> Iterator[tuple[str, Issued, LoginRelay]]:
    """Credentials that outlive the test: which password each login used is the point."""
    with redshift(moto, trusting_postgres, 600) as found:
        yield found


def two_models(folder: Path, schema: str) -> Path:
    """Two tables, one connection each (threads 1); the first outlasts the credentials."""
    (folder / "models").mkdir(parents=True)
    project = {
        "name": "twoconn",
        "version": "1.0",
        "profile": "twoconn",
        "models": {"twoconn": {"+materialized": "table", "+schema": schema}},
    }
    (folder / "dbt_project.yml").write_text(yaml.safe_dump(project))
    sleep = f"pg_sleep({LIFETIME_S + 1})"
    (folder / "models" / "first.sql").write_text(f"select 1 as id, {sleep} is null as slept")
    (folder / "models" / "second.sql").write_text("select id from {{ ref('first') }}")
    return folder


def own_profile(project: Path, name: str, relay: LoginRelay, pg: Postgres) -> None:
    """The project's own profiles.yml, reading the user and password the runner fetches
    (threads 1: a connection per node, one after the other)."""
    output = {
        "type": "redshift",
        "host": relay.host,
        "port": relay.port,
        "user": "{{ env_var('DBT_WAREHOUSE_USER') }}",
        "password": "{{ env_var('DBT_ENV_SECRET_WAREHOUSE_PASSWORD') }}",
        "dbname": pg.database,
        "schema": "public",
        "threads": 1,
    }
    profiles = {name: {"target": "dev", "outputs": {"dev": output}}}
    (project / "profiles.yml").write_text(yaml.safe_dump(profiles))


def job_env(
    env: dict[str, str], moto: Moto, cluster: tuple[str, Issued, LoginRelay], project: Path
) -> dict[str, str]:
    name, issued, relay = cluster
    job = {k: v for k, v in env.items() if not k.startswith("DBT_RUNNER_WAREHOUSE__")}
    return (
        job
        | moto.env
        | relay.env
        | {
            "AWS_ENDPOINT_URL_REDSHIFT": issued.url,
            "DBT_RUNNER_PROJECT_DIR": str(project),
            "DBT_RUNNER_JOB": "custom",
            "DBT_RUNNER_PHASES": "build",
            "DBT_RUNNER_THREADS": "1",
            "DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID": name,
            "DBT_RUNNER_CREDENTIALS__REDSHIFT_DB_USER": "dbt_prod",
        }
    )


def test_a_connection_opened_after_the_credentials_expire_still_logs_in(
    env: dict[str, str],
    moto: Moto,
    trusting_postgres: Postgres,
    cluster: tuple[str, Issued, LoginRelay],
    tmp_path: Path,
) -> None:
    _, issued, relay = cluster
    schema = f"iam_{uuid.uuid4().hex[:8]}"
    job = job_env(env, moto, cluster, two_models(tmp_path / "twoconn", schema)) | {
        "DBT_RUNNER_WAREHOUSE__TYPE": "redshift",
        "DBT_RUNNER_WAREHOUSE__HOST": relay.host,
        "DBT_RUNNER_WAREHOUSE__PORT": str(relay.port),
        "DBT_RUNNER_WAREHOUSE__DATABASE": trusting_postgres.database,
    }
    result = run_cli("run", env=job)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # The driver asked AWS again once the first credentials had expired, and every login
    # used a live password (the runner itself asked for none: the host was given).
    assert issued.calls >= 2
    assert all(login.accepted for login in relay.logins)
    assert {login.user for login in relay.logins} == {"IAM:dbt_prod"}
    assert len({login.password for login in relay.logins}) == issued.calls
    tables = trusting_postgres.tables(f"public_{schema}")
    assert tables == {"first", "second"}


def test_a_projects_own_profile_gets_a_password_that_expires_and_is_told_so(
    env: dict[str, str],
    moto: Moto,
    trusting_postgres: Postgres,
    cluster: tuple[str, Issued, LoginRelay],
    tmp_path: Path,
) -> None:
    """The fetched-password path, kept for a project's own profiles.yml: fetched again
    before each dbt command, but a connection one command opens after the password
    expired cannot log in (the same build the native profile passes), and the job said
    so at its start."""
    _, issued, relay = cluster
    project = two_models(tmp_path / "twoconn", f"own_{uuid.uuid4().hex[:8]}")
    own_profile(project, "twoconn", relay, trusting_postgres)
    job = job_env(env, moto, cluster, project)
    result = run_cli("run", env=job)
    # 1 when a node's login failed, 2 when the build's own first connection did: either
    # way once the password had expired.
    assert result.returncode in (1, 2), result.stdout[-3000:] + result.stderr[-2000:]
    assert "gets a Redshift password that lasts 900 s" in result.stdout
    assert issued.calls == 2  # at the start, and again before the build
    refused = [login for login in relay.logins if not login.accepted]
    assert refused and refused[0].user == "IAM:dbt_prod"
    assert 'password authentication failed for user "IAM:dbt_prod"' in result.stdout


def test_a_projects_own_profile_gets_a_fresh_password_for_each_dbt_command(
    env: dict[str, str],
    moto: Moto,
    trusting_postgres: Postgres,
    lasting_cluster: tuple[str, Issued, LoginRelay],
    tmp_path: Path,
) -> None:
    """Fetched again before each dbt command (dbt renders the profile per command): the
    `run` logs in with the password fetched before it, the `test` with the next one."""
    _, issued, relay = lasting_cluster
    project = tmp_path / "onemodel"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": "onemodel", "version": "1.0", "profile": "onemodel"})
    )
    schema = f"fresh_{uuid.uuid4().hex[:8]}"
    (project / "models" / "one.sql").write_text(
        "{{ config(materialized='table', schema='" + schema + "') }}\nselect 1 as id"
    )
    tests = {"models": [{"name": "one", "columns": [{"name": "id", "tests": ["not_null"]}]}]}
    (project / "models" / "one.yml").write_text(yaml.safe_dump(tests))
    own_profile(project, "onemodel", relay, trusting_postgres)
    job = job_env(env, moto, lasting_cluster, project) | {"DBT_RUNNER_PHASES": "run,test"}
    result = run_cli("run", env=job)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    fetched = list(issued.expiry)  # in the order AWS issued them
    assert len(fetched) == 3  # at the start, then before each of the two commands
    used = list(dict.fromkeys(login.password for login in relay.logins))
    assert used == fetched[1:]  # run's logins, then test's; never the first one
    assert trusting_postgres.tables(f"public_{schema}") == {"one"}
