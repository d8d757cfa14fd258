"""The cases nobody listed: a user's timeline of interrupted jobs and the commands that
follow them, with the state's promise checked after every step.

On a generated project (PostgreSQL: tables with views on some of them, which a rebuild
of what they read drops; the state in S3 through a fault-injecting proxy), full and
slim jobs are stopped at every stage boundary and inside the build, by SIGTERM and by
SIGKILL (at a log line the runner or dbt prints, or at the very S3 write of a
promotion). Each stop is followed by what a user types next: a retry, a slim job after
a one-model change, a slim job with another schema, a retry of an older stopped run, a
build by hand through `dbt-runner dbt` (then reverted), or another env's job in the
same schema (with code of its own, then reverted); and, when that fails, the job
again. After every step:

- the promoted state's promise holds: each model its manifest names exists in the
  schema of the target it records, with the columns its recorded code makes, but those
  the target's write log says were written since (the next slim job builds them);
- every exit 0 of a command that ran dbt is backed: the current target holds every
  model of the current code, with its columns.

CI runs a modest sweep; `DBT_RUNNER_SWEEP=long` (make bench) a larger project.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import (
    Fault,
    FaultProxy,
    Moto,
    Postgres,
    Started,
    read_json,
    run_cli,
    wait_until,
    written_after,
)

LONG = os.environ.get("DBT_RUNNER_SWEEP") == "long"
MODELS = 300 if LONG else 40
BASE_COLUMNS = {"id", "value", "category"}
CHANGED = re.compile(r"\bas (changed_\w+)")
BUILT = re.compile(r"OK created sql \w+ model")


# --- the project ----------------------------------------------------------------------


def generate(dest: Path, models: int) -> Path:
    """Seeds as sources, staging models, a DAG of tables each reading one or two earlier
    ones, a not_null test on every fifth, a local package: every model selects id, value
    and category."""
    for folder in ("seeds", "models/staging", "models/layers", "packages/util/macros"):
        (dest / folder).mkdir(parents=True)
    (dest / "packages.yml").write_text("packages:\n  - local: packages/util\n")
    (dest / "packages/util/dbt_project.yml").write_text(
        "name: util\nversion: '1.0.0'\nconfig-version: 2\n"
    )
    (dest / "packages/util/macros/plus.sql").write_text(
        "{% macro plus(column, k) %}({{ column }} + {{ k }}){% endmacro %}\n"
    )
    project = {
        "name": "sweep",
        "version": "1.0.0",
        "profile": "sweep",
        "config-version": 2,
        "models": {"sweep": {"+materialized": "table"}},
        "seeds": {"sweep": {"+column_types": {"loaded_at": "timestamp"}}},
    }
    (dest / "dbt_project.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    tables = []
    for i in range(2):
        rows = [f"{r},{(r * 37 + i) % 100},{'abcde'[r % 5]},2026-11-01 00:00:00" for r in range(20)]
        (dest / "seeds" / f"raw_{i}.csv").write_text(
            "id,value,category,loaded_at\n" + "\n".join(rows) + "\n"
        )
        freshness = {"warn_after": {"count": 36500, "period": "day"}}
        tables.append({"name": f"raw_{i}", "loaded_at_field": "loaded_at", "freshness": freshness})
        (dest / "models/staging" / f"stg_{i}.sql").write_text(
            f"-- depends_on: {{{{ ref('raw_{i}') }}}}\n"  # the seed that loads the source
            f"select id, value, category from {{{{ source('raw', 'raw_{i}') }}}}\n"
        )
    sources = {"sources": [{"name": "raw", "schema": "{{ target.schema }}", "tables": tables}]}
    (dest / "models/staging/_sources.yml").write_text(yaml.safe_dump(sources))
    names = ["stg_0", "stg_1"]
    tested = []
    for i in range(models - 2):
        name = f"m_{i:04d}"
        first, second = names[(i * 7) % len(names)], names[(i * 3 + 1) % len(names)]
        if i % 3 == 0 or first == second:
            sql = (
                f"select a.id, {{{{ util.plus('a.value', {i}) }}}} as value, a.category\n"
                f"from {{{{ ref('{first}') }}}} a\n"
            )
        else:
            sql = (
                "select a.id, a.value + b.value as value, a.category\n"
                f"from {{{{ ref('{first}') }}}} a join {{{{ ref('{second}') }}}} b on a.id = b.id\n"
            )
        if i % 4 == 1:  # a view: PostgreSQL drops it with what it reads
            sql = "{{ config(materialized='view') }}\n" + sql
        (dest / "models/layers" / f"{name}.sql").write_text(sql)
        names.append(name)
        if i % 5 == 0:
            tested.append({"name": name, "columns": [{"name": "id", "data_tests": ["not_null"]}]})
    (dest / "models/layers/_tests.yml").write_text(yaml.safe_dump({"models": tested}))
    return dest


def change_one_model(project: Path, tag: str) -> str:
    """A new column in one model, as a developer adds one: the model's name."""
    models = sorted((project / "models" / "layers").glob("m_*.sql"))
    path = models[int(hashlib.sha256(tag.encode()).hexdigest(), 16) % len(models)]
    path.write_text(path.read_text().replace("select ", f"select 1 as changed_{tag}, ", 1))
    return path.stem


