"""The phase sequence without dbt: a fake engine session that answers each command as the
test scripts it, and the real recorder, stages and report. Skip rules, advisory phases,
stops, a phase that could not run, and the job's word before the node phases."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dbt_runner.config import Settings
from dbt_runner.engine.session import Clock, Interrupted, Outcome
from dbt_runner.jobs import Context, JobKind, kind_of
from dbt_runner.report.model import PhaseStatus
from dbt_runner.run.recorder import PhaseRecorder
from dbt_runner.run.sequence import PhaseSequence
from dbt_runner.run.stages import Stages
from dbt_runner.workspace.prepare import Workspace
from dbt_runner.workspace.project import Project
from tests.support import DEMO, node_result, run_report


@dataclass
class FakeSession:
    """The engine session's surface, scripted: `answers` maps a command (its first word,
    or `parse`) to the status it ends with."""

    answers: dict[str, PhaseStatus] = field(default_factory=dict)
    target_path: Path = Path("/nonexistent/target")
    manifest: Any = None
    manifest_written: bool = False
    ran: list[str] = field(default_factory=list)
    listed: int = 0  # dbt ls commands
    recorder: Any = field(default_factory=lambda: SimpleNamespace(unmatched=[]))

    def common(self, target: bool = True) -> list[str]:
        return ["--project-dir", "p"]

    def parse(self) -> Outcome:
        self.ran.append("parse")
        status = self.answers.get("parse", "success")
        if status == "success":
            self.manifest = SimpleNamespace(nodes={})
        return Outcome(status, ["parse"], Clock(), None if status == "success" else "bad yaml")

    def execute(
        self, name: str, command: list[str], has_nodes: bool, common: list[str] | None = None
    ) -> Outcome:
        self.ran.append(name)
        status = self.answers.get(command[0], "success")
        nodes = [node_result(f"model.p.{name}", "failed" if status == "failed" else "ok")]
        return Outcome(status, command, Clock(), None if status == "success" else "no", nodes)

    def selected(self, command: list[str]) -> set[str]:
        self.listed += 1
        return {"model.p.a"}

    def write_manifest(self) -> None:
        self.manifest_written = True


class Refusing(JobKind):
    """A job that refuses before its node phases (as a pull request's guard does)."""

    def before_nodes(self, context: Context, selected: Callable[[], set[str]]) -> str | None:
        return f"model.p.a would write outside ({len(selected())} node)"


def sequence(
    phases: str,
    answers: dict[str, PhaseStatus] | None = None,
    job: type[JobKind] | None = None,
    baked: Any = None,
    project_dir: Path | None = None,
) -> tuple[PhaseSequence, FakeSession, Any]:
    settings = Settings.model_validate({"project_dir": DEMO, "job": "custom", "phases": phases})
    report = run_report()
    session = FakeSession(answers or {})
    recorder = PhaseRecorder(report, Stages(report), lambda: "stopped by SIGTERM", lambda: None)
    folder = project_dir or Path(tempfile.mkdtemp(prefix="dbt-runner-sequence-"))
    if project_dir is None:  # a project of its own: dbt writes nothing here
        (folder / "dbt_project.yml").write_text("name: demo\n")
        (folder / "packages.yml").write_text("packages: []\n")
    workspace = Workspace(
        settings,
        Project(folder, folder, "demo", "demo"),
        SimpleNamespace(namespace=None, dir=folder, target=None),  # type: ignore[arg-type]
        baked=baked,
    )
    kind = job(settings) if job else kind_of(settings)
    made = PhaseSequence(settings, kind, session, recorder, workspace, None)  # type: ignore[arg-type]
    return made, session, report


def statuses(report: Any) -> list[tuple[str, str]]:
    return [(phase.name, phase.status) for phase in report.phases]


def test_the_project_is_parsed_once_before_the_first_phase_that_needs_it() -> None:
    made, session, report = sequence("deps,debug,seed,build,docs")
    made.run()
    assert session.ran == ["deps", "debug", "parse", "seed", "build", "docs"]
    assert statuses(report)[2] == ("parse", "success")
    assert session.manifest_written  # written once, for the artifacts and docs


def test_a_strict_failure_blocks_strict_phases_but_not_advisory_ones() -> None:
    made, _session, report = sequence("seed,build,freshness,docs", {"seed": "failed"})
    made.run()
    assert statuses(report) == [
        ("parse", "success"),
        ("seed", "failed"),
        ("build", "skipped"),
        ("freshness", "success"),  # advisory: it runs
        ("docs", "success"),
    ]
    assert report.phases[2].message == "skipped: seed failed"
    assert report.exit_code == 1


def test_an_advisory_failure_is_a_warning_and_stops_nothing() -> None:
    made, _session, report = sequence("build,freshness,docs", {"source": "failed"})
    made.run()
    assert statuses(report)[-2:] == [("freshness", "failed"), ("docs", "success")]
    assert report.exit_code == 0
    assert report.warnings == ["freshness failed (advisory: the job goes on): no"]


def test_a_phase_that_could_not_run_stops_everything_after_it() -> None:
    made, session, report = sequence("deps,seed,build,docs", {"deps": "error"})
    made.run()
    assert statuses(report) == [
        ("deps", "error"),
        ("seed", "skipped"),
        ("build", "skipped"),
        ("docs", "skipped"),  # advisory too: nothing runs after an error
    ]
    assert "parse" not in session.ran
    assert report.exit_code == 2 and report.errors[0].stage == "deps"


def test_a_project_that_does_not_parse_runs_no_phase_that_needs_it() -> None:
    made, _session, report = sequence("deps,seed,build", {"parse": "error"})
    made.run()
    assert statuses(report) == [
        ("deps", "success"),
        ("parse", "error"),
        ("seed", "skipped"),
        ("build", "skipped"),
    ]
    assert report.phases[2].message == "skipped: the project did not parse"


def test_a_stop_records_every_phase_it_left_and_raises() -> None:
    made, _session, report = sequence("seed,build,docs", {"build": "interrupted"})
    with pytest.raises(Interrupted):
        made.run()
    assert statuses(report) == [
        ("parse", "success"),
        ("seed", "success"),
        ("build", "interrupted"),
        ("docs", "skipped"),
    ]
    assert report.phases[2].message == "stopped by SIGTERM"
    assert report.phases[3].message == "skipped: the run was stopped"


def test_the_job_is_asked_before_the_node_phases_and_may_refuse() -> None:
    made, session, report = sequence("deps,seed,build", job=Refusing)
    made.run()
    assert statuses(report) == [
        ("deps", "success"),
        ("parse", "success"),
        ("seed", "skipped"),
        ("build", "skipped"),
    ]
    assert [(e.stage, e.exit_code) for e in report.errors] == [("pr-guard", 3)]
    assert "seed" not in session.ran and "build" not in session.ran
    assert session.listed == 2  # the selection, asked for by the job: one dbt ls per phase


def test_a_job_that_needs_no_selection_costs_no_dbt_ls() -> None:
    made, session, _ = sequence("deps,seed,build")
    made.run()
    assert session.listed == 0


def test_deps_is_skipped_without_packages() -> None:
    made, session, report = sequence("deps,debug")
    (made.project.dir / "packages.yml").unlink()
    made, session, report = sequence("deps,debug", project_dir=made.project.dir)
    made.run()
    assert statuses(report) == [("deps", "skipped"), ("debug", "success")]
    assert report.phases[0].message == "no packages.yml or dependencies.yml"
    assert session.ran == ["debug"]


def test_deps_is_skipped_when_its_last_install_here_still_holds() -> None:
    made, session, report = sequence("deps,debug")
    (made.project.dir / "dbt_packages").mkdir()  # what dbt deps leaves (FakeSession does not)
    (made.project.dir / "package-lock.yml").write_text("packages: []\n")
    made.run()
    assert session.ran == ["deps", "debug"]  # installs, and remembers what it installed
    made, session, report = sequence("deps,debug", project_dir=made.project.dir)
    made.run()
    assert session.ran == ["debug"]
    assert report.phases[0].message == (
        "the packages are installed and unchanged since the last dbt deps"
    )


def test_deps_is_skipped_when_the_image_has_the_packages_baked() -> None:
    for packages, ran in ((True, ["debug"]), (False, ["deps", "debug"])):
        made, session, report = sequence("deps,debug", baked=SimpleNamespace(packages=packages))
        made.run()
        assert session.ran == ran
    made, session, report = sequence("deps,debug", baked=SimpleNamespace(packages=True))
    made.run()
    assert report.phases[0].message == (
        "the packages were installed into the image by dbt-runner prepare"
    )