def change_packages(project: Path, tag: str) -> None:
    """packages.yml edited: the next job's `dbt deps` has work to do (an unchanged one
    is skipped)."""
    packages = project / "packages.yml"
    packages.write_text(packages.read_text() + f"# {tag}\n")


def code_columns(sql: str) -> set[str]:
    return BASE_COLUMNS | set(CHANGED.findall(sql))


# --- the warehouse and the state --------------------------------------------------------


@dataclass
class World:
    postgres: Postgres
    s3: Any
    bucket: str
    project: Path
    out: Path
    env: dict[str, str]
    schemas: tuple[str, str]
    schema: str = ""
    steps: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # the run ids of the stopped jobs

    def columns(self, schema: str) -> dict[str, set[str]]:
        rows = self.postgres.query(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = %s",
            schema,
        )
        found: dict[str, set[str]] = {}
        for table, column in rows:
            found.setdefault(table, set()).add(column)
        return found

    def state_object(self, key: str) -> bytes | None:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return body

    def pointer(self) -> dict[str, Any] | None:
        data = self.state_object("state/sweep/dev/state/latest.json")
        return json.loads(data) if data is not None else None

    def written_since(self, pointer: dict[str, Any]) -> set[str] | None:
        """The models written into the state's target since it (tests.support)."""
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="state/sweep/_targets/")
        keys = [item["Key"] for item in listed.get("Contents", [])]
        return written_after(pointer, [json.loads(self.state_object(k) or b"{}") for k in keys])

    def check_state(self, step: str) -> None:
        """What the next slim job will trust holds: each model the promoted state names
        exists in its target's schema with the columns of the code it records, except
        what was written into the target since (recorded: built again); and a write that
        never said what it wrote leaves nothing trusted."""
        pointer = self.pointer()
        if pointer is None:
            return
        run_id, target = pointer["run_id"], pointer["target"]
        data = self.state_object(f"state/sweep/dev/state/runs/{run_id}/manifest.json")
        assert data is not None, f"{step}: the state's manifest is missing"
        assert hashlib.sha256(data).hexdigest() == pointer["manifest_sha256"], step
        rebuilt = self.written_since(pointer)
        if rebuilt is None:
            return  # the ledger trusts none of it: the next job builds everything
        tables = self.columns(target["schema"])
        for uid, node in json.loads(data)["nodes"].items():
            if node["resource_type"] != "model" or node["name"] in rebuilt:
                continue
            assert node["schema"] == target["schema"], f"{step}: {uid} is not in the target"
            found = tables.get(node["alias"])
            assert found == code_columns(node["raw_code"]), (
                f"{step}: state {run_id} says {uid} has {sorted(code_columns(node['raw_code']))}"
                f" in {target['schema']}; the warehouse has {sorted(found or [])}"
            )

    def check_code(self, step: str) -> None:
        """The current target holds every model of the current code."""
        tables = self.columns(self.schema)
        for path in sorted((self.project / "models").rglob("*.sql")):
            found = tables.get(path.stem)
            assert found == code_columns(path.read_text()), (
                f"{step}: exit 0, but {self.schema}.{path.stem} has {sorted(found or [])}, "
                f"not the code's {sorted(code_columns(path.read_text()))}"
            )

    def after(self, step: str, code: int, ran_dbt: bool) -> None:
        self.steps.append(f"{step}: exit {code}")
        self.check_state(step)
        if code == 0 and ran_dbt:
            self.check_code(step)

    def run_env(self) -> dict[str, str]:
        return self.env | {"DBT_RUNNER_WAREHOUSE__SCHEMA": self.schema}

    def lease_gone(self) -> bool:
        data = self.state_object("state/sweep/dev/lease.json")
        if data is None:
            return True
        return bool(datetime.now(UTC) > datetime.fromisoformat(json.loads(data)["expires_at"]))


@pytest.fixture
def world(
    env: dict[str, str], postgres: Postgres, moto: Moto, tmp_path: Path
) -> Iterator[tuple[World, FaultProxy]]:
    bucket = "sweep-" + uuid.uuid4().hex[:8]
    moto.client("s3").create_bucket(Bucket=bucket)
    project = generate(tmp_path / "sweep", MODELS)
    suffix = uuid.uuid4().hex[:6]
    with FaultProxy(moto.endpoint) as proxy:
        run_env = (
            env
            | moto.env
            | postgres.warehouse_env("unused")
            | {
                "AWS_ENDPOINT_URL": proxy.endpoint,
                "DBT_RUNNER_PROJECT_DIR": str(project),
                "DBT_RUNNER_STATE_URL": f"s3://{bucket}/state",
                "DBT_RUNNER_LEASE_TTL_S": "3",
                "DBT_RUNNER_THREADS": "4",
            }
        )
        del run_env["DBT_RUNNER_WAREHOUSE__PATH"]
        yield (
            World(
                postgres,
                moto.client("s3"),
                bucket,
                project,
                tmp_path / "out",
                run_env,
                (f"sweep_a_{suffix}", f"sweep_b_{suffix}"),
            ),
            proxy,
        )


# --- the stops --------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    job: str  # full or slim
    sig: signal.Signals
    line: str | None = None  # a regex on the output: stop when it has appeared `count` times
    count: int = 1
    s3_put: str | None = None  # or: stop at the S3 write whose path holds this

    def __str__(self) -> str:
        where = f"PUT {self.s3_put}" if self.s3_put else f"{self.line!r} x{self.count}"
        return f"{self.job} {self.sig.name} at {where}"


STOPS = [
    Stop("full", signal.SIGTERM, line=r"\] target: "),
    Stop("full", signal.SIGTERM, line=r"phase deps: dbt deps"),
    Stop("full", signal.SIGTERM, line=r"phase parse: success"),
    Stop("full", signal.SIGTERM, line=r"phase seed: dbt seed"),
    Stop("full", signal.SIGTERM, line=BUILT.pattern, count=2),
    Stop("full", signal.SIGTERM, line=r"phase build: success"),
    Stop("full", signal.SIGTERM, line=r"phase docs: dbt docs"),
    Stop("slim", signal.SIGTERM, line=r"phase build: dbt build"),
    Stop("slim", signal.SIGTERM, line=BUILT.pattern, count=1),
    Stop("slim", signal.SIGTERM, line=r"state promoted"),
    Stop("full", signal.SIGKILL, line=r"\] run \S+: project sweep"),
    Stop("full", signal.SIGKILL, line=r"phase debug: success"),
    Stop("full", signal.SIGKILL, line=BUILT.pattern, count=3),
    Stop("full", signal.SIGKILL, line=BUILT.pattern, count=MODELS // 2),
    Stop("full", signal.SIGKILL, line=r"phase freshness: dbt source"),
    Stop("full", signal.SIGKILL, s3_put="/manifest.json"),
    Stop("full", signal.SIGKILL, s3_put="/latest.json"),
    Stop("slim", signal.SIGKILL, line=r"phase deps: dbt deps"),
    Stop("slim", signal.SIGKILL, line=BUILT.pattern, count=1),
    Stop("slim", signal.SIGKILL, s3_put="/latest.json"),
]
if LONG:
    STOPS += [
        Stop(job, sig, line=BUILT.pattern, count=count)
        for job in ("full", "slim")
        for sig in (signal.SIGTERM, signal.SIGKILL)
        for count in (MODELS // 10, MODELS // 4, (3 * MODELS) // 4)
        if job == "full" or count < 20
    ]
NEXT = (
    "retry",
    "slim after a change",
    "slim in another schema",
    "retry of an older run",
    "a build by hand",
    "another env in its schema",
)


def stop_a_job(world: World, proxy: FaultProxy, stop: Stop, log: Path) -> int:
    """Start the job, stop it where `stop` says; its exit code. The stop must happen:
    a job that ends first fails the test (the point was not swept)."""
    run_id = f"stop-{len(world.stopped)}-{uuid.uuid4().hex[:6]}"
    world.stopped.append(run_id)
    args = ["--job", stop.job, "--run-id", run_id]
    if stop.s3_put is not None:
        fault = Fault(503, "ServiceUnavailable", method="PUT", path_contains=stop.s3_put, times=1)
        proxy.faults.append(fault)
    started = Started(world.run_env(), log, *args)
    if stop.s3_put is not None:
        fault.before = started.process.kill
        code = started.process.wait(timeout=300)
        proxy.faults.remove(fault)
        assert fault.times == 0, (
            f"{stop}: the job ended without that write:\n{log.read_text()[-3000:]}"
        )
        return code
    pattern = re.compile(str(stop.line))

    def reached() -> bool:
        if len(pattern.findall(log.read_text())) >= stop.count:
            return True
        assert started.process.poll() is None, f"{stop}: ended first:\n{log.read_text()[-3000:]}"
        return False

    wait_until(reached, 300, str(stop), interval=0.05)
    started.process.send_signal(stop.sig)
    return started.process.wait(timeout=120)


def next_command(world: World, what: str, index: int) -> tuple[str, int, bool]:
    """What a user types next; (the step, its exit code, whether the step claims the
    target holds the current code when it exits 0)."""
    if what == "retry":
        result = run_cli("retry", env=world.run_env())
    elif what == "retry of an older run":
        result = run_cli("retry", "--from-run", world.stopped[0], env=world.run_env())
    elif what in ("a build by hand", "another env in its schema"):
        return what, by_hand(world, what, index), False
    else:
        if what == "slim in another schema":
            world.schema = (
                world.schemas[1] if world.schema == world.schemas[0] else world.schemas[0]
            )
        else:
            change_one_model(world.project, f"n{index}")
        result = run_cli("run", "--job", "slim", env=world.run_env())
    report = read_json(world.out / "report.json") if (world.out / "report.json").is_file() else {}
    assert "Traceback" not in result.stderr, result.stderr
    return what, result.returncode, bool(report.get("phases"))


def by_hand(world: World, what: str, index: int) -> int:
    """A model changed and built outside the env's own jobs (a person through the
    runner's `dbt`, or another env's full job into the same schema), then the change
    reverted: the warehouse holds code that neither the files nor the state say."""
    models = sorted((world.project / "models" / "layers").glob("m_*.sql"))
    path = models[index % len(models)]
    original = path.read_text()
    path.write_text(original.replace("select ", f"select 1 as changed_h{index}, ", 1))
    if what == "a build by hand":
        result = run_cli("dbt", "--", "run", "--select", path.stem, env=world.run_env())
    else:
        result = run_cli("run", env=world.run_env() | {"DBT_RUNNER_ENV": "qa"})
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"changed_h{index}" in world.columns(world.schema)[path.stem]
    path.write_text(original)
    return result.returncode


# Each timeline starts from one full job and takes a share of the stops in order, so a
# stop meets what the stops before it left; several short timelines rather than one long
# one keep each test within its time limit and let the workers share them.
TIMELINES = 4
SHARE = -(-len(STOPS) // TIMELINES)


@pytest.mark.parametrize("timeline", range(TIMELINES))
def test_stops_at_every_boundary_never_leave_a_lying_state(
    world: tuple[World, FaultProxy], tmp_path: Path, timeline: int
) -> None:
    sweep, proxy = world
    sweep.schema = sweep.schemas[0]
    first = run_cli("run", env=sweep.run_env())
    assert first.returncode == 0, first.stdout[-3000:]
    sweep.after("the first full job", 0, True)
    assert sweep.pointer() is not None
    started = time.monotonic()
    share = range(timeline * SHARE, min(len(STOPS), (timeline + 1) * SHARE))
    for index, stop in ((i, STOPS[i]) for i in share):
        if stop.job == "slim":
            change_one_model(sweep.project, f"s{index}")  # something for it to build
        if stop.line is not None and "deps" in stop.line:
            change_packages(sweep.project, f"s{index}")
        code = stop_a_job(sweep, proxy, stop, tmp_path / f"stop-{index}.log")
        expected = {signal.SIGTERM: (143, 0), signal.SIGKILL: (-signal.SIGKILL,)}[stop.sig]
        assert code in expected, f"{stop}: exit {code}"
        sweep.after(str(stop), code, ran_dbt=False)
        wait_until(sweep.lease_gone, 30, "the stopped job's lease")
        what, code, ran = next_command(sweep, NEXT[index % len(NEXT)], index)
        sweep.after(f"{stop}, then {what}", code, ran)
        if code != 0:  # the user runs the job again
            again = run_cli("run", env=sweep.run_env())
            assert again.returncode == 0, again.stdout[-3000:]
            sweep.after(f"{stop}, then {what}, then the job again", 0, True)
    print(f"{len(share)} stops on {MODELS} models in {time.monotonic() - started:.0f} s:")
    print("\n".join(sweep.steps))
